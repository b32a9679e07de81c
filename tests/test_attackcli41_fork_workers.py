"""attackcli41: a process forked (``os.fork``, multiprocessing's fork, a DataLoader's workers
in a notebook that pulls in another thread) while a big zip's extraction workers run.

The fork's child got a copy of every descriptor: the orders' pipes to the workers (their
end of orders never came while the child lived, after the pull was killed) and the locks the
pull holds (DEST's pull and merge locks, the temporary folder's owner lock: a flock lives
until its last descriptor is closed)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

import drivestage
from drivestage.extract import tempdir

from _archives import a_zip, tree
from _cli import child_env, run
from test_extract_workers import worker_pids

#: A pull -x in a child process whose big zip's workers start; as the member list is read,
#: it forks a child that holds on (reading fd argv[2] until its end), says so on fd argv[1],
#: and waits on fd argv[2] itself.
_CHILD = """
import os, sys
from drivestage.extract import overlapped, workers
workers._WORTH = 1
real = overlapped.zip_directory
said, held = int(sys.argv[1]), int(sys.argv[2])
def zip_directory(path, fd, **kw):
    if os.fork() == 0:
        os.read(held, 1)
        os._exit(0)
    os.write(said, b"w")
    os.read(held, 1)
    return real(path, fd, **kw)
overlapped.zip_directory = zip_directory
from drivestage.cli import main
sys.argv[:] = ["drivestage"] + sys.argv[3:]
main()
"""


def _left(dest) -> list[str]:
    return sorted(p.name for p in dest.rglob(".drivestage-*")
                  if p.name.startswith((tempdir.TEMP_PREFIX, tempdir.OLD_PREFIX)))


def test_a_killed_pull_whose_fork_lives_on_leaves_no_worker_and_a_rerun_stages(
        emulator, drive_env, tmp_path, fast_retries):
    members = {f"ds/f{i:03d}.bin": os.urandom(3000 + i) for i in range(60)}
    blob = a_zip(members)
    emulator.add_file("d/set.zip", blob)
    dest = tmp_path / "data"
    ready_r, ready_w = os.pipe()
    hold_r, hold_w = os.pipe()
    env = dict(child_env(emulator),
               PYTHONPATH=os.path.dirname(os.path.dirname(drivestage.__file__)))
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(ready_w), str(hold_r), "pull",
                             "drive:d/set.zip", str(dest), "-x", "-q"], env=env,
                            pass_fds=(ready_w, hold_r), stderr=subprocess.DEVNULL)
    os.close(ready_w)
    os.close(hold_r)
    try:
        got = os.read(ready_r, 1)
        if got != b"w":
            raise AssertionError(got)
        assert len(worker_pids(proc.pid)) == 2
        proc.kill()   # (the OOM killer, a notebook's kernel restarted)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10   # they read the end of their orders' pipe
        while worker_pids(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        left = worker_pids(proc.pid)
        try:
            done = subprocess.run([sys.executable, "-m", "drivestage", "pull", "drive:d/set.zip",
                                   str(dest), "-x", "-q"], env=env, capture_output=True,
                                  text=True, timeout=60)
            code, err = done.returncode, done.stderr
        except subprocess.TimeoutExpired as exc:
            code, err = None, exc.stderr
        assert left == []
        assert code == 0, err
        assert tree(dest) == {"set.zip": blob, **members}
        assert _left(dest) == []
    finally:
        os.close(ready_r)
        os.close(hold_w)   # (the fork's child ends)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_lock_let_go_is_free_though_a_c_level_fork_holds_its_descriptor(tmp_path):
    """A fork no Python hook sees (C code's ``fork()``: here libc's, the GIL kept) while
    DEST's merge lock is held: the child's copy of the descriptor kept the lock after the
    pull let go of it, and the next extraction into DEST waited for the child's end."""
    import ctypes

    from drivestage.extract.statedir import state_lock

    libc = ctypes.PyDLL(None)   # (PyDLL: the GIL stays held across the call)
    r, w = os.pipe()
    try:
        with state_lock(str(tmp_path), "merge.lock", None) as mine:
            assert mine
            pid = libc.fork()
            if pid == 0:   # (the child: waits for the end of the pipe, then ends)
                buf = ctypes.create_string_buffer(1)
                libc.close(w)
                libc.read(r, buf, 1)
                libc._exit(0)
        with state_lock(str(tmp_path), "merge.lock", None) as again:
            assert again   # (None as on_wait: not waited for; False while the child held it)
    finally:
        os.close(w)   # (the child ends)
        os.close(r)
        os.waitpid(pid, 0)
