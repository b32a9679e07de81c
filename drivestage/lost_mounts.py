"""A FUSE mount that stopped answering, and a push into a Google Drive mount, in words.

Colab's Drive mount (DriveFS) keeps what is written into it on the machine's disk and sends
it to Drive some time after each file is closed (colabtools issues 659, 2607, 287), and it
stops now and then: every call into it then fails with ENOTCONN (colabtools issues 3441,
3940, 4181). tests/_drivemount.py models both.
"""
from __future__ import annotations

import errno
import logging
import os
import re
import shutil
from typing import Optional

from drivestage.errors import LocalFileError, QuotaExceededError, RemoteError
from drivestage.interrupts import BackgroundThread
from drivestage.localfs import drive_mount, unescape_mount
from drivestage.sizes import format_size, too_large

log = logging.getLogger(__name__)


#: What the kernel answers every call into a FUSE mount whose program ended (Colab's Drive
#: mount: "OSError: [Errno 107] Transport endpoint is not connected", colabtools issues 3441,
#: 3940, 4181); a call under way when the connection was aborted gets ECONNABORTED.
LOST_MOUNT = (errno.ENOTCONN, errno.ECONNABORTED)


#: A probe whose look has not returned (a hung mount), by the path it looked from.
_stuck: dict[str, BackgroundThread] = {}


def lost_mount(path: str, mounts: Optional[str] = None, within: float = 0.5) -> Optional[str]:
    """The FUSE mount point ``path`` lies under when the program behind that mount has
    ended (every call into it fails with ENOTCONN), else None. One read of ``/proc/mounts``
    (or ``mounts``) and, where it lists a FUSE mount, ``path``'s symlinks resolved and one
    ``stat`` of the innermost mount point it reaches, waited for ``within`` seconds at most:
    a mount whose program hangs (stopped, not ended) would hold the caller for good (a
    training thread at each epoch's end); it is not lost."""
    full = os.path.abspath(os.path.expanduser(path))
    if mounts is None:
        try:
            with open("/proc/mounts", encoding="utf-8", errors="surrogateescape") as fh:
                mounts = fh.read()
        except OSError:
            return None
    fuse = [unescape_mount(fields[1]) for fields in (line.split(" ") for line in mounts.split("\n"))
            if len(fields) >= 3 and fields[2].startswith("fuse")]
    if not fuse:
        return None
    found: list[str] = []

    def look() -> None:
        # Through a symlink too (Colab's ``ln -s /content/drive/MyDrive /mydrive``): the mount
        # table names real paths. (Resolved here, bounded: a lstat under a hung mount hangs.)
        real = os.path.realpath(full)
        points = [p for p in fuse if real == p or real.startswith(p.rstrip(os.sep) + os.sep)]
        if not points:
            return
        point = max(points, key=len)   # the innermost mount: what the path's calls reach
        try:
            os.stat(point)
        except OSError as exc:
            if exc.errno in LOST_MOUNT:
                found.append(point)

    stuck = _stuck.get(full)
    if stuck is not None and stuck.is_alive():
        return None   # its last look still hangs: not lost, and no second thread stuck there
    probe = BackgroundThread(look, "drivestage-mount-probe")
    # Kept from before its start: a Ctrl-C as it starts is raised once it runs, and a probe
    # then stuck in a hung mount, not kept, was one more stuck at the next look.
    _stuck[full] = probe
    probe.start()
    if not probe.join(within):
        # It hangs: not lost (said elsewhere, by those who wait on it). Kept: a trainer looks
        # every minute, and left a thread stuck in the kernel at each look, for good.
        return None
    if _stuck.get(full) is probe:
        del _stuck[full]
    return found[0] if found else None


def lost_mount_error(exc: BaseException) -> Optional[str]:
    """For an OSError a lost FUSE mount raised (:data:`LOST_MOUNT`): ``<the file it
    named>: <lost_mount_message>``; None for any other error."""
    if not isinstance(exc, OSError) or exc.errno not in LOST_MOUNT or not exc.filename:
        return None
    name = os.fsdecode(exc.filename)
    point = lost_mount(name)
    return None if point is None else f"{name}: {lost_mount_message(point)}"


def lost_mount_message(point: str, mounts: Optional[str] = None, *,
                       then: str = "run again",
                       instead: str = "use drive: paths instead: drivestage needs no mount"
                       ) -> str:
    """What to say of ``point`` (:func:`lost_mount`): on a Drive mount, what is lost with
    it (DriveFS sends a file to Drive some time after it is closed: colabtools issues 659,
    2607) and how Colab mounts it again; ``then`` what to do once it is mounted, ``instead``
    the way that needs no mount."""
    gone = f"{point} no longer answers (Transport endpoint is not connected): "
    if drive_mount(point, mounts) is None:
        return gone + f"the program behind this FUSE mount has stopped. Mount it again, then {then}"
    return gone + ("the Google Drive mount has stopped (on Colab it does after a while or "
                   "under load), and files written into it that it had not yet sent to Drive "
                   f"are lost. Mount it again (drive.mount('{point}', force_remount=True)) "
                   f"and {then}, or {instead}")


#: A path below a Drive mount's point: ``MyDrive/rest`` or ``Shareddrives/<name>/rest``.
_BELOW_MOUNT = re.compile(r"(?:MyDrive|My Drive|Shareddrives/([^/]+))(?:/(.*))?\Z", re.S)


def in_drive_mount(path: str) -> Optional[tuple[str, str]]:
    """``(the Google Drive mount, the drive: path to write instead)`` when ``path`` lies in
    a Google Drive mount (``<mount>/MyDrive/a/b`` -> ``drive:a/b``, ``<mount>/Shareddrives/T/x``
    -> ``drive:shared/T/x``, elsewhere in it ``a drive: path``), else None."""
    full = os.path.abspath(os.path.expanduser(path))
    mount = drive_mount(full)
    if mount is None:
        return None
    # (The mount's point is a real path: DEST's below it, through a symlink too.)
    real = os.path.realpath(full)
    below = _BELOW_MOUNT.match(real[len(mount):].strip(os.sep).replace(os.sep, "/"))
    spec = "a drive: path"
    if below is not None:
        rest = (below.group(2) or "").strip("/")
        top = f"shared/{below.group(1)}" if below.group(1) else ""
        spec = "drive:" + "/".join(p for p in (top, rest) if p)
    return mount, spec


def _mounted(dest: str) -> Optional[tuple[str, str, str]]:
    """``(dest's absolute path, the Google Drive mount it lies in, the drive: path it stands
    for)``, or None where it lies in none."""
    found = in_drive_mount(dest)
    if found is None:
        return None
    return (os.path.abspath(os.path.expanduser(dest)), *found)


def push_into_mount_warning(dest: str) -> Optional[str]:
    """The warning for a push whose DEST lies in a Google Drive mount, or None. DriveFS
    keeps what is written into it on the machine's disk and sends it to Drive some time
    after the file is closed (minutes; half an hour for a 3 GB file), and what it had not
    sent when the runtime ends is lost (colabtools issues 659, 2607, 287): the push's
    "uploaded" meant "written into the mount"."""
    found = _mounted(dest)
    if found is None:
        return None
    full, mount, spec = found
    return (f"DEST {full} is inside the Google Drive mount {mount}: what is pushed there is "
            "written to this machine's disk, and the mount sends it to Drive later (minutes "
            "after each file is closed, longer for big ones); whatever it has not sent when "
            "the runtime ends is lost, though counted as uploaded here. Push to "
            f"{spec} instead (drivestage needs no mount, and a push ends when Drive has "
            "verified the bytes), or run drive.flush_and_unmount() before the runtime ends")


#: What each kind of deletion held back in a Drive mount says (once per DEST and kind).
_HELD_WORDS = {
    "retention": "retention deletes nothing in %s: it is inside the Google Drive mount %s, and "
                 "Drive may not have the new checkpoints yet (DriveFS uploads them later); "
                 "push to %s instead to prune there",
    "--delete": "--delete removes nothing from %s: it is inside the Google Drive mount %s, and "
                "Drive may not have what replaced those files yet (DriveFS uploads it later, "
                "a deletion first); push to %s --delete instead",
}
#: The (kind, DEST) pairs in a Drive mount this process has said it holds back.
_HELD_BACK: set[tuple[str, str]] = set()


def retention_held_back(dest: str) -> bool:
    """Whether retention's deletions into ``dest`` (a local folder a push writes) are held
    back, said once per DEST: in a Google Drive mount, an older checkpoint deleted there as
    the new one is written reaches Drive first (DriveFS sends the small deletion before the
    big upload), and a runtime or mount that ends between leaves Drive with neither; and
    nothing a push sees through the mount says what Drive has (mount30). The room a push
    makes before its uploads too (:func:`drivestage.push_room.make_room`, mount31)."""
    return _held_back(dest, "retention")


def delete_held_back(dest: str) -> bool:
    """Whether ``push --delete``'s removals from ``dest`` are held back, said once per DEST:
    in a Google Drive mount, for the reason of :func:`retention_held_back` (a checkpoint
    the trainer's ``keep_local`` removed, a file renamed: its removal reached Drive before
    what replaced it, mount31)."""
    return _held_back(dest, "--delete")


def _held_back(dest: str, kind: str) -> bool:
    found = _mounted(dest)
    if found is None:
        return False
    full, mount, spec = found
    if (kind, full) not in _HELD_BACK:
        _HELD_BACK.add((kind, full))
        log.warning(_HELD_WORDS[kind], full, mount, spec)
    return True


def prune_in_mount(dest: str) -> Optional[str]:
    """Why ``drivestage prune`` deletes nothing in ``dest``, when it lies in a Google Drive
    mount (the reason of :func:`retention_held_back`: the newest checkpoints written there
    may not be on Drive yet, and the deletions would reach it first), else None."""
    found = _mounted(dest)
    if found is None:
        return None
    full, mount, spec = found
    return (f"prune deletes nothing in {full}: it is inside the Google Drive mount {mount}, and "
            "Drive may not have the newest checkpoints yet (DriveFS uploads them later, a "
            f"deletion first); prune {spec} instead (--dry-run shows the plan here)")


def said(exc: BaseException, **wording: str) -> str:
    """``exc`` in words: for an OSError a lost FUSE mount raised (:data:`LOST_MOUNT`),
    :func:`lost_mount_message` of its mount (``wording``: its ``then`` and ``instead``),
    without the file the call met it at; else ``str(exc)``."""
    point = lost_mount(os.fsdecode(exc.filename)) if isinstance(exc, OSError) and \
        exc.errno in LOST_MOUNT and exc.filename else None
    return str(exc) if point is None else lost_mount_message(point, **wording)


#: Why a local file's read failed, by errno, and what to do (:func:`read_error`).
_UNREAD = {errno.EIO: "the disk may be failing: copy what can be read elsewhere and check it",
           errno.EACCES: "this user may not read it: make it readable, or move it out of the "
                         "folder",
           errno.EPERM: "this user may not read it: make it readable, or move it out of the "
                        "folder",
           errno.EINVAL: "it is no file whose bytes can be read (one of /proc or /sys?): "
                         "leave it out"}


def read_error(exc: OSError, full: str) -> Exception:
    """The error of a local store's read of the file ``full`` that failed with ``exc``: one
    line for a failing disk, a file this user may not read, one of /proc that refuses a
    read (a listing's md5 of it was a traceback: attackcli39); else ``exc`` itself (a lost
    mount's, said by the CLI)."""
    why = _UNREAD.get(exc.errno or 0)
    if why is None:
        return exc
    return LocalFileError(f"cannot read {full}: {exc.strerror}; {why}")


def folder_error(exc: OSError, full: str) -> Exception:
    """The error of a local store's ``mkdir`` of ``full`` that failed with ``exc``: one line
    where this user may not make it (EACCES, EPERM; EROFS: a read-only disk), which was the
    traceback of ``os.mkdir`` (attackcli39); else ``exc`` itself (a lost mount's, said by
    the CLI)."""
    if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
        return exc
    return LocalFileError(f"cannot make the folder {full}: {exc.strerror}; give a folder this "
                          "user can write")


def write_error(exc: OSError, root: str, shown: str, target: str, size: int) -> Exception:
    """The error of a local DEST's write of ``target`` (a copy of the file ``shown``, ``size``
    bytes; the DEST's ``root``) that failed with ``exc``: a full disk or quota (a Drive
    mount's full quota) as :class:`~drivestage.errors.QuotaExceededError`, a mount whose
    program ended, a folder this user may not write (a read-only disk) and a mount's EIO in
    words; else ``exc`` itself."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        free = shutil.disk_usage(root).free
        return QuotaExceededError(
            f"no space left for {shown} ({size} bytes) in {target}: {free} bytes free; free "
            "some space (empty the trash too) or prune old checkpoints", needed=size, free=free)
    lost = lost_mount(target) if exc.errno in LOST_MOUNT else None
    if lost is not None:  # (a write names no file: said here, not by the CLI)
        return RemoteError(f"cannot write {target}: {lost_mount_message(lost)}")
    if exc.errno == errno.EFBIG:   # (was raised as it came: a traceback, attackcli39)
        return LocalFileError(f"cannot write {target} (a copy of {shown}, {format_size(size)}): "
                              f"{too_large()}, and run again")
    folder = os.path.dirname(target)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS) and (
            exc.filename is None or os.path.dirname(str(exc.filename)) == folder):
        # A read-only disk, a folder this user may not write (its temporary copy's open, the
        # rename): was the traceback of ``open`` (leftovers39); not SRC's file unreadable.
        return LocalFileError(f"cannot write {os.path.basename(target)} into the folder "
                              f"{folder}: {exc.strerror}; give a folder this user can write")
    if exc.errno == errno.EIO:
        return RemoteError(
            f"I/O error writing {target} ({exc.strerror}); on a Google Drive mount this "
            "usually means the Drive storage quota is full: free space on Drive "
            "(empty its trash too) and try again")
    return exc
