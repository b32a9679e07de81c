"""Names of the temporary files of atomic writes, and when one is a dead process's leftover.

An atomic write (:func:`drivestage.localfs.atomic_file`: stamps, sidecars, the trainer's
checkpoints, range records, drivestage's state files) writes ``.<name>.<tag>-<pid>.<random>.tmp``
beside ``name`` and renames it over ``name``. A SIGKILL (or a power cut) between the two
leaves the temporary file: one for every kill, in the user's dataset or checkpoint folder (a
checkpoint's may be gigabytes). Push, mirror and ``CheckpointSync`` never upload such files
(``.*.tmp`` is a default exclude); the next atomic write into the folder removes them, by
this rule:

* ``pid``: the process that made it, ``tag``: the process-id namespace it lives in (this
  boot's id and the pid namespace: another machine sharing the folder, another container,
  or this machine before a reboot have another tag). A leftover of this namespace is removed
  once its process is gone (``kill(pid, 0)`` says no such process); one whose pid is alive
  is kept, even when the pid was reused meanwhile (kept a little longer, never wrongly
  removed).
* One of another namespace cannot be asked about: it is removed when it was last written
  more than :data:`FOREIGN_STALE_S` ago (a write in progress keeps touching its file; a small
  one lasts milliseconds), by this machine's clock and, where a sweep gives it, by the file
  system's (its folder's ctime: the two machines' clocks may differ by days).
* Only this user's regular files of exactly this form are ever removed: never a link, a
  folder, another user's file, nor a name of another form (the temporary files of older
  versions, ``.<name>.<random>.tmp``, stay: nothing says whose they are).
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
import stat
import time
from typing import Optional

#: A temporary file of another namespace (machine, container, boot) last written longer ago
#: than this is a leftover: no write takes a day without writing a byte.
FOREIGN_STALE_S = 24 * 3600.0

_RE = re.compile(r"\A\..+\.(?P<tag>[0-9a-f]{8})-(?P<pid>[1-9][0-9]{0,9})\.[0-9a-f]{6}\.tmp\Z",
                 re.DOTALL)
_tag: Optional[tuple[int, str]] = None   # (the pid it was computed in, the tag)


def namespace_tag() -> str:
    """8 hex digits naming this process's pid namespace on this boot of this machine."""
    global _tag
    if _tag is None or _tag[0] != os.getpid():  # (a forked child may have unshared)
        parts = []
        for read in (_boot_id, _pid_namespace):
            try:
                parts.append(read())
            except OSError:
                parts.append("")
        if not any(parts):  # not Linux: the host name stands for the machine
            parts = [socket.gethostname()]
        _tag = (os.getpid(), hashlib.sha1("\0".join(parts).encode()).hexdigest()[:8])
    return _tag[1]


def _boot_id() -> str:
    with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
        return fh.read().strip()


def _pid_namespace() -> str:
    return str(os.stat("/proc/self/ns/pid").st_ino)


#: Longest name kept whole in its temporary file's name (what this module adds takes at most
#: 29 bytes of a file system's 255; a range record's name, at most 226, is kept whole).
_WHOLE_BYTES = 226


def name_for(name: str) -> str:
    """A fresh temporary name for an atomic write of ``name`` by this process (24 random
    bits: callers create it with ``O_EXCL`` and try another one if it is taken). A longer
    name than :data:`_WHOLE_BYTES` is hashed in it, so that its temporary file fits."""
    raw = os.fsencode(name)
    if len(raw) > _WHOLE_BYTES:
        name = "long-" + hashlib.sha1(raw).hexdigest()
    return f".{name}.{namespace_tag()}-{os.getpid()}.{secrets.token_hex(3)}.tmp"


def parse(name: str) -> Optional[tuple[str, int]]:
    """``(tag, pid)`` of a temporary file's name made by :func:`name_for`, else None."""
    found = _RE.match(name)
    return (found.group("tag"), int(found.group("pid"))) if found else None


def stale(name: str, st: Optional[os.stat_result], now: Optional[float] = None,
          folder: Optional[os.stat_result] = None) -> bool:
    """Whether the file ``name`` (its ``lstat`` ``st``; None: gone) is a temporary file a dead
    process left (see the module's rule). ``folder``: the ``stat`` of the folder it is in,
    whose ctime its file system stamped: another namespace's file is a day old by that clock
    too (no later than now), not only by this machine's. A machine whose clock ran two days
    ahead read another machine's write in progress on a shared folder (its mtime by that
    machine's or the file server's clock) as two days old, and removed it (attack48); a
    leftover goes one write into the folder later."""
    made = parse(name)
    if folder is not None:
        now = min(time.time() if now is None else now, folder.st_ctime)
    return made is not None and left_by_dead(made[0], made[1], st, now)


def left_by_dead(tag: Optional[str], pid: int, st: Optional[os.stat_result],
                 now: Optional[float] = None) -> bool:
    """Whether a file that process ``pid`` of namespace ``tag`` made (None: a name that
    says no namespace), whose ``lstat`` is ``st``, is a dead process's leftover by the
    module's rule (also the private copies of :mod:`drivestage.sidecar_copy`)."""
    if st is None or not stat.S_ISREG(st.st_mode):
        return False
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        return False
    if tag == namespace_tag():
        return not _alive(pid)
    return (time.time() if now is None else now) - st.st_mtime > FOREIGN_STALE_S


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process (or a pid past the system's range: keep it)
    return True


#: Private copies a push sends in place of a file (a checked sidecar, a log that kept
#: changing: :mod:`drivestage.sidecar_copy`), and the file each stands for.
_stands_for: dict[str, str] = {}


def stand_for(copy: str, path: Optional[str]) -> None:
    """Messages about ``copy`` name ``path`` instead (None: no more)."""
    if path is None:
        _stands_for.pop(copy, None)
    else:
        _stands_for[copy] = path


def shown(path: str) -> str:
    """``path`` as a message names it: the file a private copy stands for. An upload refused
    named ``/tmp/.drivestage-sidecar-4711-x8k2.json``, which the user never made and which
    is gone once the push ends (attacksync33)."""
    return _stands_for.get(path, path)


_UPLOAD_RE = re.compile(r"\A(?:(?P<tag>[0-9a-f]{8})\.)?(?P<pid>[1-9][0-9]{0,9})-[0-9a-f]{12}\Z")


def upload_name(prefix: str) -> str:
    """A fresh name for a directory store's copy under way (``prefix`` + this namespace, pid
    and 48 random bits), which :func:`upload_left` can tell a dead process's from."""
    return f"{prefix}{namespace_tag()}.{os.getpid()}-{secrets.token_hex(6)}"


def upload_left(rest: str, st: Optional[os.stat_result], now: Optional[float] = None,
                folder: Optional[os.stat_result] = None) -> bool:
    """Whether the copy named ``prefix + rest`` (:func:`upload_name`; or the older
    ``<pid>-<random>``, which says no namespace), whose ``lstat`` is ``st``, is a dead
    process's leftover by the module's rule: a push killed mid-copy left a partial checkpoint
    in DEST, hidden from listings, for good (attacksync35). Another namespace's goes once a
    day old by its ctime too (its copy's mtime is set to the source's just before the rename).
    ``folder``: as for :func:`stale`, by the file system's clock too (attack48)."""
    if folder is not None:
        now = min(time.time() if now is None else now, folder.st_ctime)
    made = _UPLOAD_RE.match(rest)
    if made is None or st is None:
        return False
    tag = made.group("tag")
    if tag != namespace_tag() and (time.time() if now is None else now) - st.st_ctime <= \
            FOREIGN_STALE_S:
        return False
    return left_by_dead(tag, int(made.group("pid")), st, now)
