"""A Ctrl-C (SIGINT to the process, as a terminal sends it) at each step of a Drive request,
through the real PyDrive2 + googleapiclient + httplib2 stack in a child process: its
connect, its TLS handshake, the wait for the status line, the headers, a body read in
pieces (with a length, and chunked), the request's body sent in pieces, a retry's backoff,
a resumable upload's chunk, a media download.

At each: the command ends at once (before whatever it waited for comes: that is held until
the test lets it go), says one line (``Interrupted.``), exits 130, sent nothing twice (the
server's own count), used no half-read answer and left no truncated file under a final
name; and the same command run again, in a fresh process, does its work.

Steps a Drive server cannot be stopped at (a connection not taken, a handshake not
answered, headers cut in two) are played by a small scripted server here; the others by the
emulator, whose faults hold the step until released. Nothing here is timed but the bound on
how long the command may take to end.
"""
from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import threading
import time
from typing import Callable, Optional

import pytest

from _forkcli import PIPE, cli_server
from _tls import self_signed

pytestmark = pytest.mark.skipif(not hasattr(signal, "pthread_kill") or
                                not os.path.isdir("/proc/self/fd"), reason="POSIX, Linux")

#: Seconds the command may take to end after the signal (it ends in a slice, 0.2 s, or
#: so; the bound only catches one that waits for what it waited for).
PROMPT = 15.0
BLOB = os.urandom(1 << 20)


def _env(url: str, **extra: str) -> dict:
    return dict(os.environ, DRIVESTAGE_API_ROOT=url, DRIVESTAGE_TOKEN="test-token",
                DRIVESTAGE_RETRY_BASE="0.001", DRIVESTAGE_HTTP_TIMEOUT="600", **extra)


@pytest.fixture(scope="session", autouse=True)
def _cli():
    """Each ``python -m drivestage`` here (the command a Ctrl-C ends, and its rerun) is a
    fresh process forked with its imports done (tests/_forkcli.py; a fresh interpreter
    where the environment changes what an import reads: the TLS tests' CA): a fresh
    interpreter's start was most of each test's time (2 of 3 s, 10 of 15 s loaded)."""
    return cli_server()


def _started(args: list[str], env: dict):
    return cli_server().popen(args, env=env, stdout=PIPE, stderr=PIPE)


def _run(args: list[str], env: dict, timeout: float) -> subprocess.CompletedProcess:
    """``subprocess.run([sys.executable, "-m", "drivestage", *args], capture_output=True)``,
    forked as :func:`_started`."""
    return cli_server().run(args, env=env, timeout=timeout)


def _interrupted_when(proc: subprocess.Popen, ready: Callable[[], bool],
                      sig: int = signal.SIGINT, said: str = "") -> tuple[int, str, float]:
    """Send ``sig`` to ``proc`` once ``ready()`` and it wrote a line holding ``said`` to
    stderr; its exit code, stderr and the seconds it took to end after the signal."""
    lines: list[str] = []
    heard = threading.Event()

    def read() -> None:
        for raw in proc.stderr:
            lines.append(raw.decode(errors="replace"))
            if said in lines[-1]:
                heard.set()
    if not said:
        heard.set()
    reader = threading.Thread(target=read)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not (ready() and heard.is_set()):
            assert proc.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "the command never got there"
            heard.wait(0.01)
        began = time.monotonic()
        proc.send_signal(sig)
        proc.wait(timeout=60)
        took = time.monotonic() - began
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(60)
        proc.stdout.close()
    return proc.returncode, "".join(lines), took


def _ended_as_a_ctrl_c(code: int, err: str, took: float, warned: int = 0) -> None:
    """Exit 130, ``Interrupted.`` its one line (after the ``warned`` lines the command had
    written before: a retry's), and soon after the signal."""
    assert code == 130, err
    assert err.strip().splitlines()[warned:] == ["Interrupted."], err
    assert took < PROMPT, f"the command ended {took:.1f} s after the Ctrl-C"


# ------------------------------------------------------------------ the scripted server

class _Scripted:
    """A server that takes each connection and plays ``mode`` on it, then waits until the
    test ends: ``backlog`` (it takes no connection: its queue is full), ``silent`` (a TLS
    handshake never answered), ``half-headers``, ``half-body`` (a length given),
    ``half-chunk`` (chunked, a chunk cut short). ``reached`` is set once it played it;
    ``requests`` counts the requests it read."""

    def __init__(self, mode: str) -> None:
        self.mode, self.reached, self.done = mode, threading.Event(), threading.Event()
        self.requests = 0
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        if mode == "backlog":
            self.listener.listen(0)
            self.held.append(socket.create_connection(("127.0.0.1", self.port)))
            return
        self.listener.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(120)
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        self.held.append(conn)
        conn.settimeout(120)
        if self.mode == "silent":
            conn.recv(1)   # the ClientHello came: the client waits for the answer
            self.reached.set()
            return
        head = b""
        while b"\r\n\r\n" not in head:
            data = conn.recv(65536)
            if not data:
                return
            head += data
        self.requests += 1
        answer = {
            "half-headers": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n",
            "half-body": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 1000\r\n\r\n{\"items\": [",
            "half-chunk": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\n40\r\n{\"items\": [",
        }[self.mode]
        conn.sendall(answer)
        self.reached.set()

    def syn_sent(self) -> bool:
        """Whether a connection to this server waits to be taken (its SYN unanswered)."""
        port = f":{self.port:04X}"
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[2].endswith(port) and fields[3] == "02":   # SYN_SENT
                    return True
        return False

    def close(self) -> None:
        for sock in self.held + [self.listener]:
            sock.close()


@pytest.mark.parametrize("mode", ["backlog", "silent", "half-headers", "half-body",
                                  "half-chunk"])
def test_a_ctrl_c_at_each_step_a_scripted_server_holds(emulator, local_state, tmp_path,
                                                       mode):
    emulator.add_file("d/a.bin", BLOB)
    dest = tmp_path / "data"
    server = _Scripted(mode)
    scheme = "https" if mode == "silent" else "http"
    try:
        proc = _started(["pull", "drive:d/a.bin", str(dest), "-q"],
                        _env(f"{scheme}://127.0.0.1:{server.port}/"))
        ready = server.syn_sent if mode == "backlog" else server.reached.is_set
        _ended_as_a_ctrl_c(*_interrupted_when(proc, ready))
        assert server.requests <= 1, "the request was sent again"
        assert not server.done.is_set()
    finally:
        server.close()
    assert not (dest / "a.bin").exists()
    _pulled_again(emulator, dest)


def _pulled_again(emulator, dest) -> None:
    """The same pull in a fresh process, on the emulator: the file, whole."""
    rerun = _run(["pull", "drive:d/a.bin", str(dest), "-q"], _env(emulator.url), timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert hashlib.md5((dest / "a.bin").read_bytes()).digest() == hashlib.md5(BLOB).digest()


# ------------------------------------------------------------------ on the emulator

def _arrived(emulator, method: str, path: str, nth: int = 1) -> threading.Event:
    """Set once the emulator has read the ``nth`` ``method`` request whose target matches
    ``path`` (a regular expression), before it answers it."""
    import re

    seen, arrived, plan = [0], threading.Event(), emulator.faults.plan

    def planned(command: str, target: str, **kwargs):
        out = plan(command, target, **kwargs)
        if command == method and re.search(path, target):
            seen[0] += 1
            if seen[0] >= nth:
                arrived.set()
        return out
    emulator.faults.plan = planned
    return arrived


def _count(emulator, method: str, path: str = "") -> int:
    return sum(1 for r in emulator.requests if r.method == method and path in r.path)


def _let_go(emulator) -> None:
    emulator.faults.throttle(None)
    emulator.faults.release_holds()
    emulator.faults.serving()


LONG = 600.0   # how long the emulator holds an answer: the command must not wait for it


def test_a_ctrl_c_while_a_lookup_waits_for_its_status_line(emulator, local_state, tmp_path):
    emulator.add_file("d/a.bin", BLOB)
    dest = tmp_path / "data"
    arrived = _arrived(emulator, "GET", r"/files\?")
    emulator.faults.latency(LONG, method="GET", path=r"/files\?", times=1)
    proc = _started(["pull", "drive:d/a.bin", str(dest), "-q"], _env(emulator.url))
    _ended_as_a_ctrl_c(*_interrupted_when(proc, arrived.is_set))
    assert _count(emulator, "GET") == 1, "the held lookup was sent again"
    _let_go(emulator)
    assert not (dest / "a.bin").exists()
    _pulled_again(emulator, dest)


def test_a_ctrl_c_while_a_retry_backs_off(emulator, local_state, tmp_path):
    """Drive asked to wait a minute (503, Retry-After: 60): the backoff ends on the Ctrl-C,
    and the request is not sent again."""
    emulator.add_file("d/a.bin", BLOB)
    dest = tmp_path / "data"
    emulator.faults.inject(method="GET", path=r"/files\?", status=503, retry_after=60,
                           times=1)
    proc = _started(["pull", "drive:d/a.bin", str(dest), "-q"], _env(emulator.url))
    _ended_as_a_ctrl_c(*_interrupted_when(
        proc, lambda: any(r.status == 503 for r in emulator.requests), said="retry 1/"),
        warned=1)
    assert _count(emulator, "GET") == 1, "the request was sent again before its backoff ended"
    _let_go(emulator)
    _pulled_again(emulator, dest)


def test_a_ctrl_c_while_a_download_s_bytes_are_held(emulator, local_state, tmp_path):
    """Half the file came, the rest is held: no file under its name; the rerun gets it
    whole."""
    file_id = emulator.add_file("d/a.bin", BLOB)
    dest = tmp_path / "data"
    hold = emulator.faults.hold(file_id, len(BLOB) // 2, timeout=LONG)
    proc = _started(["pull", "drive:d/a.bin", str(dest), "-q"], _env(emulator.url))
    _ended_as_a_ctrl_c(*_interrupted_when(proc, hold.reached.is_set))
    assert not (dest / "a.bin").exists(), "a truncated file under its final name"
    hold.release()
    _let_go(emulator)
    _pulled_again(emulator, dest)


def _drive_files(emulator, folder: str) -> list[tuple[str, str]]:
    from drivestage.drive import connect

    store = connect(api_root=emulator.url, token="test-token")
    return sorted((e.name, e.md5) for e in store.list(store.resolve(folder)))


def _pushed_again(emulator, src, *extra: str) -> None:
    rerun = _run(["push", str(src), "drive:runs", *extra], _env(emulator.url), timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    want = sorted((p.name, hashlib.md5(p.read_bytes()).hexdigest()) for p in src.iterdir())
    assert _drive_files(emulator, "runs") == want


def test_a_ctrl_c_while_a_create_waits_for_its_status_line(emulator, local_state, tmp_path):
    """A create is not idempotent: sent once, and the rerun makes no second folder or
    file once Drive has answered the held one."""
    src = tmp_path / "logs"
    src.mkdir()
    (src / "a.bin").write_bytes(BLOB[:1000])
    arrived = _arrived(emulator, "POST", r"/files")
    emulator.faults.latency(LONG, method="POST", path=r"/files", times=1)
    proc = _started(["push", str(src), "drive:runs"], _env(emulator.url))
    _ended_as_a_ctrl_c(*_interrupted_when(proc, arrived.is_set))
    assert _count(emulator, "POST") == 1, "the held create was sent again"
    _let_go(emulator)
    _pushed_again(emulator, src)


def test_a_ctrl_c_while_an_upload_s_body_is_sent_in_pieces(emulator, local_state, tmp_path):
    """Drive takes the body slowly (its buffers full): the send ends on the Ctrl-C."""
    src = tmp_path / "logs"
    src.mkdir()
    (src / "big.bin").write_bytes(os.urandom(24 << 20))
    emulator.add_folder("runs")
    arrived = _arrived(emulator, "PUT", r"/upload/")
    emulator.faults.throttle(per_connection=64 << 10)
    proc = _started(["push", str(src), "drive:runs"], _env(emulator.url))
    _ended_as_a_ctrl_c(*_interrupted_when(proc, arrived.is_set))
    _let_go(emulator)
    assert _drive_files(emulator, "runs") == []
    _pushed_again(emulator, src)


def test_a_ctrl_c_in_a_resumable_upload_s_second_chunk(emulator, local_state, tmp_path):
    """The rerun resumes the upload: what Drive had is not sent again."""
    src = tmp_path / "logs"
    src.mkdir()
    (src / "a.bin").write_bytes(BLOB)
    emulator.add_folder("runs")
    arrived = _arrived(emulator, "PUT", r"/upload/", nth=2)
    emulator.faults.throttle(per_connection=256 << 10)
    proc = _started(["push", str(src), "drive:runs", "--chunk-size", "256KiB"],
                    _env(emulator.url))
    _ended_as_a_ctrl_c(*_interrupted_when(proc, arrived.is_set))
    _let_go(emulator)
    assert _drive_files(emulator, "runs") == []
    before = sum(r.bytes_in for r in emulator.requests if r.method == "PUT")
    assert before >= 256 << 10
    _pushed_again(emulator, src, "--chunk-size", "256KiB")
    after = sum(r.bytes_in for r in emulator.requests if r.method == "PUT") - before
    assert after <= len(BLOB) - (256 << 10), "the rerun sent the upload again from its start"


def test_a_mirror_s_sigterm_then_a_second_while_drive_holds_its_upload(emulator, local_state,
                                                                       tmp_path):
    """``mirror`` handles SIGTERM: a final push, which a second signal abandons at once
    (``Interrupted: …``, exit 130), though Drive still holds the upload's answer; the same
    command run again sends the file, once."""
    src = tmp_path / "logs"
    src.mkdir()
    (src / "a.bin").write_bytes(BLOB[:5000])
    emulator.add_folder("runs")
    arrived = _arrived(emulator, "PUT", r"/upload/")
    emulator.faults.latency(LONG, method="PUT", path=r"/upload/")
    proc = _started(["mirror", str(src), "drive:runs", "--every", "3600", "--grace", "600"],
                    _env(emulator.url))
    lines: list[str] = []
    stopping = threading.Event()

    def read() -> None:
        for raw in proc.stderr:
            lines.append(raw.decode(errors="replace"))
            if lines[-1].startswith("stopping:"):
                stopping.set()
    reader = threading.Thread(target=read)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not arrived.is_set():
            assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
            arrived.wait(0.05)
        proc.send_signal(signal.SIGTERM)
        # Once it took the first (two signals sent at once are one to the kernel): the
        # final push waits for the held upload, and the second signal ends it.
        assert stopping.wait(60), "".join(lines)
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        took = time.monotonic() - began
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(60)
        proc.stdout.close()
    err = "".join(lines).encode()
    text = err.decode(errors="replace")
    assert proc.returncode == 130, text
    assert text.strip().splitlines()[-1].startswith("Interrupted: the final push was abandoned")
    assert "Traceback" not in text and took < PROMPT, (took, text)
    puts = _count(emulator, "PUT")
    _let_go(emulator)
    emulator.faults.clear()
    rerun = _run(["push", str(src), "drive:runs"], _env(emulator.url), timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert _drive_files(emulator, "runs") == [("a.bin", hashlib.md5(BLOB[:5000]).hexdigest())]
    assert puts <= 2, f"{puts} uploads of one file before the second signal"


# ------------------------------------------------------------------ over TLS, as to Drive

@pytest.fixture
def tls(tmp_path_factory):
    """A certificate for 127.0.0.1, which the child trusts (``HTTPLIB2_CA_CERTS``)."""
    import shutil

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    where = tmp_path_factory.mktemp("tls")
    cert, key = self_signed(where)
    return cert, key


@pytest.mark.parametrize("step", ["status line", "download bytes"])
def test_a_ctrl_c_over_tls(emulator, local_state, tmp_path, tls, step):
    """Drive is reached over TLS: a wait for an answer in short pieces ends on the Ctrl-C
    there too (a TLS record half there is kept, not lost), and the rerun over TLS works."""
    from _proxy import Proxy

    file_id = emulator.add_file("d/a.bin", BLOB)
    dest = tmp_path / "data"
    with Proxy(emulator.url, tls=tls) as api:
        env = _env(api.url, HTTPLIB2_CA_CERTS=tls[0])
        if step == "status line":
            arrived = _arrived(emulator, "GET", r"/files\\?")
            emulator.faults.latency(LONG, method="GET", path=r"/files\\?", times=1)
            ready = arrived.is_set
        else:
            ready = emulator.faults.hold(file_id, len(BLOB) // 2, timeout=LONG).reached.is_set
        proc = _started(["pull", "drive:d/a.bin", str(dest), "-q"], env)
        _ended_as_a_ctrl_c(*_interrupted_when(proc, ready))
        sent = [r for r in emulator.requests]
        assert len({(r.method, r.path, str(r.query)) for r in sent}) == len(sent), \
            "a request was sent twice"
        _let_go(emulator)
        assert not (dest / "a.bin").exists()
        rerun = _run(["pull", "drive:d/a.bin", str(dest), "-q"], env, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert (dest / "a.bin").read_bytes() == BLOB
