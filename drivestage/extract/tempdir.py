"""An extraction's temporary folder in DEST, reached by its descriptor, never by its name.

Everyone who can write DEST can rename the folder ``DEST/.drivestage-extract-…`` and put a
link to anywhere in its place while members are written (a shared ``/content``, a team's
data disk). So the folder is opened once, right after it is made (``O_NOFOLLOW``; it must be
this user's and writable by no one else), and every member, folder, link, record and the
merge reach what is inside from that descriptor (``dir_fd``). Its name is kept for messages
and for its removal, which goes by name only while the name still leads to it.

Each folder holds :data:`OWNER_LOCK`, a file its extraction holds an ``flock`` on while it
lives (and each worker process, :mod:`.workers`, through an inherited descriptor).
"""
from __future__ import annotations

import errno
import logging
import os
import secrets
import shutil
import stat
import sys

from drivestage.errors import DestChangedError
from drivestage.extract.copying import TempDir

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
__all__ = ["DIR_FLAGS", "OLD_PREFIX", "OWNER_LOCK", "TEMP_PREFIX", "TempDir", "make_temp",
           "makedirs_at", "remove_stale_temps", "remove_temp"]

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_TRIES = 8  # names tried for a new folder: one that keeps being taken is another program's doing


def make_temp(dest: str) -> tuple[TempDir, int]:
    """A new temporary folder in ``dest`` and the descriptor of its owner lock, held until
    the caller closes it (after :func:`remove_temp`)."""
    for _ in range(_TRIES):
        path = os.path.join(dest, f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}")
        os.mkdir(path, 0o700)  # nobody else writes inside: only its name in DEST is exposed
        try:
            fd = os.open(path, DIR_FLAGS)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                continue  # removed, or swapped for a file or a link already: another name
            raise
        st = os.fstat(fd)
        if st.st_uid != os.geteuid() or st.st_mode & 0o022:
            os.close(fd)  # someone else's folder in its place: not written into
            continue
        temp = TempDir(fd, path)
        if sys.platform == "win32":  # pragma: no cover - the process id says it there
            return temp, -1
        try:
            lock = os.open(OWNER_LOCK, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW |
                           os.O_CLOEXEC, 0o600, dir_fd=fd)
        except FileNotFoundError:
            os.close(fd)
            continue  # taken for a stale one by another extraction at once: another name
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if os.path.samestat(os.stat(OWNER_LOCK, dir_fd=fd, follow_symlinks=False),
                                os.fstat(lock)):
                return temp, lock
        except FileNotFoundError:
            pass
        os.close(lock)  # removed meanwhile as a stale folder (between the create and the lock)
        os.close(fd)
    raise DestChangedError(f"the temporary folders drivestage made in {dest} kept vanishing or "
                           "changing before it could use one; is another program writing "
                           "there? Extract again, or elsewhere")


def remove_temp(temp: TempDir) -> None:
    """Remove the temporary folder and close its descriptor. By its name while the name
    still leads to it; else (someone moved it) only what is inside goes, through the
    descriptor: whatever sits at the name now is not ours."""
    try:
        here = os.lstat(temp.path)
        same = stat.S_ISDIR(here.st_mode) and os.path.samestat(here, os.fstat(temp.fd))
    except OSError:
        same = False
    try:
        if same:
            shutil.rmtree(temp.path, ignore_errors=True)
        else:
            for name in os.listdir(temp.fd):
                _remove_at(temp.fd, name)  # the lock file too (held by its descriptor)
    finally:
        os.close(temp.fd)


def _remove_at(dir_fd: int, name: str) -> None:
    try:
        if stat.S_ISDIR(os.lstat(name, dir_fd=dir_fd).st_mode):
            shutil.rmtree(name, ignore_errors=True, dir_fd=dir_fd)
        else:
            os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass


def remove_stale_temps(dest: str) -> None:
    """Remove temporary folders left by extractions whose process died: those whose owner
    lock is free (those without one, of an older drivestage: when no process has the id in
    their name)."""
    try:
        names = os.listdir(dest)
    except OSError:
        return
    for name in names:
        if not name.startswith((TEMP_PREFIX, OLD_PREFIX)):
            continue
        path = os.path.join(dest, name)
        try:
            fd = os.open(os.path.join(path, OWNER_LOCK),
                         os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            fd = -1
        try:
            if fd >= 0:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # its extraction runs
            elif _pid_alive(name):
                continue
            log.info("removing a stale extraction folder %s", path)
            shutil.rmtree(path, ignore_errors=True)
        finally:
            if fd >= 0:
                os.close(fd)


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
