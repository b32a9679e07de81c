"""What ``drivestage unread list`` / ``unread forget`` read and change: each machine's
records of the folders push could not read (:mod:`drivestage.unread_memory`'s ``unread.json``).
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any, Collection, Optional

from drivestage import mount_table
from drivestage.errors import LocalFileError
from drivestage.unread_memory import _by_host, _errno, _file, _fill, _keys, _valid


@dataclass(frozen=True)
class Record:
    """One machine's record of a folder a push could not read (``drivestage unread list``)."""

    path: str
    host: str
    errno: int
    t: float   # when, in seconds since the epoch (0: unknown)
    #: The mount point it was on then ("" unknown), and whether that is mounted now (None:
    #: unknown, as for another machine's record; False too where another mount is there now).
    mount: str = ""
    mounted: Optional[bool] = None
    #: The mount it was, in words ("" unknown: a record of before mount51), and the one at
    #: its point now where that is another (mount51).
    fs: str = ""
    other: str = ""


def records() -> list[Record]:
    """Every machine's records in the state folder's memory, by path, this machine's first."""
    me, mounts = socket.gethostname(), mount_table.table()
    out = []
    for path, rec in sorted(_valid(_file().read(), str(_file().path))["folders"].items()):
        for host, r in sorted(_by_host(rec).items(),
                              key=lambda hr: (hr[0] not in ("", me), hr[0])):
            mine, mount = host in ("", me), r.get("mount")
            t = r.get("t")
            now = mounts.get(mount) if mine and isinstance(mount, str) and mounts else None
            other = now is not None and "fs" in r and not now.same(r["fs"])
            out.append(Record(path, host or me, _errno(r), t if isinstance(t, (int, float)) else 0,
                              mount if isinstance(mount, str) else "",
                              None if not (mine and isinstance(mount, str) and mounts is not None)
                              else now is not None and not other,
                              mount_table.words(r["fs"]) if "fs" in r else "",
                              mount_table.words(now.fs) if other and now is not None else ""))
    return out


def forget(paths: Collection[str] = (), host: Optional[str] = None) -> list[Record]:
    """Forget the records of ``paths`` (each by its names: as given and with its links
    resolved; none named: every path), every machine's or ``host``'s only (a recreated
    container's old name); the records forgotten. A push then takes such a folder as it
    reads (``--delete`` removes its copies on Drive where it is empty or gone). A record
    made through a link (``~/runs/src/mnt``, kept by that name and the real one) goes by its
    real name too: forgotten by the real name only, the push through the link still found
    it, and refused the folder just said to be emptied (attack50)."""
    keys = {k for p in paths for k in _keys(p)}
    gone = [r for r in records() if (not keys or r.path in keys
                                     or os.path.realpath(r.path) in keys)
            and (host is None or r.host == host)]
    me = socket.gethostname()

    def change(data: dict[str, Any]) -> None:
        _fill(data, str(memory.path))
        folders = data["folders"]
        for r in gone:
            left = {h: v for h, v in _by_host(folders.pop(r.path, None)).items()
                    if (h or me) != r.host}
            if left:
                folders[r.path] = left
    memory = _file()
    if gone:
        try:
            memory.update(change)
        except OSError as exc:
            raise LocalFileError(f"cannot write {memory.path} ({exc.strerror or exc}): nothing "
                                 "was forgotten; free the disk, then try again") from None
    return gone
