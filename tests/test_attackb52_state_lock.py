"""attackb52: a drivestage process stopped (Ctrl-Z, a debugger's breakpoint, SIGSTOP) or
stuck while it holds the lock of one of the state files (``unread.json``, ``md5-cache.json``,
``upload-sessions.json``: :class:`drivestage.state.JsonFile`).

Their lock is held for one small read-modify-write, but it was waited for without a bound
and without a word: every other push, mirror, ``unread forget`` and trainer hook of the
machine waited for it silently for as long as the holder stayed stopped. (A holder killed,
SIGKILL included, frees it at once: the kernel lets go of a dead process's ``flock``.) Now
the wait is bounded (``state.LOCK_WAIT_S``) and what it costs is said in one line, as for a
state folder that cannot be written: the state saves work, it never holds a transfer.

The holder here is a forked child that takes the lock as drivestage does (``flock`` on the
lock file) and stops itself; the test goes on once the kernel reports it stopped (no
sleeps). On main each wait below never returned (bounded here at 20 s, for a failure only).
"""
from __future__ import annotations

import errno
import fcntl
import logging
import os
import signal
import threading

import pytest

from test_pushremount49_memory import _memory_of_this_process_none  # noqa: F401


@pytest.fixture
def stopped_holder():
    """``hold(lock_file)``: a child holding ``lock_file``'s ``flock``, stopped (its pid);
    ``hold.end(pid)`` kills it (a kill frees the lock); killed at the end otherwise."""
    pids: list[int] = []

    def hold(lock_file: str) -> int:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:   # (the child: only system calls, then stopped)
            try:
                fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(fd, fcntl.LOCK_EX)
                os.write(write, b"x")
                os.kill(os.getpid(), signal.SIGSTOP)
            finally:
                os._exit(0)
        pids.append(pid)
        os.close(write)
        assert os.read(read, 1) == b"x"
        os.close(read)
        _, status = os.waitpid(pid, os.WUNTRACED)   # (returns once it is stopped)
        assert os.WIFSTOPPED(status)
        return pid

    def end(pid: int) -> None:
        pids.remove(pid)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)

    hold.end = end   # type: ignore[attr-defined]
    yield hold
    for pid in list(pids):
        end(pid)


def _within(seconds: float, fn):
    """``fn()`` in a thread; what it returned, or a failure where it did not end in time."""
    got: list = []
    thread = threading.Thread(target=lambda: got.append(fn()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "still waiting for the lock of a stopped process"
    return got[0]


def test_a_push_noting_a_stopped_mount_while_a_stopped_process_holds_the_memory(
        local_state, stopped_holder, monkeypatch, caplog):
    from drivestage import state, unread_memory

    monkeypatch.setattr(state, "LOCK_WAIT_S", 0.2, raising=False)
    memory = unread_memory._file()
    lock_file = memory._lock().lock_file
    holder = stopped_holder(lock_file)
    caplog.set_level(logging.WARNING)
    _within(20, lambda: unread_memory._change((), {"/mnt/drive": errno.ENOTCONN}))
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert lines == [
        f"cannot write {memory.path} (its lock {lock_file} is held by another process of this "
        "machine, for 0.2 s now: one stopped (Ctrl-Z, a debugger) or stuck on a mount that "
        "does not answer? fuser -v names it): a folder push could not read is not known to "
        "the next process (an empty mount point there would be taken for a folder emptied; "
        "push --delete refuses while that lock is held): let that process go on (fg) or end "
        "it, then push again before you undo a stopped mount"]
    assert set(unread_memory._read()) == {"/mnt/drive"}   # (held by this process meanwhile)
    assert not memory.path.exists()
    # The holder gone: the next change writes what this process held too.
    stopped_holder.end(holder)
    caplog.clear()
    _within(20, lambda: unread_memory._change((), {"/mnt/other": errno.EIO}))
    assert set(unread_memory._read(mine=True)) == {"/mnt/drive", "/mnt/other"}
    assert set(memory.read()["folders"]) == {"/mnt/drive", "/mnt/other"}
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_push_ends_while_a_stopped_process_holds_the_md5_cache(
        emulator, store, local_state, stopped_holder, monkeypatch, caplog):
    from drivestage import state
    from drivestage.upload_tree import push

    monkeypatch.setattr(state, "LOCK_WAIT_S", 0.2, raising=False)
    src = local_state / "run"
    src.mkdir()
    (src / "train.log").write_bytes(b"epoch 1\n")
    cache = state.Md5Cache()
    stopped_holder(cache._file._lock().lock_file)
    caplog.set_level(logging.WARNING)
    result = _within(20, lambda: push(str(src), "logs", store=store))
    assert result.uploaded == ["train.log"]
    assert emulator.read_bytes(emulator.find("logs/train.log")["id"]) == b"epoch 1\n"
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert lines == [
        f"cannot write {cache._file.path} (its lock {cache._file._lock().lock_file} is held "
        "by another process of this machine, for 0.2 s now: one stopped (Ctrl-Z, a debugger) "
        "or stuck on a mount that does not answer? fuser -v names it): the files of this run "
        "are hashed again next time"]


def test_unread_forget_while_a_stopped_process_holds_the_memory(
        local_state, stopped_holder, monkeypatch):
    from _cli import run
    from drivestage import state, unread_memory

    monkeypatch.setattr(state, "LOCK_WAIT_S", 0.2, raising=False)
    unread_memory._change((), {"/mnt/drive": errno.ENOTCONN})
    memory = unread_memory._file()
    lock_file = memory._lock().lock_file
    stopped_holder(lock_file)
    code, _out, err = _within(20, lambda: run("unread", "forget", "/mnt/drive"))
    assert code == 1
    assert err.splitlines()[-1] == (
        f"Error: cannot write {memory.path} (its lock {lock_file} is held by another process "
        "of this machine, for 0.2 s now: one stopped (Ctrl-Z, a debugger) or stuck on a mount "
        "that does not answer? fuser -v names it): nothing was forgotten; try again")
    assert set(memory.read()["folders"]) == {"/mnt/drive"}


def test_a_push_saving_its_upload_session_at_each_chunk_says_the_held_lock_once(
        local_state, stopped_holder, monkeypatch, caplog):
    from drivestage import state

    monkeypatch.setattr(state, "LOCK_WAIT_S", 0.2, raising=False)
    monkeypatch.setattr(state, "STALLED_WAIT_S", 0.05, raising=False)
    sessions = state.UploadSessions()
    stopped_holder(sessions._file._lock().lock_file)
    caplog.set_level(logging.DEBUG, "drivestage.state")
    for chunk in range(3):
        assert not _within(20, lambda: sessions.put("k", {"uri": "u", "created": 1e12 + chunk}))
    said = [(r.levelno, r.getMessage().split(" (")[0]) for r in caplog.records]
    path = sessions._file.path
    assert said == [(logging.WARNING, f"cannot write {path}")] + [
        (logging.DEBUG, f"cannot write {path}")] * 2


def test_runs_forget_while_a_stopped_process_holds_the_run_folders_records(
        local_state, tmp_path, stopped_holder, monkeypatch):
    from _cli import run
    from drivestage import run_folders, state
    from drivestage.local_marks import marked
    from drivestage.upload_tree import push

    monkeypatch.setattr(state, "LOCK_WAIT_S", 0.2, raising=False)
    src, exp1 = tmp_path / "run", tmp_path / "nas" / "runs" / "exp1"
    src.mkdir()
    (src / "epoch_001.pt").write_bytes(b"x" * 10)
    exp1.mkdir(parents=True)
    push(str(src), str(exp1), run_folder=True)
    records = run_folders._file()
    assert len(records.read()) == 1 and marked(str(exp1))
    lock_file = records._lock().lock_file
    stopped_holder(lock_file)
    code, out, err = _within(20, lambda: run("runs", "forget", str(exp1)))
    assert (code, out) == (1, "")
    assert err == (   # (not a traceback of the OSError)
        f"Error: cannot write {records.path} (its lock {lock_file} is held by another process "
        "of this machine, for 0.2 s now: one stopped (Ctrl-Z, a debugger) or stuck on a mount "
        "that does not answer? fuser -v names it): nothing was changed; try again\n")
    assert len(records.read()) == 1 and marked(str(exp1))   # (both as they were)


def test_the_md5_caches_sweep_stats_its_entries_without_holding_its_lock(
        local_state, monkeypatch):
    """The save forgets entries of files gone from the disk (a stat each): it stat'ed them
    holding the cache's lock, so one stat below a mount that hangs (a FUSE mount made over a
    folder whose files were hashed) held every other process's save for as long. Each stat
    of the sweep here checks whether another process could take the lock then."""
    import json

    from filelock import FileLock, Timeout

    from drivestage import state

    (local_state / "state").mkdir()
    gone = {str(local_state / "old" / f"autosave_{i:08d}.pt"): [100, i, "0" * 32, 1, i]
            for i in range(state.Md5Cache.SWEEP_SLACK + 1)}
    (local_state / "state" / "md5-cache.json").write_text(json.dumps(gone))
    live = local_state / "epoch_001.pt"
    live.write_bytes(b"x")
    cache = state.Md5Cache()
    cache.put(str(live), os.stat(live), "1" * 32, written=True)
    lock_file = cache._file._lock().lock_file
    free: list[bool] = []
    real = os.path.lexists

    def lexists(path):
        if path in gone:
            other = FileLock(lock_file)   # (another process's: a descriptor of its own)
            try:
                other.acquire(timeout=0)
                other.release()
                free.append(True)
            except Timeout:
                free.append(False)
        return real(path)

    monkeypatch.setattr(os.path, "lexists", lexists)
    cache.save()
    assert free and all(free), f"{free.count(False)} of the sweep's stats held the lock"
    assert list(json.loads((local_state / "state" / "md5-cache.json").read_text())) == [
        str(live)]
