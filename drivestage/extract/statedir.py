"""DEST's state folder (``DEST/.drivestage``: the merge lock, each file's pull lock, the
stamps), reached only through a descriptor checked to be this user's real folder.

Whoever can write DEST (a shared folder, another user) can put a link or a folder of their
own at ``.drivestage``: a lock or a stamp made through the link lands wherever it leads, and
stamps read from their folder decide what an update removes. So the folder is opened with
``O_NOFOLLOW|O_DIRECTORY`` and must be this user's; every lock and stamp inside is reached
from that descriptor (``dir_fd``) and must be a regular file of this user's too. Anything
else stops the command with one line (:func:`state_error`), before DEST changes.
"""
from __future__ import annotations

import errno
import os
import stat
import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

from drivestage.errors import DestChangedError
from drivestage.fork_drop import drop_in_forks, forget
from drivestage.interrupts import deferred, flock_wait
from drivestage.extract.tempdir import DIR_FLAGS, new_file_owner
from drivestage.extract.validation import STATE_DIR

if sys.platform != "win32":
    import fcntl

_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # a FIFO never waits
#: The most bytes :func:`read_own` reads of a state file: a stamp or journal lists the
#: members of an archive, ~100 bytes each (ten million fit); one larger is damaged, and read
#: whole it held memory in proportion (a sparse file of terabytes: mount52).
OWN_MAX = 1 << 30
_LOCK_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
#: A transient lock taken on a file its name no longer leads to is let go and taken again
#: (see :func:`state_lock`), at most this many times in a row, for at most LOCK_RECHECK_S
#: seconds, without waiting for another holder between: on a file system whose inode
#: numbers change from one look to the next (some FUSE and network mounts) it never counts,
#: and the loop spun for ever at 100 % CPU.
LOCK_RECHECKS = 100
LOCK_RECHECK_S = 10.0
#: The time bound counts once this many rounds came in a row: one re-check is the usual
#: race (the previous holder removed the file this process had opened), however long the
#: rounds before it took (a slow network mount, a paused VM); it failed that pull with
#: "not the one of that name 1 times in a row".
LOCK_RECHECK_MIN = 10
#: How the name is looked up beside the descriptor (a seam: tests put another thread's
#: replacement of the file between the two looks).
_lookup = os.stat


def state_error(folder: str) -> DestChangedError:
    """The one line for a ``.drivestage`` that is not this user's own folder."""
    return DestChangedError(f"{os.path.join(folder, STATE_DIR)}, where drivestage keeps its "
                            "locks and stamps, is a link, a file or another user's folder; "
                            "is another program writing there? Move it away and run the "
                            "command again")


def lock_error(folder: str, name: str) -> DestChangedError:
    """The one line for a lock file in the state folder that is a link, a folder or another
    user's file. It said :func:`state_error`'s "move .drivestage away": that advice threw
    away every stamp of DEST for one odd entry inside. A lock file holds nothing."""
    return DestChangedError(f"{os.path.join(folder, STATE_DIR, name)}, a lock file of "
                            "drivestage, is a link, a folder or another user's file; is "
                            "another program writing there? Remove it (a lock file holds "
                            "nothing; the stamps beside it stay) and run the command again")


def recheck_error(folder: str, name: str, rounds: int) -> DestChangedError:
    """The one line for a lock whose file was never the one its name leads to."""
    return DestChangedError(f"cannot hold the lock {os.path.join(folder, STATE_DIR, name)}: "
                            f"the file locked was not the one of that name {rounds} "
                            "times in a row (a file system whose inode numbers change, such "
                            "as some FUSE or network mounts?); pull into a DEST on a local "
                            "disk")


def open_state(folder: str, *, create: bool) -> Optional[int]:
    """A descriptor of ``folder``'s state folder (made 0700 first when ``create``), or None
    when there is none and ``create`` is false. Raises :func:`state_error` when it is a link,
    a file or another user's folder: reading a stamp there is as unsafe as writing one."""
    if create:
        os.makedirs(folder, exist_ok=True)
    try:
        folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        if create:
            raise
        return None
    try:
        if create:
            try:
                os.mkdir(STATE_DIR, 0o700, dir_fd=folder_fd)  # nobody else writes inside
            except FileExistsError:
                pass
        try:
            fd = open_own(STATE_DIR, DIR_FLAGS, folder_fd, owner=None)
        except FileNotFoundError:
            if create:
                raise state_error(folder) from None  # removed again at once: not ours
            return None
    finally:
        os.close(folder_fd)
    if fd < 0:
        raise state_error(folder)
    if create:
        try:
            _tighten(fd)
        except BaseException:  # a Ctrl-C too: nobody else would close it
            os.close(fd)
            raise
    return fd


def _tighten(fd: int) -> None:
    """Make a state folder of this user's that others may write into (an older drivestage
    made it with the process's umask: 0777 under umask 0) private: there they could delete
    its lock files, and two pulls would then run at once. Where the file system sets the
    modes itself (some FUSE, vfat, NTFS mounts) nothing changes, and nothing is said."""
    st = os.fstat(fd)
    if st.st_uid != os.geteuid() or not st.st_mode & 0o022:
        return
    try:
        os.fchmod(fd, stat.S_IMODE(st.st_mode) & 0o700)
    except OSError:
        pass


def open_own(name: str, flags: int, dir_fd: int, owner: Optional[int] = -1) -> int:
    """``name`` in the folder ``dir_fd``, opened with ``flags`` (``O_NOFOLLOW`` in them), or
    -1 when it is a link, not a folder where one is meant (nor a regular file where a file
    is), or not ``owner``'s: by default the owner of ``dir_fd`` (a state folder judged
    already); None: whom the file system gives this user's new files there
    (:func:`~drivestage.extract.tempdir.new_file_owner`)."""
    try:
        fd = os.open(name, flags, 0o600, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EISDIR):
            return -1
        raise
    try:
        st = os.fstat(fd)
        kind = stat.S_ISDIR if flags & os.O_DIRECTORY else stat.S_ISREG
        if kind(st.st_mode):
            if owner == -1:
                owner = os.fstat(dir_fd).st_uid
            if st.st_uid == os.geteuid() or st.st_uid == (
                    owner if owner is not None else new_file_owner(dir_fd)):
                return fd
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return -1


@contextmanager
def opened_state(folder: str, *, create: bool) -> Iterator[Optional[int]]:
    """:func:`open_state` for the block, closed after it. A Ctrl-C is held back from the
    first descriptor opened until the one yielded is in the block's hands: between an open
    and the code that closes it, one left it open for a notebook's lifetime."""
    fd: Optional[int] = None
    try:
        with deferred():
            fd = open_state(folder, create=create)
        yield fd
    finally:
        if fd is not None:
            os.close(fd)


def read_own(state_fd: int, name: str, limit: Optional[int] = None) -> Optional[bytes]:
    """The bytes of the file ``name`` in the state folder, or None when it is absent,
    unreadable, a link or not this user's regular file (never followed, never trusted), or
    holds more than ``limit`` bytes (damaged; None: :data:`OWN_MAX`)."""
    fh = None
    try:
        with deferred():  # see opened_state
            try:
                fd = open_own(name, _READ_FLAGS, state_fd)
            except OSError:
                return None
            if fd < 0:
                return None
            fh = os.fdopen(fd, "rb")
        most = OWN_MAX if limit is None else limit
        try:
            raw = fh.read(most + 1)
        except OSError:
            return None
        return raw if len(raw) <= most else None
    finally:
        if fh is not None:
            fh.close()


@contextmanager
def state_lock(folder: str, name: str, on_wait: Optional[Callable[[], None]], *,
               transient: bool = False) -> Iterator[bool]:
    """Hold an ``flock`` on ``name`` in ``folder``'s state folder (threads and processes
    alike wait for it; ``on_wait`` runs first when it is taken; with ``on_wait`` None
    nothing waits: the block gets False and holds nothing). The kernel drops the lock of a
    process that dies.

    ``transient``: the lock file is removed when the block ends (a folder pull took one per
    file and left them all: an inode each, 607 for the walk's folder, on a tmpfs whose
    inodes are few). Removing it has the classic race - another process opened the file
    before it was unlinked and gets its lock after: it holds a file no name leads to, while
    a third makes a new one and locks that. So a lock counts only once its file is still
    the one the name leads to (else it is let go and taken again), and only its holder
    removes it, while holding it. A process killed while holding it leaves the file (as
    before), which the next holder removes."""
    if sys.platform == "win32":  # pragma: no cover - not POSIX: filelock's own locking
        from filelock import FileLock, Timeout

        os.makedirs(os.path.join(folder, STATE_DIR), exist_ok=True)
        lock = FileLock(os.path.join(folder, STATE_DIR, name))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if on_wait is None:
                yield False
                return
            on_wait()
            lock.acquire()
        try:
            yield True
        finally:
            lock.release()
        return
    fd = -1
    state_fd: Optional[int] = None
    held = False
    try:
        with deferred():  # see opened_state
            state_fd = open_state(folder, create=True)
        assert state_fd is not None
        waited = False
        rounds, since = 0, time.monotonic()
        while True:
            with deferred():
                fd = open_own(name, _LOCK_FLAGS, state_fd)
                if fd >= 0:
                    drop_in_forks(fd)   # (a fork's child kept the lock: drivestage.fork_drop)
            if fd < 0:
                raise lock_error(folder, name)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is None:
                    yield False
                    return
                if not waited:
                    on_wait()
                    waited = True
                flock_wait(fd, fcntl.LOCK_EX)   # (a Ctrl-C ends it: interrupts.SLICE)
                # A holder was waited for: its removal of the file is the usual reason for
                # another round (the rounds count from here, not the wait's minutes).
                rounds, since = 0, time.monotonic()
            if not transient or _named(state_fd, name, fd):
                break
            stale, fd = fd, -1  # its holder removed it: the lock is the file named now
            try:
                os.close(stale)
            finally:
                forget(stale)
            rounds += 1
            if rounds >= LOCK_RECHECKS or (rounds >= LOCK_RECHECK_MIN and
                                           time.monotonic() - since >= LOCK_RECHECK_S):
                raise recheck_error(folder, name, rounds)
        held = True
        yield True
    finally:
        # Nested, each close in a finally of its own: a Ctrl-C after any call here (a
        # deferred() too) still closes both descriptors.
        try:
            try:
                if fd >= 0 and transient and state_fd is not None:
                    try:
                        _remove_if_held(state_fd, name, fd, held)
                    except KeyboardInterrupt:
                        _remove_if_held(state_fd, name, fd, held)  # once more, then go on
                        raise
            finally:
                if fd >= 0:
                    try:
                        # Let go before the close: a process forked meanwhile by C code
                        # (no at-fork hook ran) holds this descriptor too, and the lock
                        # lived as long as it did, as a push's did (attackz27).
                        fcntl.flock(fd, fcntl.LOCK_UN)
                    finally:
                        try:
                            os.close(fd)
                        finally:   # (after the close: a Ctrl-C here leaves it closed)
                            forget(fd)
        finally:
            if state_fd is not None:
                os.close(state_fd)


def _remove_if_held(state_fd: int, name: str, fd: int, held: bool) -> None:
    """Remove the lock file ``name`` (open as ``fd``) if this process holds its lock and it
    is still the file named (see :func:`state_lock`). A Ctrl-C after the file was made but
    before the lock counted as ``held``, or one during this removal, left the file, as a
    kill does: the lock is tried without waiting (held already: no change). A Ctrl-C
    inside makes the caller call it once more before it goes on."""
    if (held or _lock_now(fd)) and _named(state_fd, name, fd):
        try:
            os.unlink(name, dir_fd=state_fd)
        except FileNotFoundError:
            pass


def _lock_now(fd: int) -> bool:
    """Whether this process holds (or now takes, without waiting) the ``flock`` of ``fd``."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _named(state_fd: int, name: str, fd: int) -> bool:
    """Whether ``name`` in the state folder is the file open as ``fd``."""
    mine = os.fstat(fd)
    if mine.st_nlink == 0:
        return False
    try:
        st = _lookup(name, dir_fd=state_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)
