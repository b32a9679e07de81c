"""The emulator's state folder: made private, held by one emulator at a time, and its
SQLite database opened or refused with one clear line (split from store.py at its line cap).
"""
from __future__ import annotations

import fcntl
import os
import sqlite3
import stat

from drivestage.emulator.errors import DataDirError

TABLES = ("files", "drives", "sessions", "meta", "ids")

#: Descriptors of the data-dir locks this process holds. A child forked without exec (a
#: DataLoader worker, multiprocessing) would inherit each and keep the folder locked after
#: the emulator stopped, so the child closes its copies at once (the parent's lock stays).
_HELD: set[int] = set()


def _forget_in_child() -> None:
    for fd in list(_HELD):
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


os.register_at_fork(after_in_child=_forget_in_child)


def _not_a_link(path: str) -> None:
    """Refuse a link at one of the state folder's own names: followed, the lock created the
    file it named, the database was made 0600 and written into it, a blob folder kept the
    uploads wherever it led (a --data-dir another user can write into: attack46)."""
    if os.path.islink(path):
        raise _link_refused(path)


def _link_refused(path: str) -> DataDirError:
    return DataDirError(f"{path} is a link; the emulator keeps its state in files of its own "
                        "there: remove it, or start with an empty --data-dir")


def _made_private(path: str) -> None:
    """Make the file ``path`` 0600 where it is there, through its own descriptor: changed by
    its name after :func:`_not_a_link` had looked, a link put there meanwhile had the file
    it named made 0600 (pushlefts47). A link there now is refused as that look refuses it."""
    try:
        # (O_PATH: no read access asked for, and no FIFO's open waited on)
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        if stat.S_ISLNK(os.fstat(fd).st_mode):
            raise _link_refused(path)
        os.chmod(f"/proc/self/fd/{fd}", 0o600)   # (the very file the descriptor holds)
    finally:
        os.close(fd)


def private_dirs(*paths: str) -> None:
    """Create the state folders 0700 (and tighten ones an older emulator made)."""
    for path in paths:
        _not_a_link(path)
        os.makedirs(path, mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)


def lock_data_dir(data_dir: str) -> int:
    """Create ``data_dir`` (0700) and hold ``data_dir/lock``; the descriptor to close when
    done. Two emulators on one folder each kept its state in memory and wrote it through,
    so each overwrote the other's records and one's uploads were gone after a restart
    (attackemu45): the second is refused. The lock goes with the process, a SIGKILL too."""
    if not os.path.isdir(data_dir):
        os.makedirs(data_dir, mode=0o700)
    lock = os.path.join(data_dir, "lock")
    _not_a_link(lock)   # (and not followed if one is put there now: ELOOP)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise DataDirError(f"{data_dir} is in use by another Drive emulator; stop it, or give "
                           "this one another --data-dir") from None
    _HELD.add(fd)
    return fd


def unlock_data_dir(fd: int) -> None:
    """Let go of a folder :func:`lock_data_dir` locked."""
    _HELD.discard(fd)
    os.close(fd)


def open_db(db_path: str) -> sqlite3.Connection:
    """The state database (created 0600), its tables made; :class:`DataDirError` when the
    file is not a database SQLite can read."""
    for suffix in ("", "-wal", "-shm", "-journal"):   # (all held under the lock: checked once)
        _not_a_link(db_path + suffix)
    # Created 0600 before SQLite opens it: its -wal and -shm files copy that mode.
    os.close(os.open(db_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600))
    for suffix in ("", "-wal", "-shm"):     # a state folder from an older emulator
        _made_private(db_path + suffix)
    # (SQLite opens -wal and -shm O_NOFOLLOW itself: a link there is replaced, or refused)
    db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        for table in TABLES:
            db.execute(f"CREATE TABLE IF NOT EXISTS {table} (id TEXT PRIMARY KEY, doc TEXT)")
    except sqlite3.DatabaseError as exc:
        db.close()
        raise unreadable(db_path, exc) from None
    return db


def unreadable(db_path: str, exc: BaseException) -> DataDirError:
    """The refusal of a state file that is corrupted or was edited into something else."""
    return DataDirError(f"cannot read the emulator's state in {db_path}: {exc} (corrupted or "
                        "edited by hand?); restore it, or start with an empty --data-dir")
