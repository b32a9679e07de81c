"""This process's mount table (``/proc/self/mountinfo``), by mount point: what is mounted there.

Push's memory of a folder it could not read notes the mount the folder was on
(:mod:`drivestage.unread_memory`): while that mount is not mounted, what the folder shows is the
disk beneath, not the mount (mount50). Known by its point alone, any mount at that point was
taken for it: a tmpfs, another account's Drive, a bind of an empty folder mounted at M made the
folder "back", and ``push --delete`` compared Drive against *its* contents and trashed the
copies of the mount that was read before (mount51). So a mount is also known by what stays the
same when the same file system is mounted again: its type (``fuse.drive``, ``nfs4``, ``ext4``),
its source (the device, the server's export, the name a FUSE program gives: Colab's ``drive``,
rclone's ``remote:path``) and the folder of that source it shows (a bind mount's root); not by
its ``major:minor`` (a FUSE, NFS or tmpfs mount gets a new one at every mount) nor its options.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from drivestage import localfs
from drivestage.paths import printable


@dataclass(frozen=True)
class Mount:
    """One mount of the table: its point, and what it is (:attr:`fs`)."""

    point: str
    type: str
    source: str
    #: The folder of the source it shows (``/``: all of it; a bind mount's: the folder bound).
    root: str

    @property
    def fs(self) -> dict[str, str]:
        """What a record keeps of it (``unread.json``'s ``"fs"``)."""
        return {"type": self.type, "source": self.source, "root": self.root}

    def same(self, fs: Any) -> bool:
        """Whether this is the mount ``fs`` (a record's :attr:`fs`) notes: the same type,
        source and root."""
        return isinstance(fs, dict) and fs == self.fs


def words(fs: Any) -> str:
    """A record's :attr:`Mount.fs` in words: ``fuse.drive drive``, with ``(folder R of it)``
    where it shows a folder of its source (a bind mount)."""
    if not isinstance(fs, dict):
        return "an unknown mount"
    root = fs.get("root")
    # (a bind's root is any folder's name, a source any FUSE program's: a newline in one
    # wrote a line of its own in ``unread list``, a byte not UTF-8 ended it in a traceback)
    return printable(f"{fs.get('type')} {fs.get('source')}" + (
        f" (folder {root} of it)" if isinstance(root, str) and root != "/" else ""))


def table() -> Optional[dict[str, Mount]]:
    """The mounts of this process's table by point, the one on top where several are at one
    point (listed last); None where it cannot be read. Bind mounts too, and a FUSE mount whose
    program ended, till it is unmounted. Lines end at ``\n`` only, and names are decoded as the
    file system's (as ``os.path.realpath`` gives them): the table writes a name's other bytes
    raw, and ``splitlines`` cut a mount at ``m\u2028nt`` (or ``\x85``, ``\x1c``) in two, its
    folders then noted as on the disk above (always mounted), and ``errors="replace"``
    matched no non-UTF-8 name (attack50)."""
    try:
        with open(localfs.MOUNTINFO, "rb") as fh:
            lines = fh.read().split(b"\n")
    except OSError:
        return None
    found = {}
    for line in lines:
        left, _, right = os.fsdecode(line).partition(" - ")
        fields, kind = left.split(" "), right.split(" ")
        if len(fields) > 4:
            point = localfs.unescape_mount(fields[4])
            found[point] = Mount(point, *(localfs.unescape_mount(f) for f in (
                kind[0] if kind else "", kind[1] if len(kind) > 1 else "", fields[3])))
    return found


def holding(path: str, mounts: Optional[Mapping[str, Mount]]) -> Optional[Mount]:
    """The innermost of ``mounts`` that ``path`` (its links resolved) is at or under."""
    real = os.path.realpath(path)
    found = [m for p, m in (mounts or {}).items()
             if real == p or real.startswith(p.rstrip(os.sep) + os.sep)]
    return max(found, key=lambda m: len(m.point)) if found else None


def network(mount: Optional[Mount]) -> bool:
    """Whether ``mount`` is a FUSE or network file system's (where a folder refused to this
    user may be the mount's doing: credentials expired, a FUSE mount without ``allow_other``),
    as :func:`drivestage.localfs.fuse_devices` counts them."""
    return mount is not None and (mount.type.startswith("fuse")
                                  or mount.type in localfs.NETWORK_FS)
