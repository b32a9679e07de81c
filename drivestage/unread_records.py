"""What ``drivestage unread list`` / ``unread forget`` read and change: each machine's
records of the folders push could not read (:mod:`drivestage.unread_memory`'s ``unread.json``).
"""
from __future__ import annotations

import errno
import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable, Collection, Iterable, Optional

from drivestage import mount_table
from drivestage.errors import LocalFileError
from drivestage.interrupts import BackgroundThread
from drivestage.paths import printable
from drivestage.unread_memory import _by_host, _errno, _file, _fill, _valid
from drivestage.unread_mounts import _beneath, _outer, _under

log = logging.getLogger(__name__)


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
    #: its point now where that is another (mount51), or put below that point, at
    #: ``other_at`` (mount51b).
    fs: str = ""
    other: str = ""
    other_at: str = ""
    #: The point of a mount around :attr:`mount` the record notes that is away now (not
    #: mounted, or :attr:`other` there), mount52.
    outer: str = ""


def records() -> list[Record]:
    """Every machine's records in the state folder's memory, by path, this machine's first."""
    me, mounts = socket.gethostname(), mount_table.table()
    out = []
    for path, rec in sorted(_valid(_file().read(), str(_file().path))["folders"].items()):
        for host, r in sorted(_by_host(rec).items(),
                              key=lambda hr: (hr[0] not in ("", me), hr[0])):
            mine, mount = host in ("", me), r.get("mount")
            t = r.get("t")
            # (the path as written, no stat: a record on a hung mount held the command)
            away = _beneath(r, mounts, path) if mine else None
            now = away[1] if away is not None else None
            outer = away[0] if away is not None and any(
                o["mount"] == away[0] for o in _outer(r)) else ""
            out.append(Record(path, host or me, _errno(r), t if isinstance(t, (int, float)) else 0,
                              mount if isinstance(mount, str) else "",
                              None if not (mine and isinstance(mount, str) and mounts is not None)
                              else away is None,
                              mount_table.words(r["fs"]) if "fs" in r else "",
                              mount_table.words(now.fs) if now is not None else "",
                              now.point if now is not None and now.point != mount
                              and not outer else "", outer))
    return out


#: How long, in all, ``unread forget`` waits for the links of the paths it matches to be
#: resolved, in seconds (a path below a mount that hangs: taken as written after that).
RESOLVE_WITHIN = 2.0


def _resolved(paths: Iterable[str]) -> dict[str, str]:
    """Each of ``paths`` (absolute) -> its links resolved, or as written where that did not
    end within :data:`RESOLVE_WITHIN` (said: the mount that hangs). The paths are resolved
    in one thread per mount they lie in (by the table, as written): one that hangs holds
    only its own mount's."""
    paths = list(dict.fromkeys(os.path.abspath(p) for p in paths))
    mounts = mount_table.table() or {}
    groups: dict[str, list[str]] = {}
    for p in paths:
        inner = max((q for q in mounts if _under(p, q)), key=len, default="")
        groups.setdefault(inner, []).append(p)
    done: dict[str, list[tuple[str, str]]] = {q: [] for q in groups}

    def resolve(group: list[str], out: list[tuple[str, str]]) -> Callable[[], None]:
        return lambda: out.extend((p, os.path.realpath(p)) for p in group)
    threads = {q: BackgroundThread(resolve(g, done[q]), "drivestage-resolve").start()
               for q, g in groups.items()}
    end = time.monotonic() + RESOLVE_WITHIN
    out = dict.fromkeys(paths, "")
    for q, thread in threads.items():
        if not thread.join(max(0.0, end - time.monotonic())):
            log.warning("%s does not answer (a mount that hangs?): its paths are matched "
                        "as written, their links not resolved", printable(q or "a mount"))
        out.update(list(done[q]))   # (a copy: the thread may still add to it)
    return {p: r or p for p, r in out.items()}


def forget(paths: Collection[str] = (), host: Optional[str] = None) -> list[Record]:
    """Forget the records of ``paths`` (each by its names: as given and with its links
    resolved; none named: every path), every machine's or ``host``'s only (a recreated
    container's old name); the records forgotten. A push then takes such a folder as it
    reads (``--delete`` removes its copies on Drive where it is empty or gone). A record
    made through a link (``~/runs/src/mnt``, kept by that name and the real one) goes by its
    real name too: forgotten by the real name only, the push through the link still found
    it, and refused the folder just said to be emptied (attack50). Resolved in a bounded
    wait (:func:`_resolved`): a record below a mount that hangs held the command for good."""
    found = records()
    # (each name's links resolved in a bounded wait: a stat below a mount that hangs never
    # returns, and held the command meant to clean up after it: attack51)
    real = _resolved([*paths, *(r.path for r in found)] if paths else [])
    keys = {k for p in map(os.path.abspath, paths) for k in (p, real[p])}
    gone = [r for r in found if (not keys or r.path in keys or real[r.path] in keys)
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
        except OSError as exc:   # (EBUSY: its lock held by a stopped process, state.py)
            raise LocalFileError(f"cannot write {memory.path} ({exc.strerror or exc}): nothing "
                                 "was forgotten; " + ("" if exc.errno == errno.EBUSY else
                                                      "free the disk, then ") +
                                 "try again") from None
    return gone
