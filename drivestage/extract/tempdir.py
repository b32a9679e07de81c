"""An extraction's temporary folder in DEST, reached by its descriptor, never by its name.

Everyone who can write DEST can rename the folder ``DEST/.drivestage-extract-…`` and put a
link to anywhere in its place while members are written (a shared ``/content``, a team's
data disk). So the folder is opened once, right after it is made (``O_NOFOLLOW``; it must be
this user's and writable by no one else), and every member, folder, link, record and the
merge reach what is inside from that descriptor (``dir_fd``). Its name is kept for messages
and for its removal.

The same someone can rename a folder of the user's in DEST (whose files they cannot
delete) to such a name: a temporary folder - new, stale or about to go - is therefore
emptied only through the descriptor of the folder drivestage made (or judged stale), and
its name removed only while it leads to that folder, by ``rmdir``, which takes only an
empty folder (one that anyone who can write DEST can remove anyway).

Each folder holds :data:`OWNER_LOCK`, a file its extraction holds an ``flock`` on while it
lives (and each worker process, :mod:`.workers`, through an inherited descriptor).
"""
from __future__ import annotations

import errno
import logging
import os
import secrets
import stat
import sys

from drivestage.errors import DestChangedError
from drivestage.extract.copying import TempDir
from drivestage.fork_drop import close, drop_in_forks
from drivestage.interrupts import flock_wait

if sys.platform != "win32":
    import fcntl

log = logging.getLogger(__name__)

TEMP_PREFIX = ".drivestage-extract-"
#: What the merge puts aside inside a temporary folder (a file of DEST where a folder goes).
OLD_PREFIX = ".drivestage-replaced-"
#: Inside a temporary folder: the file its extraction holds an ``flock`` on while it lives.
#: The kernel drops the lock of a process that dies, so a folder whose lock can be taken is
#: stale, whatever process has its id now (the id's pid may be reused after a restart, or
#: belong to another pid namespace: a second container sharing DEST).
OWNER_LOCK = ".drivestage-owner"
#: The owner lock's name until its extraction holds it (see :func:`make_temp`).
_OWNER_NEW = OWNER_LOCK + ".new"
__all__ = ["DIR_FLAGS", "OLD_PREFIX", "OWNER_LOCK", "PROBE_PREFIX", "TEMP_PREFIX", "TempDir",
           "make_temp", "makedirs_at", "new_file_owner", "remove_stale_temps", "remove_temp",
           "remove_tree"]

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_TRIES = 8  # names tried for a new folder: one that keeps being taken is another program's doing


def make_temp(dest: str) -> tuple[TempDir, int]:
    """A new temporary folder in ``dest`` and the descriptor of its owner lock, held until
    the caller closes it (:func:`remove_temp` does)."""
    for _ in range(_TRIES):
        path = os.path.join(dest, f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}")
        os.mkdir(path, 0o700)  # nobody else writes inside: only its name in DEST is exposed
        try:
            fd = os.open(path, DIR_FLAGS)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                continue  # removed, or swapped for a file or a link already: another name
            raise
        if os.listdir(fd):
            os.close(fd)  # a folder of the user's renamed there: neither written into nor removed
            continue
        temp = TempDir(fd, path)
        if sys.platform == "win32":  # pragma: no cover - the process id says it there
            return temp, -1
        try:
            lock = os.open(_OWNER_NEW, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW |
                           os.O_CLOEXEC, 0o600, dir_fd=fd)
        except (FileNotFoundError, FileExistsError, PermissionError):
            os.close(fd)
            continue  # taken for a stale one by another extraction at once, or not ours
        if not _just_made(fd, lock):
            os.close(lock)  # ours, in someone else's folder
            _remove_at(fd, _OWNER_NEW)
            os.close(fd)
            continue
        # Locked before a sweep can see it by its name (a sweep takes an owner lock it can
        # lock for a dead extraction's). Made as OWNER_LOCK at once, a sweep locked it in
        # the moment before this flock, emptied the folder and let the lock go before it
        # removed its name and the folder: this flock, taken in between, kept a folder
        # about to vanish (six extractions into one DEST at once: about 1 in 100 failed
        # with FileNotFoundError). Without an owner lock yet, a sweep leaves the folder
        # (the live process its name holds, :func:`_remove_if_stale`).
        flock_wait(lock, fcntl.LOCK_EX)   # (a Ctrl-C ends it: interrupts.SLICE)
        try:
            os.rename(_OWNER_NEW, OWNER_LOCK, src_dir_fd=fd, dst_dir_fd=fd)
        except OSError:
            os.close(lock)
            os.close(fd)
            continue
        try:
            if os.path.samestat(os.stat(OWNER_LOCK, dir_fd=fd, follow_symlinks=False),
                                os.fstat(lock)):
                # (Closed by remove_temp or the job: a fork's child kept it, and the folder
                # was no stale one to sweep while the child lived: drivestage.fork_drop.)
                return temp, drop_in_forks(lock)
        except FileNotFoundError:
            pass
        os.close(lock)  # removed meanwhile as a stale folder (between the create and the lock)
        os.close(fd)
    raise DestChangedError(f"the temporary folders drivestage made in {dest} kept vanishing or "
                           "changing before it could use one; is another program writing "
                           "there? Extract again, or elsewhere")


def _just_made(fd: int, lock: int) -> bool:
    """Whether the (empty) folder opened as ``fd`` is the one just made, judged against
    ``lock``, a file just created in it: the folder has that file's owner (this user; or,
    on a file system that sets one owner for every file - a vfat or NTFS disk mounted with
    ``uid=``, some FUSE and network mounts - that one), and it is private (mode 0700, as
    made) unless the file system sets the modes too (the new 0600 file shows others'
    bits). Someone else's folder at its name is never written into (nor removed)."""
    st, mine = os.fstat(fd), os.fstat(lock)
    return st.st_uid == mine.st_uid and (not st.st_mode & 0o077 or bool(mine.st_mode & 0o077))


def remove_temp(temp: TempDir, lock: int = -1) -> None:
    """Remove the temporary folder and close its descriptor and its owner ``lock``: what is
    inside through the descriptor (the lock's file last: until then a concurrent sweep sees
    the folder in use), then its name while that still leads to it (whatever sits at the
    name otherwise is not ours, nor is what someone puts there between a look and a
    removal)."""
    try:
        _empty(temp.fd)
        _drop_lock(temp.fd, lock)
        lock = -1
        _rmdir_if_same(temp.path, temp.fd)
    finally:
        if lock >= 0:
            close(lock)
        os.close(temp.fd)


def _drop_lock(fd: int, lock: int) -> None:
    """Close the owner ``lock`` (when given), then remove its file from the folder ``fd``:
    in that order, for a FUSE mount keeps a removed file still open as a hidden one there,
    and the folder would not be empty when its name goes (a stale one's sweep left it,
    lockless, for good)."""
    if lock >= 0:
        close(lock)
    _remove_at(fd, OWNER_LOCK)


def _empty(fd: int) -> None:
    """Remove what the folder ``fd`` holds but its owner lock (while it is there, a
    concurrent sweep sees the folder in use; :func:`_drop_lock` removes it)."""
    try:
        names = os.listdir(fd)
    except OSError:
        return
    for name in names:
        if name != OWNER_LOCK:
            _remove_at(fd, name)


def _rmdir_if_same(path: str, fd: int) -> None:
    """Remove the emptied folder ``fd`` by its name ``path`` while the name leads to it."""
    try:
        here = os.lstat(path)
        if stat.S_ISDIR(here.st_mode) and os.path.samestat(here, os.fstat(fd)):
            os.rmdir(path)  # only an empty folder, should the name have changed just now
    except OSError:
        pass


def _remove_at(dir_fd: int, name: str) -> None:
    try:
        if stat.S_ISDIR(os.lstat(name, dir_fd=dir_fd).st_mode):
            remove_tree(dir_fd, name)
        else:
            os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass


def remove_tree(dir_fd: int, name: str) -> None:
    """``shutil.rmtree(name, ignore_errors=True, dir_fd=dir_fd)`` by a loop holding one
    descriptor at a time: an archive's folders may nest a thousand deep and more, past
    Python's recursion limit (rmtree's RecursionError left the folder, and every later
    extraction's sweep failed on it) and past the descriptors a process may hold. Links
    are never followed; a folder found elsewhere than where it was on the way back up
    (``..``) ends it, leaving the rest."""
    try:
        fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except OSError:
        return
    # The folders on the way down: each one's name, its parent's identity, and what is
    # left to remove in that parent.
    above: list[tuple[str, os.stat_result, list[str]]] = []
    try:
        todo = _listing(fd)
        while todo or above:
            if not todo:  # this folder is empty: back up, and remove it
                child, parent_st, todo = above.pop()
                parent = os.open("..", DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = parent
                if not os.path.samestat(os.fstat(fd), parent_st):
                    return  # moved meanwhile: not ours to go on with
                try:
                    os.rmdir(child, dir_fd=fd)
                except OSError:
                    pass  # not empty: what could not be removed stays, as rmtree leaves it
                continue
            entry = todo.pop()
            try:
                if not stat.S_ISDIR(os.lstat(entry, dir_fd=fd).st_mode):
                    os.unlink(entry, dir_fd=fd)
                    continue
                sub = os.open(entry, DIR_FLAGS, dir_fd=fd)
            except OSError:
                continue
            above.append((entry, os.fstat(fd), todo))
            os.close(fd)
            fd, todo = sub, _listing(sub)
    except OSError:
        return
    finally:
        os.close(fd)
    try:
        os.rmdir(name, dir_fd=dir_fd)
    except OSError:
        pass


def _listing(fd: int) -> list[str]:
    try:
        return os.listdir(fd)
    except OSError:
        return []


def remove_stale_temps(dest: str) -> None:
    """Remove temporary folders left by extractions whose process died: this user's folders
    whose owner lock (a file of this user's) is free. Those without one, of an older
    drivestage: when no process has the id in their name, and only where nobody else can
    write DEST (elsewhere a folder of the user's may have been given such a name)."""
    try:
        dest_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        names = [n for n in os.listdir(dest_fd) if n.startswith((TEMP_PREFIX, OLD_PREFIX))]
        if names:
            st = os.fstat(dest_fd)
            owner = new_file_owner(dest_fd)
            shared = st.st_uid != owner or bool(st.st_mode & 0o022)
            for name in names:
                _remove_if_stale(dest, dest_fd, name, owner, shared)
    except OSError:
        return
    finally:
        os.close(dest_fd)


def _remove_if_stale(dest: str, dest_fd: int, name: str, owner: int, shared: bool) -> None:
    """One folder named like a temporary folder: emptied through its descriptor and
    removed (see :func:`remove_temp`) when it is stale. ``owner``: whom this user's files
    belong to there (:func:`new_file_owner`)."""
    try:
        fd = os.open(name, DIR_FLAGS, dir_fd=dest_fd)
    except OSError:
        return  # a file, a link, gone: no folder of an extraction
    try:
        if os.fstat(fd).st_uid != owner:
            return  # another user's: their extraction's, or anything given such a name
        lock = _open_lock(fd, owner)
        try:
            if lock >= 0:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    return  # its extraction runs
            elif shared or _pid_alive(name):
                return
            path = os.path.join(dest, name)
            log.info("removing a stale extraction folder %s", path)
            _empty(fd)
            _drop_lock(fd, lock)
            lock = -1
            _rmdir_if_same(path, fd)
        finally:
            if lock >= 0:
                os.close(lock)
    finally:
        os.close(fd)


def _open_lock(fd: int, owner: int) -> int:
    """The owner lock of the folder ``fd``, or -1 where it has none of ``owner``'s. An
    owner lock is an empty file with one name, as :func:`make_temp` makes it: a file of the
    user's that someone who can write DEST moved or linked into a folder of the user's,
    renamed like a temporary folder, does not make that folder a stale one."""
    try:
        lock = os.open(OWNER_LOCK, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
    except OSError:
        return -1
    st = os.fstat(lock)
    if stat.S_ISREG(st.st_mode) and st.st_uid == owner and st.st_size == 0 and \
            st.st_nlink == 1:
        return lock
    os.close(lock)
    return -1


#: A file made for a moment to see whom the file system gives new files (a ``.drivestage-``
#: name no archive member may take; ``.tmp``: what push leaves out).
PROBE_PREFIX = ".drivestage-probe-"


def new_file_owner(dir_fd: int) -> int:
    """Whom the file system gives a new file in the folder ``dir_fd``: this user, except
    where it sets one owner for every file (a vfat or NTFS disk mounted with ``uid=``, some
    FUSE and network mounts), where ownership tells nothing about who made a file and a
    check against this user would refuse drivestage's own folders. Seen by making a file
    there for a moment, only when the folder is not this user's."""
    me = os.geteuid()
    if os.fstat(dir_fd).st_uid == me:
        return me
    name = f"{PROBE_PREFIX}{os.getpid()}-{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=dir_fd)
    except (FileExistsError, PermissionError):
        return me  # something put at the name, or no right to make one: judged as this user
    # Any other failure (a read-only or full disk) is what the user must hear about, not a
    # state folder refused as someone else's.
    try:
        return os.fstat(fd).st_uid
    finally:
        os.close(fd)
        try:
            os.unlink(name, dir_fd=dir_fd)
        except OSError:
            pass


def _pid_alive(name: str) -> bool:
    """Whether the process whose id a temporary folder's name holds runs (or may run)."""
    try:
        os.kill(int(name.rsplit("-", 2)[-2]), 0)
    except ProcessLookupError:
        return False
    except (ValueError, IndexError, PermissionError):
        pass
    return True


def makedirs_at(temp: TempDir, rel: str) -> None:
    """``os.makedirs(rel, exist_ok=True)`` inside the temporary folder."""
    parts = rel.split("/")
    for i in range(1, len(parts) + 1):
        sub = "/".join(parts[:i])
        try:
            os.mkdir(sub, dir_fd=temp.fd)
        except FileExistsError:
            if not stat.S_ISDIR(os.stat(sub, dir_fd=temp.fd, follow_symlinks=False).st_mode):
                raise FileExistsError(17, "File exists", temp.join(sub)) from None
