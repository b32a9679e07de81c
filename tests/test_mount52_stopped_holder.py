"""mount52: a process stopped while it holds a state file's lock (``unread.json.lock``: a push
suspended with Ctrl-Z in its memory's read-modify-write) held every other push's update of
that file for good, without a word (``FileLock`` without a timeout): a cron push waited for
ever behind it. The wait is bounded now (``state.LOCK_WAIT_S``), then the update is not made
and said in one line naming the lock (the memory held by this process, as where the state
folder cannot be written)."""
from __future__ import annotations

import errno
import fcntl
import logging
import os
import threading

from test_pushremount49_memory import _memory_of_this_process_none  # noqa: F401


def test_a_held_memory_lock_is_waited_for_a_bounded_time(local_state, tmp_path, monkeypatch,
                                                         caplog):
    """On main 8704ac72 the note was still waiting after 5 s (till the holder let go)."""
    from drivestage import state, unread_memory

    monkeypatch.setattr(state, "LOCK_WAIT_S", 0.2)
    lock = unread_memory._file()._lock().lock_file
    os.makedirs(os.path.dirname(lock), exist_ok=True)
    held = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(held, fcntl.LOCK_EX)   # (as the stopped push's FileLock holds it)
    path = str(tmp_path / "src" / "mnt")
    try:
        t = threading.Thread(target=unread_memory._change, args=((), {path: errno.EIO}),
                             daemon=True)
        with caplog.at_level(logging.WARNING):
            t.start()
            t.join(5)
        assert not t.is_alive(), "still waiting for the lock after 5 s"
    finally:
        os.close(held)   # (lets a waiting main go)
    memory = unread_memory._file().path
    assert [r.getMessage() for r in caplog.records if "cannot write" in r.getMessage()] == [
        f"cannot write {memory} (its lock {lock} is held by another process of this machine, "
        "for 0.2 s now: one stopped (Ctrl-Z, a debugger) or stuck on a mount that does not "
        "answer? fuser -v names it): a folder push could not read is not known "
        "to the next process (an empty mount point there would be taken for a folder "
        "emptied; push --delete refuses while that lock is held): let that process go on (fg) "
        "or end it, then push again before you undo a stopped mount"]
    assert path in unread_memory._read()   # (held by this process, written at its next change)
    assert not memory.exists()
