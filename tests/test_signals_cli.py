"""Signals sent to real ``drivestage mirror`` and ``drivestage emulator`` processes at chosen
moments: what the user is told, the exit code, what Drive (or the emulator's state) holds,
and how soon the process ends."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from _child_waits import until
from _forkcli import PIPE, cli_server
from _mirror_signal import chunks_watched, live_files
from _sigpush42 import NOHUP
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)
from drivestage.cli import cli


@pytest.fixture
def env(local_state, tmp_path, drive_env):
    return {**drive_env, "DRIVESTAGE_STATE_DIR": str(tmp_path / "state"),
            "DRIVESTAGE_RETRY_BASE": "0.01"}


def _md5s(folder) -> dict[str, str]:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def _until(proc, ready, what: str) -> None:
    until(proc, ready, what, bound=30)


def _mirror(src, env, *args: str, script=None):
    """``drivestage mirror SRC drive:Models/logs --every 3600 ARGS`` in a child forked with
    the CLI imported (tests/_forkcli.py; ``script``: see its ``popen``)."""
    return cli_server().popen(
        ["mirror", str(src), "drive:Models/logs", "--every", "3600", *args],
        env={**os.environ, **env}, stdout=PIPE, stderr=PIPE, text=True, script=script)


def _abandoned_push_resumes(emulator, src) -> None:
    """After an abandoned final push: Drive holds only what was whole before it (the small
    log), and the next push resumes the cut upload (no new session) to a full copy."""
    assert list(live_files(emulator)) == ["results.csv"]
    emulator.clear_requests()
    result = CliRunner().invoke(cli, ["push", str(src), "drive:Models/logs",
                                      "--chunk-size", "256KiB"])
    assert result.exit_code == 0, result.output
    assert live_files(emulator) == _md5s(src)
    assert not [r for r in emulator.requests if r.method == "POST"
                and r.path.startswith("/upload/")], "the cut upload was not resumed"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_mirror_stopped_while_it_reads_its_credentials_still_pushes(emulator, env, tmp_path,
                                                                     sig):
    """The signal lands before the first push, while DEST is opened (its credentials file,
    a FIFO here, is read: another program writes it when the test says). The mirror pushes
    once and exits 0, as documented; SIGTERM killed it without a word or a push (-15), and
    SIGINT ended it 'Interrupted.' (130) with nothing pushed."""
    src = tmp_path / "logs"
    src.mkdir()
    (src / "results.csv").write_text("epoch\n1\n")
    fifo = tmp_path / "token.json"
    os.mkfifo(fifo)
    env = {k: v for k, v in env.items() if k != "DRIVESTAGE_TOKEN"}
    proc = _mirror(src, env, "--credentials", str(fifo))
    try:
        token = json.dumps({"type": "authorized_user", "token": "test-token",
                            "refresh_token": "r", "client_id": "c", "client_secret": "s",
                            "expiry": "2099-01-01T00:00:00Z"})
        try:
            with open(fifo, "w") as writer:   # open once the child opened it to read
                proc.send_signal(sig)
                writer.write(token)
        except BrokenPipeError:
            pass    # it died of the signal: asserted below
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopping: pushing once more" in err and "final push in" in err, err
    assert "Traceback" not in err
    assert live_files(emulator) == _md5s(src)


def test_mirror_under_nohup_outlives_its_terminal(emulator, env, tmp_path):
    """Started with SIGHUP ignored (``nohup``), the mirror leaves it ignored: after a hang-up
    it goes on mirroring, push after push (two files written one after the other's landing
    both reach Drive: a stop pushes once, in one pass, and ends), and the SIGTERM after them
    is its one stop (final push, exit 0). Handled, the hang-up ends it after one push: the
    second file never lands and the wait below sees the process gone (it passed so before,
    as a hang-up then a SIGTERM is one stop either way)."""
    src = tmp_path / "logs"
    src.mkdir()
    (src / "results.csv").write_text("epoch\n1\n")
    proc = _mirror(src, env, "--every", "0.3", script=NOHUP)   # (SIGHUP ignored from the start)
    try:
        _until(proc, lambda: "results.csv" in live_files(emulator), "the first push never ended")
        proc.send_signal(signal.SIGHUP)
        for name in ("epoch_001.pt", "epoch_002.pt"):
            (src / name).write_bytes(name.encode() * 100)
            _until(proc, lambda: name in live_files(emulator), f"{name} was never pushed")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "final push in" in err and "Interrupted" not in err, err
    assert live_files(emulator) == _md5s(src)


def test_mirror_second_signal_abandons_the_final_push_at_once(emulator, env, tmp_path):
    """A second Ctrl-C while the final push uploads a checkpoint ends the mirror at once
    with one line and exit 130, Drive holding no part of that checkpoint; the next push
    resumes the upload and Drive then holds exactly the folder. The second signal was
    ignored: the final push ran to its end, however long it took."""
    src = tmp_path / "logs"
    src.mkdir()
    (src / "results.csv").write_text("epoch\n1\n")
    proc = _mirror(src, env, "--chunk-size", "256KiB")
    try:
        _until(proc, lambda: "results.csv" in live_files(emulator), "the first push never ended")
        (src / "epoch_001.pt").write_bytes(os.urandom(8 * 256 * 1024))
        # The final push takes 8 s (7 s after its first chunk): an ignored second Ctrl-C is
        # told from one acted on by far more than a loaded machine's lateness in exiting.
        emulator.faults.throttle(256 * 1024)
        emulator.clear_requests()
        proc.send_signal(signal.SIGINT)
        _until(proc, lambda: any(r.status == 308 for r in emulator.requests),
               "the final push never sent a chunk")
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    emulator.faults.throttle(None)
    assert proc.returncode == 130, err
    assert err.splitlines()[-1] == ("Interrupted: the final push was abandoned (a cut upload "
                                    "resumes on the next push).")
    assert "Traceback" not in err
    assert took < 4, took   # (a process's exit, a thread's end: seconds on a loaded machine)
    _abandoned_push_resumes(emulator, src)


def test_mirror_run_in_process_abandons_its_final_push_and_lets_the_host_live(
        emulator, env, tmp_path, monkeypatch):
    """``mirror`` run inside another process (a notebook, CliRunner here): a second Ctrl-C
    while the final push uploads a checkpoint ends the command at once with the abandon
    line and exit code 130, and the host process lives on (the command called
    ``os._exit(130)``, which ended the host). No mirror or upload thread is left pushing in
    the host, and the next push resumes the cut uploads."""
    import threading

    src = tmp_path / "logs"
    src.mkdir()
    (src / "results.csv").write_text("epoch\n1\n")
    # (the 4th: the final push's third chunk: one is committed)
    first_push_sends, final_push_sent_a_chunk = chunks_watched(emulator, monkeypatch, 4)
    failed, second_sent = [], []
    main = threading.main_thread().ident

    def ctrl_c_twice():
        try:
            assert first_push_sends.wait(30), "the first push never sent results.csv"
            # The first push listed the folder before it sent a byte: these are for the
            # final one, which sends both at once (--jobs 4: each upload in a thread).
            for name in ("epoch_001.pt", "epoch_002.pt"):
                (src / name).write_bytes(os.urandom(8 * 256 * 1024))
            emulator.faults.throttle(512 * 1024)     # the final push would take 8 s
            signal.pthread_kill(main, signal.SIGINT)
            assert final_push_sent_a_chunk.wait(30), "the final push never sent a chunk"
            second_sent.append(time.monotonic())
            signal.pthread_kill(main, signal.SIGINT)
        except BaseException as exc:
            failed.append(exc)
            signal.pthread_kill(main, signal.SIGTERM)   # the mirror must end all the same

    before = set(threading.enumerate())
    helper = threading.Thread(target=ctrl_c_twice)
    helper.start()
    result = CliRunner().invoke(cli, ["mirror", str(src), "drive:Models/logs", "--every",
                                      "3600", "--chunk-size", "256KiB"])
    took = time.monotonic() - second_sent[0] if second_sent else None
    helper.join()
    emulator.faults.throttle(None)
    assert not failed, failed
    assert result.exit_code == 130, result.output
    assert result.stderr.splitlines()[-1] == (
        "Interrupted: the final push was abandoned (a cut upload resumes on the next push).")
    assert "Traceback" not in result.output
    assert took < 4, took   # (a process's exit, a thread's end: seconds on a loaded machine)
    left = [t for t in set(threading.enumerate()) - before if t.name.startswith("drivestage")]
    for t in left:    # the push stops between two chunks: at most the one under way
        t.join(2)
    assert not [t.name for t in left if t.is_alive()], "a push goes on in the host process"
    _abandoned_push_resumes(emulator, src)


def test_emulator_stopped_while_it_stores_an_upload_leaves_no_stray_blob(
        emulator, env, tmp_path, monkeypatch):
    """``drivestage emulator`` stops (its signal handler calls ``Emulator.stop()``) while a
    handler finishes an upload: it hashes the received bytes (a slow disk holds it there
    until the state is closed). The state left in --data-dir reloads with nothing half
    done, and the client's next push ends with the file on Drive. The handler moved the
    upload into the file store, then failed to record it (the database was closed): a blob
    no file owned stayed in the data folder for good."""
    import threading

    import drivestage.emulator.routes_resumable as routes_resumable
    import drivestage.emulator.store as store_module
    from drivestage.emulator import Emulator

    hash_blob = store_module.blob_checksums
    reached, handler = threading.Event(), []

    def slow_disk(path):
        if not reached.is_set():
            handler.append(threading.current_thread())
            reached.set()
            deadline = time.monotonic() + 10
            # Until stop() closed the state. Asked under the store's lock: a query on the
            # database while stop() closed it from the main thread crashed the interpreter
            # (a segfault in sqlite3, once in a CI run).
            while time.monotonic() < deadline:
                with emulator.store.lock:
                    if emulator.store.closed:
                        break
                time.sleep(0.005)
        return hash_blob(path)

    monkeypatch.setattr(store_module, "blob_checksums", slow_disk)
    # (a finishing resumable session hashes its bytes before it takes the store's lock)
    monkeypatch.setattr(routes_resumable, "blob_checksums", slow_disk)
    # stop() waits this long for the handler before it closes the state, which the handler
    # waits for: the 10 s default made this test take 10 s.
    monkeypatch.setattr(emulator, "stop_wait", 0.5)
    src = tmp_path / "logs"
    src.mkdir()
    (src / "epoch_001.pt").write_bytes(os.urandom(300_000))
    proc = cli_server().popen(["push", str(src), "drive:Models/logs"],
                              env={**os.environ, **env}, stdout=PIPE, stderr=PIPE, text=True)
    try:
        assert reached.wait(30), proc.communicate()
        emulator.stop()
        handler[0].join(10)
        assert not handler[0].is_alive()
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    data_dir = emulator.store.data_dir
    again = Emulator(data_dir=data_dir, port=emulator.port).start()
    try:
        records = {r["id"] for r in again.store.all_files()}
        assert set(os.listdir(os.path.join(data_dir, "blobs"))) <= records
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", again.url)
        result = CliRunner().invoke(cli, ["push", str(src), "drive:Models/logs"])
        assert result.exit_code == 0, result.output
        assert live_files(again) == _md5s(src)
    finally:
        again.stop()


def test_mirror_whose_final_push_fails_says_so_once(emulator, env, tmp_path, monkeypatch):
    """SIGTERM, then the final push fails (Drive answers 503 to every upload): exit 1 and
    one "Error:" line. The mirror thread logged the same failure first, saying "(will try
    again)" as the process was ending."""
    import threading

    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "2")
    src = tmp_path / "logs"
    src.mkdir()
    (src / "results.csv").write_text("epoch\n1\n")
    failed = []

    def adversary():
        try:
            deadline = time.monotonic() + 30
            while "results.csv" not in live_files(emulator):    # pushed: the handler is in place
                assert time.monotonic() < deadline, "the first push never ended"
                time.sleep(0.01)
            (src / "epoch_001.pt").write_bytes(b"weights")
            emulator.faults.inject(path="^/upload/", status=503, times=None)
            os.kill(os.getpid(), signal.SIGTERM)
        except BaseException as exc:
            failed.append(exc)
            os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=adversary)
    thread.start()
    result = CliRunner().invoke(cli, ["mirror", str(src), "drive:Models/logs", "--every",
                                      "3600"])
    thread.join()
    assert not failed, failed
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert lines[-1].startswith(f"Error: mirror of {src} to drive:Models/logs failed: "), lines
    assert "will try again" not in result.stderr, result.stderr
    assert sum("failed" in line for line in lines) == 1, lines


_CTRL_C_WHILE_LOADING = """
import os, runpy, signal, sys

class CtrlC:  # a real SIGINT, sent as the command's module {target} is looked for
    def find_spec(self, name, path=None, target=None):
        if name == {target!r}:
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, CtrlC())
sys.argv = [{prog!r}, "--help"]
runpy.run_module({prog!r}, run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("prog,target", [("drivestage", "drivestage.cli.pull"),
                                         ("trainer", "trainer.cli.train")])
def test_a_ctrl_c_while_the_commands_load_ends_like_one_during_a_command(prog, target):
    """A Ctrl-C in the first tens of milliseconds, while the command modules are imported,
    ends with ``Interrupted.`` and exit code 130, as one at any later moment does (it was a
    traceback, and the exit of a process killed by SIGINT); the console scripts enter there."""
    res = subprocess.run([sys.executable, "-c", _CTRL_C_WHILE_LOADING.format(
        prog=prog, target=target)], capture_output=True, text=True, timeout=60)
    assert (res.returncode, res.stderr, res.stdout) == (130, "Interrupted.\n", "")
    import importlib.metadata

    scripts = {e.name: e.value for e in importlib.metadata.entry_points(group="console_scripts")
               if e.name in ("drivestage", "trainer")}
    assert scripts == {"drivestage": "drivestage.entry:main", "trainer": "trainer.entry:main"}


_CTRL_C_WHILE_PARSING = """
import os, runpy, signal, sys

class CtrlC:  # a real SIGINT as --version looks its package up, once the commands are loaded
    def find_spec(self, name, path=None, target=None):
        if name == "importlib.metadata":
            if {prog!r} + ".cli" not in sys.modules:
                sys.exit("importlib.metadata is loaded with the commands now: find another moment")
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, CtrlC())
sys.argv = [{prog!r}, "--version"]
runpy.run_module({prog!r}, run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("prog", ["drivestage", "trainer"])
def test_a_ctrl_c_while_the_arguments_are_read_ends_like_one_during_a_command(prog):
    """A Ctrl-C after the commands loaded but before one runs (click reading the arguments:
    here ``--version`` looking up the package) ends with ``Interrupted.`` and 130 too, not
    click's ``Aborted!`` and exit code 1."""
    res = subprocess.run([sys.executable, "-c", _CTRL_C_WHILE_PARSING.format(prog=prog)],
                         capture_output=True, text=True, timeout=60)
    assert (res.returncode, res.stderr, res.stdout) == (130, "Interrupted.\n", "")


@pytest.mark.parametrize("pair", [(signal.SIGTERM, signal.SIGHUP), (signal.SIGHUP, signal.SIGTERM)],
                         ids=["term-hup", "hup-term"])
def test_mirror_stopped_by_systemd_pushes_once_more(emulator, env, tmp_path, pair):
    """systemd stopping a login session (a VM's shutdown, a mirror started over SSH) sends
    SIGTERM and right after it SIGHUP (Linux may deliver the SIGHUP first). The second of
    them was taken for the user's second signal: the final push abandoned, exit 130, the
    newest checkpoint not on Drive (attackstop32). Now one final push, exit 0."""
    src = tmp_path / "logs"
    src.mkdir()
    (src / "results.csv").write_text("epoch\n1\n")
    proc = _mirror(src, env)
    try:
        _until(proc, lambda: "results.csv" in live_files(emulator), "the first push never ended")
        (src / "epoch_001.pt").write_bytes(b"w" * 1000)
        for signum in pair:
            proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "final push in" in err and "Interrupted" not in err, err
    assert live_files(emulator) == _md5s(src)
