"""Where drivestage's lock files live: a folder whose file system can lock them.

The push locks (:mod:`drivestage.locks`) and the state files' locks
(:class:`drivestage.state.JsonFile`) are ``flock`` locks on files in the state folder. Some
file systems cannot lock a file at all: an NFS home whose server runs no lock daemon
(ENOLCK), Lustre mounted without ``flock`` (ENOSYS), some FUSE and SMB mounts (EOPNOTSUPP).
The folder can be written there, yet every push failed, told to "point DRIVESTAGE_STATE_DIR
at a folder you can write" (lock28). The locks only serialise processes of this machine, and
the kernel lets go of a dead process's ``flock``: so they are kept in a private local folder
instead (the user's runtime folder, else ``/dev/shm``, else the temporary folder), one per
state folder so that two state folders keep two sets of locks as before; said once.
Where none of those can lock either, the error says so, naming the file system.

Not done: lock files made with O_EXCL, which would work anywhere but stay behind when their
process is killed, so that a successor must judge the owner dead (pid, boot, start time) and
take them over without racing a second successor: more moving parts than a local folder.
"""
from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
import sys
import threading
from pathlib import Path
from typing import Optional

from drivestage.errors import LocalFileError
from drivestage.fork_drop import free_in_forks
from drivestage.interrupts import deferred
from drivestage.localfs import mount_of

if sys.platform != "win32":
    import fcntl

log = logging.getLogger(__name__)

#: What ``flock`` says on a file system that cannot lock files (not: someone holds it).
UNSUPPORTED = frozenset({errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP,
                         getattr(errno, "ENOTSUP", errno.EOPNOTSUPP), errno.EINVAL})
#: The shared-memory file system, the second place tried (a seam for tests).
SHM = "/dev/shm"

_GUARD = free_in_forks(threading.Lock())
_CHOSEN: dict[str, str] = {}  # a folder whose locks were asked for -> where they are kept


def cannot_lock(folder: str) -> Optional[OSError]:
    """The error ``flock`` gives on a file in ``folder`` when its file system cannot lock
    files; None when it can. OSError when no file can be made there (read-only, full)."""
    if sys.platform == "win32":  # pragma: no cover - no flock: filelock's own way
        return None
    fd = -1
    try:
        # (A Ctrl-C held back while it opens is raised as the hold ends: inside this try.)
        with deferred():
            fd = os.open(os.path.join(folder, ".probe.lock"),
                         os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)   # (never exclusively: no wait)
        except BlockingIOError:
            return None
        except OSError as exc:
            return exc if exc.errno in UNSUPPORTED else None
    finally:
        if fd >= 0:
            os.close(fd)   # (lets go of it)
    return None


def folder_for(folder: Path) -> Path:
    """Where the locks meant for ``folder`` (the state folder, made if missing) are kept:
    ``folder`` itself when its file system can lock files, else a private local folder (said
    once a process). OSError when ``folder`` cannot be made; LocalFileError when no folder
    tried can lock files."""
    key = str(folder)
    with _GUARD:
        known = _CHOSEN.get(key)
    if known == key:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    if known is not None:
        return _private(Path(known)) or _choose(folder, None)
    failed = cannot_lock(key)
    chosen = folder if failed is None else _choose(folder, failed)
    with _GUARD:
        _CHOSEN[key] = str(chosen)
    return chosen


def _choose(folder: Path, failed: Optional[OSError]) -> Path:
    """A local folder that can lock files, for ``folder``'s locks; said when ``failed``."""
    fs = _described(str(folder), failed)
    tried = _places()
    name = "locks-" + hashlib.sha256(os.path.realpath(folder).encode()).hexdigest()[:16]
    for base in tried:
        place = _private(base / name) if _private(base) is not None else None
        try:
            if place is not None and cannot_lock(str(place)) is None:
                if failed is not None:
                    log.warning("drivestage's state folder %s is on a file system without "
                                "file locks (%s); its locks are kept in %s instead, which "
                                "serialises pushes of this machine only", folder, fs, place)
                return place
        except OSError:   # (full, read-only: the next place)
            continue
    shown = ", ".join(str(b.parent) for b in tried)
    raise LocalFileError(
        f"drivestage's state folder {folder} is on a file system without file locks ({fs}), "
        f"and so is every local folder tried instead ({shown}); point DRIVESTAGE_STATE_DIR "
        "at a folder on a local disk (e.g. /tmp/drivestage-state)")


def _places() -> list[Path]:
    """The private folders tried for the locks, in order."""
    uid = os.geteuid() if hasattr(os, "geteuid") else 0
    # A relative path is passed over (as the XDG spec says): it named a folder under the
    # current one, so two pushes started from two folders did not wait for each other.
    run, tmp = (os.environ.get(name) or "" for name in ("XDG_RUNTIME_DIR", "TMPDIR"))
    out = [Path(run) / "drivestage"] if os.path.isabs(run) else []
    return out + [Path(SHM) / f"drivestage-{uid}",
                  Path(tmp if os.path.isabs(tmp) else "/tmp") / f"drivestage-{uid}"]


def _private(folder: Path) -> Optional[Path]:
    """``folder``, made if missing, when it is this user's own folder that no one else may
    write (not a link, not another user's: /dev/shm and /tmp are everyone's); else None."""
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    try:
        st = os.lstat(folder)
    except OSError:
        return None
    mine = st.st_uid == (os.geteuid() if hasattr(os, "geteuid") else st.st_uid)
    return folder if stat.S_ISDIR(st.st_mode) and mine and not st.st_mode & 0o022 else None


def _described(folder: str, failed: Optional[OSError]) -> str:
    """``fuse at /mnt: No locks available``: the file system and what flock said."""
    found = mount_of(folder)
    where = f"{found[0]} at {found[1]}" if found else "its file system"
    return f"{where}: {failed.strerror or failed}" if failed is not None else where
