"""A record of :mod:`drivestage.unread_memory` judged against the mount table now: the mount
its folder was on (:func:`_mounts`, noted as the walk found it), whether that is what shows
the folder now (:func:`_beneath`), and in words (:func:`_said`).

While the mount a folder was on is not mounted, what the folder shows is the disk beneath
(mount50); while another mount is at its point (mount51), or put between that point and the
folder (mount51b), it shows that mount's files: in every case not the folder push could not
read, and ``--delete`` compared Drive against the wrong files. So too where a mount around
that one is away (a FUSE mount inside another: mount52): what shows there is the disk
beneath the outer one.
"""
from __future__ import annotations

import errno
import os
from typing import Any, Iterable, Mapping, Optional

from drivestage import mount_table
from drivestage.mount_table import Mount


#: Where a record's mount is not what shows its folder now: (M, None) where nothing is
#: mounted at M, the point it notes (what the path shows is the disk beneath), (M, the mount
#: there) where another mount is at M (mount51), or (M2, the mount there) where another mount
#: is put at M2, below M and at or above the folder (mount51b): the point where the mount that
#: shows it now is not the one noted, and that mount; or (O, None or the mount there) where O
#: is the outermost of the mounts around M the record notes that is away so (mount52).
Away = tuple[str, Optional[Mount]]


def _beneath(rec: Any, mounts: Optional[Mapping[str, Mount]],
             path: Optional[str] = None) -> Optional[Away]:
    """Whether the mount ``rec`` (this machine's record of the folder ``path``, links
    resolved) notes its folder was on is away (:data:`Away`); None where it is mounted, and
    no other mount lies between its point and ``path``, or where either table is unknown (as
    before mount50: its reading taken). Another mount at the same point (a tmpfs, another
    account's Drive, a bind of an empty folder) is no mount back: ``--delete`` compared Drive
    against its contents (mount51); a record without the mount's ``fs`` (mount50's) takes any.
    Nor is one put below it, at the folder or above: the record notes the innermost mount its
    folder was on, so a mount between was not there, and with the noted point judged alone
    the folder counted as back, and ``--delete`` trashed its copies for the new mount's
    files (attackc51). Nor where a mount the record notes around that one (``"outer"``) is
    away: the outermost such is (mount52). ``path`` is compared as written (no stat: a caller that must not wait
    on a hung mount, ``unread list``, passes the record's own path)."""
    point = rec.get("mount") if isinstance(rec, dict) else None
    if not isinstance(point, str) or mounts is None:
        return None
    for out in _outer(rec):   # (outermost first: away, all of it is the disk beneath's)
        was = mounts.get(out["mount"])
        if was is None or ("fs" in out and not was.same(out["fs"])):
            return out["mount"], was
    now = mounts.get(point)
    if now is None:
        return point, None
    if "fs" in rec and not now.same(rec["fs"]):
        return point, now
    put = _put_below(now, path, mounts) if path is not None else None
    return None if put is None else (put.point, put)


def _outer(rec: Any) -> list[dict[str, Any]]:
    """The mounts ``rec`` notes around the one its folder was on (``"outer"``: each
    ``{"mount": point, "fs": what}``, outermost first), those well formed; none in a record
    of before mount52 (its folder is judged by its innermost mount alone, as then)."""
    got = rec.get("outer") if isinstance(rec, dict) else None
    return [o for o in got if isinstance(o, dict) and isinstance(o.get("mount"), str)] \
        if isinstance(got, list) else []


def _around(point: str, mounts: Mapping[str, Mount]) -> list[dict[str, Any]]:
    """What a record notes of the mounts ``point`` (a mount's, or a folder's) lies inside
    (``"outer"``, outermost first; not ``/``, always mounted): a FUSE mount inside another
    mount in SRC noted only itself, and with the outer one undone too (``umount -l`` takes
    both) the folder was kept and ``--delete`` trashed the outer mount's other copies
    (mount52)."""
    return [{"mount": q, "fs": mounts[q].fs} for q in sorted(mounts, key=len)
            if q not in (os.sep, point) and _under(point, q)]


def _put_below(top: Mount, path: str, mounts: Mapping[str, Mount]) -> Optional[Mount]:
    """The outermost of ``mounts`` strictly below ``top``'s point and at or above ``path``
    (its folders all that mount's now), None where none is. One that shows what ``top``
    shows there (a bind of that very folder onto itself, as ``mount --bind d d`` and some
    sandboxes make) is no other mount."""
    found = [m for q, m in mounts.items() if q != top.point and _under(q, top.point)
             and _under(path, q) and not _same_view(m, top)]
    return min(found, key=lambda m: len(m.point)) if found else None


def _same_view(m: Mount, top: Mount) -> bool:
    """Whether ``m``, below ``top``, shows the folder of ``top`` it covers."""
    rel = m.point[len(top.point.rstrip(os.sep)):]
    return (m.type, m.source) == (top.type, top.source) and \
        m.root == top.root.rstrip("/") + rel.replace(os.sep, "/")


def _under(path: str, point: str) -> bool:
    """Whether ``path`` is ``point`` or below it (both as written)."""
    return path == point or path.startswith(point.rstrip(os.sep) + os.sep)


def _noted(rec: Any) -> Optional[dict[str, Any]]:
    """What ``rec`` notes of its mount (``mount``, ``fs``), None where nothing."""
    if not isinstance(rec, dict) or "mount" not in rec:
        return None
    return {f: rec[f] for f in ("mount", "fs", "outer") if f in rec}


def _mounts(paths: Iterable[str], mounts: Optional[Mapping[str, Mount]],
            why: Optional[Mapping[str, int]] = None) -> dict[str, dict[str, Any]]:
    """What a record of each of ``paths`` notes of the mount it is on (``why``: path -> why
    it could not be read). One that read ENOTCONN under a mount that reads was on a mount
    undone while the walk went on: its own point (its parent read), what it was unknown; noted
    as on the disk above, a file written later into the bare mount point had ``--delete``
    trash the mount's copies (attack51)."""
    out: dict[str, dict[str, Any]] = {}
    for p in paths:
        m, real = mount_table.holding(p, mounts), os.path.realpath(p)
        if m is not None and (why or {}).get(p) == errno.ENOTCONN and m.point != real \
                and os.path.isdir(m.point):
            out[p] = {"mount": real, "outer": _around(real, mounts or {})}
        elif m is not None:
            out[p] = {"mount": m.point, "fs": m.fs, "outer": _around(m.point, mounts or {})}
    return out


def _remembered(err: int, path: str, mounts: Optional[Mapping[str, Mount]]) -> bool:
    """Whether a folder a push could not read (``err``) is remembered: not where this user
    may not read it on a local disk (a chmod, the owner's choice: it reads as it is once
    readable, an empty folder emptied), but where the mount is a FUSE or network one (the
    mount's doing: credentials expired, a FUSE mount without ``allow_other``; it may be
    undone next) or unknown (attackint49's question, mount51)."""
    if err not in (errno.EACCES, errno.EPERM) or mounts is None:
        return True
    return mount_table.network(mount_table.holding(path, mounts))


def _said(away: Away, rec: Any) -> tuple[str, str, str, str]:
    """``away`` of the record ``rec`` as :class:`drivestage.unread.Unread` says it: the
    point, the mount there now and the one ``rec`` notes, in words (``""``: none is mounted
    there), and the point ``rec`` notes where the mount now is put below it (else ``""``)."""
    point, now = away
    if now is None:
        return point, "", "", ""
    out = next((o for o in _outer(rec) if o["mount"] == point), None)
    if out is not None:   # (another mount where one around the noted one was)
        return point, mount_table.words(now.fs), mount_table.words(out.get("fs")), ""
    noted = rec.get("mount") if isinstance(rec, dict) else None
    return point, mount_table.words(now.fs), mount_table.words(rec.get("fs")), \
        noted if isinstance(noted, str) and noted != point else ""
