"""The hash rates measured in a thread from a pull's start (checksums.measure_soon,
overlap40), attacked: a pull that ends while the thread still hashes (an error, a usage
error, a Ctrl-C) exits at once with its one line and nothing printed at the interpreter's
exit; a process forked while it measures measures on its own instead of waiting for a
thread it does not have; the library (no CLI, no measure_soon) pulling from two threads
at once, twice, measures each rate once, never two side by side."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

import drivestage
from drivestage import checksums
from drivestage.stage import pull

from _archives import tree
from _cli import child_env

#: drivestage's CLI in a child whose hash-rate thread hashes for hours (a million timings
#: of 1 MiB each), so that whatever ends the pull ends it while that thread runs; it
#: writes a byte to fd argv[1] once the thread hashes.
_CHILD = """
import os, sys
from drivestage import checksums
checksums._TIMINGS = 10 ** 6
real, said = checksums._measured, int(sys.argv[1])
def _measured(name):
    os.write(said, b"m")
    return real(name)
checksums._measured = _measured
from drivestage.cli import main
sys.argv[:] = ["drivestage"] + sys.argv[2:]
main()
"""


def _child(emulator, *args: str, sig: int = 0) -> tuple[int, str]:
    """Run ``drivestage ARGS`` in a child (see _CHILD), with ``sig`` sent once its thread
    hashes; its exit code and stderr. The child must end within 30 s (its thread: hours)."""
    said_r, said_w = os.pipe()
    env = dict(child_env(emulator),
               PYTHONPATH=os.path.dirname(os.path.dirname(drivestage.__file__)))
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(said_w), *args], env=env,
                            pass_fds=(said_w,), stderr=subprocess.PIPE)
    os.close(said_w)
    try:
        if sig:
            assert os.read(said_r, 1) == b"m"
            proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        os.close(said_r)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err.decode()


def test_a_usage_error_while_the_rates_are_measured(emulator, tmp_path):
    code, err = _child(emulator, "pull", "drive:d/a.zip", str(tmp_path / "data"),
                       "--remove-archive")
    assert code == 2, err
    assert err.splitlines()[-1].startswith("Error: --remove-archive removes the archive "
                                           "once --extract has extracted it"), err
    assert "Traceback" not in err and "Exception ignored" not in err and "Fatal" not in err


def test_an_error_while_the_rates_are_measured(emulator, tmp_path):
    code, err = _child(emulator, "pull", "drive:d/none.bin", str(tmp_path / "data"))
    assert code == 1, err
    assert err.splitlines() == ["Error: drive:d not found (no item named 'd' in drive:; "
                                "names are case-sensitive)"], err


def test_a_ctrl_c_while_the_rates_are_measured(emulator, tmp_path):
    emulator.add_file("d/b.bin", os.urandom(5000))
    code, err = _child(emulator, "pull", "drive:d/b.bin", str(tmp_path / "data"),
                       sig=signal.SIGINT)
    assert code == 130, err
    assert err.splitlines() == ["Interrupted."], err
    assert [p.name for p in (tmp_path / "data").glob("b.bin")] == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX")
def test_a_process_forked_while_the_rates_are_measured_measures_its_own(monkeypatch):
    monkeypatch.setattr(checksums, "_EARLY", None)
    entered, release = threading.Event(), threading.Event()

    def _measured(name: str) -> float:  # the thread measures until the test says
        entered.set()
        release.wait(30)
        return 1e9

    monkeypatch.setattr(checksums, "_measured", _measured)
    checksums.measure_soon()
    try:
        assert entered.wait(10)
        pid = os.fork()
        if pid == 0:  # the child: no such thread here
            code = 4
            try:
                signal.alarm(5)   # (a wait for good ends the child with SIGALRM)
                checksums._measured = lambda name: 2e9
                code = 0 if checksums.rate("md5") == 2e9 else 3
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
    finally:
        release.set()
        early = checksums._EARLY
        assert early is not None and early.join(10)
    assert os.waitstatus_to_exitcode(status) == 0


def test_the_library_pulling_from_two_threads_at_once_measures_each_rate_once(
        emulator, drive_env, tmp_path, monkeypatch):
    monkeypatch.setattr(checksums, "_EARLY", None)   # no CLI: no measure_soon
    rates = {"md5": 7e8, "sha256": 1.5e9}
    done: dict[str, float] = {}
    inside: list[str] = []
    most = [0]
    lock = threading.Lock()
    second = threading.Event()

    def _measured(name: str) -> float:  # lru_cached as the real one is
        if name in done:
            return done[name]
        with lock:
            inside.append(name)
            most[0] = max(most[0], len(inside))
            if len(inside) > 1:
                second.set()
        second.wait(0.5)   # a second measurement beside this one would start meanwhile
        with lock:
            inside.remove(name)
        done[name] = rates[name]
        return done[name]

    monkeypatch.setattr(checksums, "_measured", _measured)
    blobs = {n: os.urandom(70_000) for n in ("a.bin", "b.bin")}
    for n, blob in blobs.items():
        emulator.add_file(f"d/{n}", blob)
    store = drivestage.connect()
    for round_ in (1, 2):   # twice: the second asks the rates measured the first time
        errors: list[BaseException] = []

        def one(n: str) -> None:
            try:
                pull(f"drive:d/{n}", str(tmp_path / f"{round_}{n}"), quiet=True, store=store)
            except BaseException as exc:  # the test's thread says it
                errors.append(exc)

        threads = [threading.Thread(target=one, args=(n,)) for n in blobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads) and errors == []
        for n, blob in blobs.items():
            assert tree(tmp_path / f"{round_}{n}") == {n: blob}
    assert most[0] == 1
    assert sorted(done) == ["md5", "sha256"]


#: _CHILD's drivestage, given a SIGINT by the first weakref callback of importlib (the one that
#: forgets a module's lock) to run once the hash-rate thread started: the pull then loads the
#: Drive client's modules, and Python runs a signal's handler at the callback's first line
#: when the signal came while the import's own work ran in C.
_IN_CALLBACK = """
import signal, sys, threading
from drivestage import checksums
checksums._TIMINGS = 10 ** 6
real, armed = checksums.measure_soon, []
def measure_soon():
    real()
    armed.append(True)
checksums.measure_soon = measure_soon
main_ident = threading.get_ident()
def profile(frame, event, arg):
    if armed and event == "call" and frame.f_code.co_name == "cb" and \\
            frame.f_code.co_filename == "<frozen importlib._bootstrap>":
        sys.setprofile(None)
        signal.pthread_kill(main_ident, signal.SIGINT)
sys.setprofile(profile)
from drivestage.cli import main
sys.argv[:] = ["drivestage"] + sys.argv[1:]
main()
"""


def test_a_ctrl_c_raised_in_an_imports_callback_is_not_lost(emulator, tmp_path):
    # It was "Exception ignored in: <function _get_module_lock.<locals>.cb>" and dropped: the
    # pull went on, and waited for the hours-long measurement (test_a_ctrl_c_while_the_rates_
    # are_measured timed out so, once in a full run).
    emulator.add_file("d/b.bin", os.urandom(5000))
    env = dict(child_env(emulator),
               PYTHONPATH=os.path.dirname(os.path.dirname(drivestage.__file__)))
    proc = subprocess.Popen([sys.executable, "-c", _IN_CALLBACK, "pull", "drive:d/b.bin",
                             str(tmp_path / "data")], env=env, stderr=subprocess.PIPE)
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert err.decode().splitlines() == ["Interrupted."], err
    assert [p.name for p in (tmp_path / "data").glob("b.bin")] == []
