"""What push could not read, remembered across processes (``unread.json`` in the state folder).

A FUSE mount in SRC (or SRC itself) whose program ended reads ENOTCONN: push keeps what Drive
has under it (:mod:`drivestage.unread`). Unmounted, it reads as the empty folder it was made
on, the same as a folder a user emptied on purpose; only the history tells them apart. The
same process remembered it; a new one (a cron push, a restarted mirror, the trainer after a
restart) did not, and ``--delete`` took everything Drive held under it (attackr248). So the
folders a push could not read are written here as the walk found them, before push sends a
request (a push killed at any later point is remembered), by their absolute local path (into
any DEST: a push of the folder above, or into another DEST, sees the same mount point), and a
later push of any process that reads one of them as holding nothing keeps it as unread
(:func:`empty_again`, :func:`src_again`).

Forgotten only on a signal an unmounted mount point cannot give: the folder holds something
(a clean read of a mount point left unmounted finds nothing), it is gone (the walk's clear
answer, as pushread48 rules), or the user says it was emptied on purpose (``push --emptied
PATH``, or ``drivestage unread forget PATH`` for a mirror's or trainer's: :func:`forget`).
The first two only while the mount the folder was on then (noted from the mount table) is
mounted: undone, what the path shows is the disk beneath, not the mount: a file a program
wrote into the unmounted mount point, or nothing where udisks / ``systemd-mount`` removed
their mount point at unmount, took the mount's copies on Drive with ``--delete`` (mount50).
A folder that was on no mount undone (EACCES on a plain folder, fixed) is forgotten as ever.

A memory that is damaged or another version's is said and taken as none (push as before it
existed); one that is there but cannot be read (another user's) is said and not written over,
and ``--delete`` is refused while it lasts (:mod:`drivestage.unread_guard`); one that cannot
be written (a full or read-only disk) is said and held in this process only.
"""
from __future__ import annotations

import atexit
import errno
import logging
import os
import socket
import stat
import time
from typing import Any, Callable, Collection, Iterable, Mapping, Optional, Sequence

from drivestage import mount_table, unread_guard
from drivestage.errors import DriveStageError, LocalFileError
from drivestage.paths import matches, usable_local_path
from drivestage.state import JsonFile, read_json, state_dir
from drivestage.unread import Unread, src_beneath, src_unread as _src_failure, src_refused
# (re-exported: tests note records as a push does)
from drivestage.unread_mounts import Away, _beneath, _mounts, _noted, _remembered, _said

log = logging.getLogger("drivestage.upload_tree")   # (push's lines' name)

#: The file's name in the state folder, and the shape this code writes: ``{"version": 1,
#: "folders": {PATH: {HOST: {"errno": N, "t": T, "mount": M, "fs": F}}}}`` (PATH: a folder's
#: absolute local path, SRC's or one in it; HOST: the machine that could not read it; N: why;
#: T: when, in seconds since the epoch; M: the mount point it was on then, absent where the
#: mount table could not be read: while M is not mounted, what PATH shows is the disk beneath,
#: not the mount, whatever it holds or if it is gone: mount50; F: what that mount was,
#: ``{"type", "source", "root"}`` (:class:`drivestage.mount_table.Mount`): another mount at
#: M is not the mount back, mount51; ``"outer"``: the mounts M lies inside, but ``/``, each
#: ``{"mount", "fs"}``, outermost first: one of them away is M away, mount52). By machine:
#: the state folder is in the home folder, which two machines may share (NFS), and a mount is
#: one machine's: another machine's PATH holding something, or missing there, says nothing of
#: this one's (attackint49). A record of
#: an earlier build (``{"errno", "t"}``, no machine) counts as this machine's; one without
#: ``mount`` is read as before mount50, one without ``fs`` as before mount51 (any mount at M
#: is the mount back). Not by mount namespace: a container made anew gets a new one, and its
#: records would be another's, never the disk beneath (mount51's note).
FILE = unread_guard.FILE
VERSION = 1
MAX_BYTES = unread_guard.MAX_BYTES   # (the most bytes of the file read)

#: This process's memory where the file could not be written, by the file's path (``""``: no
#: state folder), until it can be: tried at each change (the disk freed, or a notebook
#: pointing DRIVESTAGE_STATE_DIR elsewhere as the warning says: what this process learned is
#: written there then; it was kept in this process for good, and the next one lacked it).
_here: dict[str, dict[str, Any]] = {}


class _File(JsonFile):
    """``unread.json``: one that cannot be read is said once a process (a push reads it twice,
    a mirror every period), naming what it costs."""

    def read(self) -> dict[str, Any]:
        try:
            data = read_json(self.path, MAX_BYTES)
            return data if isinstance(data, dict) else {"version": None}
        except FileNotFoundError:
            return {}
        except OSError as exc:   # (a file there, not readable: not written over, attack51)
            unread_guard.ignoring(str(self.path), exc.strerror or str(exc),
                                  unread_guard.unreadable(self.path, MAX_BYTES) is not None)
            return {}
        except ValueError as exc:
            unread_guard.ignoring(str(self.path), str(exc))
            return {}

    def update_or_warn(self, change: Callable[[dict[str, Any]], None], lost: str,
                       busy: str = "") -> bool:
        try:   # (one there that cannot be read: held by the process, said by read)
            unread_guard.not_over(self.path, MAX_BYTES)
        except unread_guard.UnreadableMemory:
            return False
        return super().update_or_warn(change, lost, busy)


def _file() -> JsonFile:
    return _File(state_dir() / FILE)


def _valid(data: dict[str, Any], path: str) -> dict[str, Any]:
    """``data`` as read, or an empty memory where it is not this version's (said once); a
    record whose path is no absolute path the system takes (a NUL in it, half a surrogate
    pair) left out: one ended the push and ``unread forget`` in a traceback (attack51)."""
    if data and (data.get("version") != VERSION or not isinstance(data.get("folders"), dict)):
        unread_guard.ignoring(path, "not a memory this version of drivestage reads")
        data = {}
    if data:
        data["folders"] = {p: r for p, r in data["folders"].items() if usable_local_path(p)}
    return data if data else {"version": VERSION, "folders": {}}


def _by_host(rec: Any) -> dict[str, Any]:
    """A path's records, machine -> record (an earlier build's single record: ``""``, taken
    for this machine's)."""
    if isinstance(rec, dict) and "errno" in rec:
        return {"": rec}
    return {h: r for h, r in rec.items() if isinstance(r, dict)} if isinstance(rec, dict) else {}


def _mine(records: Mapping[str, Any]) -> Any:
    """This machine's record of those (None: none)."""
    return records.get(socket.gethostname(), records.get(""))


def _read(mine: bool = False) -> dict[str, Any]:
    """The folders push could not read: path -> record, any machine's (a push keeps a
    folder any machine could not read: the path may be the same folder, an NFS one), or with
    ``mine`` this machine's only (what this machine may forget)."""
    try:
        memory = _file()
    except DriveStageError:   # (no state folder: the push's other state says it)
        folders = _here.get("", {}).get("folders", {})
    else:
        here = _here.get(str(memory.path))
        folders = here["folders"] if here is not None else \
            _valid(memory.read(), str(memory.path))["folders"]
    out: dict[str, dict[str, Any]] = {}
    for path, rec in list(folders.items()):   # (_here: another thread's push changes it)
        records = _by_host(rec)
        got = _mine(records) if mine else (_mine(records) or next(iter(records.values()), None))
        if got is not None:
            out[path] = got
    return out


def _change(forget: Iterable[str], note: Mapping[str, int],
            everyone: Collection[str] = (),
            mounts: Mapping[str, Mapping[str, Any]] = {}, since: Optional[float] = None) -> None:
    """Forget this machine's records of the folders ``forget``, every machine's of those of
    ``everyone`` (``--emptied``: the user's word), and note those of ``note`` (path -> errno)
    as this machine's, in the file (a locked read-modify-write: two pushes at once each keep
    the other's) or, where it cannot be written, in this process (said: the next process
    does not know them); ``mounts``: path -> what a noted folder's record notes of the mount it was on
    (:func:`_mounts`). ``since``: when the walk that found ``forget`` held something began;
    a record noted after it is kept (another push found the mount stopped since)."""
    forget, now, host = list(forget), time.time(), socket.gethostname()

    def change(data: dict[str, Any]) -> None:
        folders = data["folders"]
        for path in set(forget) | set(everyone) | set(note):
            records = _by_host(folders.pop(path, None))
            if path in everyone:
                records = {}
            elif path in note or (path in forget and not _newer(records, host, since)):
                records.pop(host, None)
                records.pop("", None)
            if path in note:
                records[host] = {"errno": note[path], "t": now, **mounts.get(path, {})}
            if records:
                folders[path] = records
    try:
        memory = _file()
    except DriveStageError:
        change(_here.setdefault("", _valid({}, "")))
        return
    key = str(memory.path)
    here = _here.get(key)

    def on_file(data: dict[str, Any]) -> None:
        _fill(data, key)
        if here is not None:   # (what this process learned while the file could not be written)
            data["folders"].update(here["folders"])
        change(data)
    if memory.update_or_warn(on_file, "a folder push could not read is not known to the next "
                             "process (an empty mount point there would be taken for a "
                             "folder emptied): free the disk, or point DRIVESTAGE_STATE_DIR "
                             "at a folder you can write",
                             "a folder push could not read is not known to the next process "
                             "(an empty mount point there would be taken for a folder "
                             "emptied; push --delete refuses while that lock is held): let "
                             "that process go on (fg) or end it, then push again before you "
                             "undo a stopped mount"):
        _here.pop(key, None)
        return
    if here is None:
        here = _here[key] = _valid(memory.read(), key)
        atexit.unregister(_at_exit)   # (once, however often the file could not be written)
        atexit.register(_at_exit)
    change(here)


def _at_exit() -> None:
    """At this process's exit, the memory it still holds (the file's lock held by another
    process at its change) written, its lock waited for as at a change (bounded): the note
    of a stopped mount lived in this process only, and once its holder let go and this
    process ended, the next ``push --delete`` trashed that mount's copies (attackc52)."""
    if _pending():
        _change((), {})


def _newer(records: Mapping[str, Any], host: str, since: Optional[float]) -> bool:
    """Whether this machine's record among ``records`` was noted at ``since`` or after: by a
    push whose walk found the folder unreadable while the forgetting push's walk, begun at
    ``since``, had read it (a mount stopped meanwhile). Forgotten on that older reading, the
    folder read as emptied once the mount was undone, and ``--delete`` trashed its copies
    (attackb52)."""
    if since is None:
        return False
    rec = records.get(host, records.get(""))
    t = rec.get("t") if isinstance(rec, dict) else None
    return isinstance(t, (int, float)) and not isinstance(t, bool) and t >= since


def _pending() -> bool:
    """Whether this process holds a memory for the state folder's file that the file lacks
    (it could not be written: tried again at each push till it can)."""
    try:
        return str(_file().path) in _here
    except DriveStageError:
        return False


def _fill(data: dict[str, Any], path: str) -> dict[str, Any]:
    """``data`` (the file as read, changed in place) made this version's memory."""
    valid = _valid(dict(data), path)
    data.clear()
    data.update(valid)
    return data


def _keys(path: str) -> list[str]:
    """The names ``path`` is remembered by: as given (absolute) and with its links resolved
    (a SRC pushed through a link, ``~/runs`` -> ``/scratch/runs``, is the same folder pushed
    by its real path: attackint49). A mount point's own lstat failing (ENOTCONN) leaves it
    as it is named: realpath resolves the links above it."""
    given = os.path.abspath(path)
    real = os.path.realpath(given)
    return [given] if real == given else [given, real]


def _find(last: Mapping[str, Any], path: str) -> Any:
    """The record of ``path`` by any of its names (None: none)."""
    return next((last[k] for k in _keys(path) if k in last), None)


def src_unread(src: str, err: int) -> LocalFileError:
    """The failure of a push whose SRC could not be stat'ed or listed (``err``), remembered:
    a later push of any process that reads it as empty is refused (:func:`src_again`)."""
    keys, mounts = _keys(src), mount_table.table()
    if _remembered(err, src, mounts):
        why = dict.fromkeys(keys, err)
        _change((), why, mounts=_mounts(keys, mounts, why))
    return _src_failure(src, err)


def refuse_unread_src(src: str) -> None:
    """Raise :func:`src_unread` where ``src`` cannot be stat'ed, other than for being absent
    (a stopped mount: ENOTCONN; was "is not a local folder", exit 2, and not remembered)."""
    try:
        os.stat(src)
    except (FileNotFoundError, NotADirectoryError):
        pass
    except OSError as exc:
        raise src_unread(src, exc.errno or 0) from None


def src_again(src: str, empty: bool, emptied: Collection[str] = (),
              since: Optional[float] = None) -> None:
    """Refuse a push of ``src`` that reads as ``empty`` where a push could not read it (a
    mount that stopped, then unmounted: ``--delete`` took every file of DEST, attackr248);
    forget that once it holds something, or ``emptied`` names it (``--emptied``). So too
    where a folder of SRC was remembered on a mount SRC is on as well, not mounted now: SRC
    shows the disk beneath (a flaky stick's folder read EIO, the stick since unmounted and
    SRC its bare mount point: ``--delete`` took every copy on Drive but that folder's,
    attack50)."""
    key = os.path.abspath(src)
    covered = _covering(key)
    if covered and key not in emptied:
        path, under = covered[0]
        rec = _read(mine=True)[path]
        raise src_beneath(src, _errno(rec), *_said(under, rec), path=path)
    rec = _find(_read(), key)
    if rec is None:
        if covered:   # (--emptied SRC: the records of its mount's folders with it)
            _change((), {}, [p for p, _ in covered])
        return
    mine = _find(_read(mine=True), key)
    away = _beneath(mine, mount_table.table(), os.path.realpath(key))
    # (files written into it, or another mount's: mount51)
    if away is not None and (not empty or away[1] is not None) and key not in emptied:
        raise src_beneath(src, _errno(rec), *_said(away, mine), path=key)
    if empty and key not in emptied:
        raise src_refused(src, _errno(rec))
    _change(_keys(key), {}, [*_keys(key), *(p for p, _ in covered)] if key in emptied else (),
            since=since)


def _covering(key: str) -> list[tuple[str, Away]]:
    """This machine's records of folders below SRC (``key``) whose mount, away now
    (:data:`Away`), is SRC's own or one above it: (path, how it is away)."""
    mine = _read(mine=True)
    below = [p for p in mine if any(p.startswith(k + os.sep) for k in _keys(key))]
    mounts = mount_table.table() if below else None
    real = os.path.realpath(key)
    return [(p, a) for p in below for a in [_beneath(mine[p], mounts, os.path.realpath(p))]
            if a is not None and (real == a[0] or real.startswith(a[0].rstrip(os.sep) + os.sep))]


def _unread(rel: str, path: str, rec: Any, empty: bool, away: Optional[Away],
            gone: bool = False, of: str = "") -> Unread:
    """The :class:`Unread` of a folder kept for ``rec`` (``away``: its mount, away now; ``of``:
    the folder ``rec`` is of, where that is below ``path``, its mount point)."""
    point, other, was, at = _said(away, rec) if away is not None else ("", "", "", "")
    return Unread(rel, path, _errno(rec), True, empty, point, gone, other, was, of, at)


def _unit(root: str, path: str, away: Optional[Away]) -> Optional[tuple[str, str]]:
    """Where the record of ``path`` (below SRC, ``root``), its mount away, is kept: at that
    mount's point (rel, path) where it lies below SRC and above ``path``: what the disk
    beneath (or another mount) shows there stands for the whole mount, and ``--delete`` took
    its other copies, keeping that one folder's (mount51); None: at ``path``."""
    if away is None:
        return None
    point = away[0]
    for r in _keys(root):
        if point.startswith(r + os.sep) and any(k.startswith(point + os.sep)
                                                for k in _keys(path)):
            rel = point[len(r) + 1:]
            return rel.replace(os.sep, "/"), os.path.join(root, rel)
    return None


def empty_again(folders: list[str], made: list[str], held: Iterable[str],
                unread: Sequence[Unread], src: str, emptied: Collection[str] = (),
                exclude: Sequence[str] = (), since: Optional[float] = None) -> list[Unread]:
    """The ``folders`` (a walk's of ``src``) that a push could not read and that hold nothing
    now (none of the walk's paths, ``held``, below them), unless ``emptied`` names them, as
    :class:`Unread` (``empty``), taken out of ``folders`` and ``made`` (not made on the
    store, as the walk's own unread folders); and those whose mount is not mounted now
    (``beneath``: what they hold, or that they are gone, is the disk beneath's; the caller
    leaves out what the walk found below them). Remembered: these and the walk's ``unread``
    folders; forgotten: the folders of SRC remembered that hold something now, are gone (a
    mount not undone), or that ``emptied`` names; ``since``: when the walk began (a record
    noted after it is kept: :func:`_newer`)."""
    last, mine = _read(), _read(mine=True)
    root = os.path.abspath(src)
    held = list(held)
    points = mount_table.table() if mine else None
    again: list[Unread] = []
    forget: list[str] = []
    for rel in folders:
        path = os.path.abspath(os.path.join(src, rel)) if rel else root
        rec = _find(last, path)
        if rec is None:
            continue
        if not rel or path in emptied:
            forget += _keys(path)   # (SRC's own: src_again's)
            continue
        point = _beneath(_find(mine, path), points, os.path.realpath(path))
        holds = any(h.startswith(rel + "/") for h in held)
        if holds and point is None:
            forget += _keys(path)
            continue
        unit = _unit(root, path, point)
        if unit is not None:   # (its mount's point stands for it)
            if all(u.rel != unit[0] for u in again):
                again.append(_unread(*unit, _find(mine, path), False, point, of=path))
            continue
        # (empty, and another mount at its point: that mount's, not an unmounted one's)
        again.append(_unread(rel, path, _find(mine, path) if point else rec,
                             not holds and not (point and point[1]), point))
    for u in again:
        if u.rel in folders:
            folders.remove(u.rel)
        if u.rel in made:
            made.remove(u.rel)
    # A folder remembered below SRC that the walk did not find: gone (forgotten, unless its
    # mount is not mounted now: its mount point removed at unmount), no folder now (a file
    # written where the mount point was removed, ``cp x.log /media/usb``: kept while its
    # mount is not mounted, attack50), or left out by the filters, or below a folder not
    # read (kept).
    kept = {u.rel for u in again} | {u.rel for u in unread}
    for p in [p for p in mine if p not in forget]:
        below = next((p[len(r) + 1:] for r in _keys(root) if p.startswith(r + os.sep)), None)
        if below is None:   # (only SRC's: a path elsewhere may hang a stat)
            continue
        gone = _gone(p)
        if not gone and not _no_folder(p):
            continue
        point = _beneath(mine[p], points, os.path.realpath(p))
        below = below.replace(os.sep, "/")
        if point is None:
            if gone:
                forget.append(p)
            continue
        unit = _unit(root, p, point)
        if os.path.join(root, below) in emptied or p in emptied:
            continue
        of, gone = ("", gone) if unit is None else (p, _gone(unit[1]))
        below, path = unit or (below, os.path.join(root, below))
        if not (matches(below, exclude) or any(below == k or below.startswith(k + "/")
                                               for k in kept)):
            kept.add(below)
            again.append(_unread(below, path, mine[p], False, point, gone, of))
    fresh = [k for u in unread if u.folder and u.rel for k in _keys(u.path)]
    points = points if points is not None or not fresh else mount_table.table()
    note = {k: u.errno for u in unread if u.folder and u.rel for k in _keys(u.path)
            if _remembered(u.errno, k, points)}
    note.update({k: u.errno for u in again for k in _keys(u.of or u.path)})
    # The mount each was on: as the walk found it (a mount whose program ended is in the
    # table till it is undone), or for one kept again, as recorded (its path is the disk
    # beneath's now).
    mounts = {k: n for k in note for n in [_noted(mine.get(k))] if n is not None}
    if fresh:
        mounts.update({k: m for k, m in _mounts(fresh, points, note).items()
                       if _beneath(mine.get(k), points, os.path.realpath(k)) is None})
    everyone = [k for p in emptied for k in _keys(p) if k in last]
    if (any(p in mine for p in forget) or everyone or _pending()
            or any(_errno(mine.get(p)) != err or _noted(mine.get(p)) != mounts.get(p)
                   for p, err in note.items())):
        _change(forget, note, everyone, mounts, since)
    return again


def _gone(path: str) -> bool:
    """``path`` is not there, as the system says it clearly (not: below a mount that stopped,
    whose lstat fails ENOTCONN, as os.path.lexists takes for absent: attackint49)."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return False


def _no_folder(path: str) -> bool:
    """``path`` is there, and is no folder (a file, a link, a special file)."""
    try:
        return not stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _errno(rec: Any) -> int:
    """A record's errno; 0 where it is none (one past a C int, from a damaged or hostile
    file, ended the push and ``unread list`` in an OverflowError from ``os.strerror``)."""
    got = rec.get("errno") if isinstance(rec, dict) else None
    return got if isinstance(got, int) and not isinstance(got, bool) and 0 <= got < 1 << 31 \
        else 0
