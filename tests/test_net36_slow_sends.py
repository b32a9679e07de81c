"""An upload's body was sent in 1 MiB blocks, each bounded by ``DRIVESTAGE_HTTP_TIMEOUT`` in
all (the socket's own ``sendall``, and drivestage's sliced one, kept that rule): a link
slower than 1 MiB per timeout (8.7 KB/s at 120 s) timed out every chunk though its bytes
moved, where the README promises the timeout is the time without a byte. The timeout is the
time in which no byte went now (a send took some, or the server acknowledged some), and a
server that takes nothing still ends the upload within it once the buffers are full.

The server is the emulator behind a TCP proxy in this file that takes each connection's
bytes, past its first 256 KiB (the requests before the upload's body), at a set rate in
16 KiB reads through a small receive buffer, or not at all (stalled). The rate is what the
test is about, so the only timing is the proxy's pace and a small HTTP timeout.
"""
from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import threading
import time

import pytest

from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)

PIECE = 16 << 10
FREE = 256 << 10


class _Throttle:
    """A TCP proxy to ``port`` that takes a connection's bytes past the first :data:`FREE`
    at ``rate`` bytes a second (None: none, until :meth:`close`)."""

    def __init__(self, port: int, rate: "float | None"):
        self.port, self.rate = port, rate
        self.taken = 0
        self.stalled = threading.Event()   # (set once a connection stalls)
        self._gone = threading.Event()
        self._socks: list[socket.socket] = []
        self._listener = socket.socket()
        # (before listen: accepted sockets inherit it; the window stays small)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, PIECE)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/"
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._gone.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.port))
            self._socks += [client, upstream]
            for fn in (self._up, self._down):
                thread = threading.Thread(target=fn, args=(client, upstream), daemon=True)
                self._threads.append(thread)
                thread.start()

    def _up(self, client: socket.socket, upstream: socket.socket) -> None:
        passed = 0
        try:
            while True:
                if passed >= FREE:
                    if self.rate is None:
                        self.stalled.set()
                        self._gone.wait()
                        return
                    time.sleep(PIECE / self.rate)   # (the throttle itself)
                data = client.recv(PIECE)
                if not data:
                    break
                passed += len(data)
                self.taken += len(data)
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            _shut(upstream)

    def _down(self, client: socket.socket, upstream: socket.socket) -> None:
        try:
            while data := upstream.recv(1 << 16):
                client.sendall(data)
        except OSError:
            pass
        finally:
            _shut(client)

    def close(self) -> None:
        self._gone.set()
        _shut(self._listener)   # (ends its accept(); a close alone does not)
        self._listener.close()
        for sock in self._socks:
            _shut(sock)
            sock.close()
        for thread in self._threads:
            thread.join(30)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _push(proxy: _Throttle, tmp_path, src) -> subprocess.CompletedProcess:
    env = dict(os.environ, DRIVESTAGE_API_ROOT=proxy.url, DRIVESTAGE_TOKEN="test-token",
               DRIVESTAGE_STATE_DIR=str(tmp_path / "state"), DRIVESTAGE_RETRY_ATTEMPTS="2",
               DRIVESTAGE_RETRY_BASE="0.01", DRIVESTAGE_RETRY_CAP="0.05",
               DRIVESTAGE_HTTP_TIMEOUT="0.5")
    return cli_server().run(["push", str(src), "drive:runs"],
                            env=env, text=True, timeout=120)


@pytest.fixture
def src(tmp_path):
    src = tmp_path / "logs"
    src.mkdir()
    (src / "big.bin").write_bytes(os.urandom(6 << 20))
    return src


def _drive_files(emulator, folder: str) -> list[tuple[str, str]]:
    from drivestage.drive import connect

    store = connect(api_root=emulator.url, token="test-token")
    return sorted((e.name, e.md5) for e in store.list(store.resolve(folder)))


def _puts(emulator) -> list:
    return [r for r in emulator.requests if r.method == "PUT"]


def test_an_upload_slower_than_a_mib_per_timeout_is_sent_while_its_bytes_move(
        emulator, src, tmp_path):
    """1 MiB/s with a 0.5 s timeout: each 1 MiB block waits over a second for room (a third
    of a 4 MiB send buffer), and the answer 3 s for the body still buffered, while 16 KiB
    goes every 16 ms. It timed out, twice; now one PUT sends it all."""
    emulator.add_folder("runs")
    port = int(emulator.url.rsplit(":", 1)[1].strip("/"))
    proxy = _Throttle(port, 1 << 20)
    try:
        res = _push(proxy, tmp_path, src)
    finally:
        proxy.close()
    assert res.returncode == 0, res.stderr[-2000:]
    data = (src / "big.bin").read_bytes()
    assert _drive_files(emulator, "runs") == [("big.bin", hashlib.md5(data).hexdigest())]
    puts = _puts(emulator)
    assert len(puts) == 1 and puts[0].bytes_in == len(data), \
        [(r.path, r.bytes_in) for r in puts]


def test_an_upload_the_server_takes_nothing_of_fails_within_the_timeout(
        emulator, src, tmp_path):
    """Nothing taken past the first 256 KiB: each attempt ends once the buffers are full and
    0.5 s went by without a byte, and the push says so in one line."""
    emulator.add_folder("runs")
    port = int(emulator.url.rsplit(":", 1)[1].strip("/"))
    proxy = _Throttle(port, None)
    began = time.monotonic()
    try:
        res = _push(proxy, tmp_path, src)
    finally:
        took = time.monotonic() - began
        proxy.close()
    assert proxy.stalled.is_set()
    assert res.returncode == 1, res.stderr[-2000:]
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert lines[-1].startswith("Error: ") and lines[-1].endswith(
        "still failing after 2 attempts (timed out); try again later"), res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    assert took < 30, f"a stalled upload took {took:.0f} s to fail"
    assert _drive_files(emulator, "runs") == []
