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

A memory that cannot be read (damaged, another version's) is said and taken as none (push as
before it existed); one that cannot be written (a full or read-only disk) is said and held
in this process only: push works either way.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import stat
import time
from dataclasses import dataclass
from typing import Any, Collection, Iterable, Mapping, Optional, Sequence

from drivestage import localfs
from drivestage.errors import DriveStageError, LocalFileError
from drivestage.paths import matches
from drivestage.state import JsonFile, state_dir
from drivestage.unread import Unread, src_beneath, src_unread as _src_failure, src_refused

log = logging.getLogger("drivestage.upload_tree")   # (push's lines' name)

#: The file's name in the state folder, and the shape this code writes: ``{"version": 1,
#: "folders": {PATH: {HOST: {"errno": N, "t": T, "mount": M}}}}`` (PATH: a folder's absolute
#: local path, SRC's or one in it; HOST: the machine that could not read it; N: why; T: when,
#: in seconds since the epoch; M: the mount point it was on then, absent where the mount
#: table could not be read: while M is not mounted, what PATH shows is the disk beneath, not
#: the mount, whatever it holds or if it is gone: mount50). By machine: the state folder is
#: in the home folder, which two machines may share (NFS), and a mount is one machine's:
#: another machine's PATH holding something, or missing there, says nothing of this one's
#: (attackint49). A record of an earlier build (``{"errno", "t"}``, no machine) counts as
#: this machine's; one without ``mount`` is read as before mount50.
FILE = "unread.json"
VERSION = 1

#: This process's memory where the file could not be written, by the file's path (``""``: no
#: state folder), until it can be: tried at each change (the disk freed, or a notebook
#: pointing DRIVESTAGE_STATE_DIR elsewhere as the warning says: what this process learned is
#: written there then; it was kept in this process for good, and the next one lacked it).
_here: dict[str, dict[str, Any]] = {}
#: The files said (once per process) not to be a memory this version reads.
_warned: set[str] = set()


class _File(JsonFile):
    """``unread.json``: one that cannot be read is said once a process (a push reads it twice,
    a mirror every period), naming what it costs."""

    def read(self) -> dict[str, Any]:
        try:
            with open(self.path, encoding="utf-8") as fh:
                data = json.load(fh)
            return data if isinstance(data, dict) else {"version": None}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            _ignoring(str(self.path), str(exc))
            return {}


def _file() -> JsonFile:
    return _File(state_dir() / FILE)


def _ignoring(path: str, why: str) -> None:
    if path not in _warned:
        _warned.add(path)
        log.warning("ignoring %s (%s): a folder an earlier push could not read is not known "
                    "to this one; it is written anew", path, why)


def _valid(data: dict[str, Any], path: str) -> dict[str, Any]:
    """``data`` as read, or an empty memory where it is not this version's (said once)."""
    if data and (data.get("version") != VERSION or not isinstance(data.get("folders"), dict)):
        _ignoring(path, "not a memory this version of drivestage reads")
        data = {}
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
    out = {}
    for path, rec in folders.items():
        records = _by_host(rec)
        got = _mine(records) if mine else (_mine(records) or next(iter(records.values()), None))
        if got is not None:
            out[path] = got
    return out


def _change(forget: Iterable[str], note: Mapping[str, int],
            everyone: Collection[str] = (), mounts: Mapping[str, str] = {}) -> None:
    """Forget this machine's records of the folders ``forget``, every machine's of those of
    ``everyone`` (``--emptied``: the user's word), and note those of ``note`` (path -> errno)
    as this machine's, in the file (a locked read-modify-write: two pushes at once each keep
    the other's) or, where it cannot be written, in this process (said: the next process
    does not know them); ``mounts``: path -> the mount point a noted folder was on."""
    forget, now, host = list(forget), time.time(), socket.gethostname()

    def change(data: dict[str, Any]) -> None:
        folders = data["folders"]
        for path in set(forget) | set(everyone) | set(note):
            records = _by_host(folders.pop(path, None))
            if path in everyone:
                records = {}
            elif path in forget or path in note:
                records.pop(host, None)
                records.pop("", None)
            if path in note:
                records[host] = {"errno": note[path], "t": now}
                if path in mounts:
                    records[host]["mount"] = mounts[path]
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
                             "at a folder you can write"):
        _here.pop(key, None)
        return
    if here is None:
        here = _here[key] = _valid(memory.read(), key)
    change(here)


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


def mount_points() -> Optional[set[str]]:
    """The mount points of this process's mount table (bind mounts too, and a FUSE mount
    whose program ended, till it is unmounted); None where it cannot be read. Lines end at
    ``\n`` only, and names are decoded as the file system's (as ``os.path.realpath`` gives
    them): the table writes a name's other bytes raw, and ``splitlines`` cut a mount at
    ``m\u2028nt`` (or ``\x85``, ``\x1c``) in two, its folders then noted as on the disk
    above (always mounted), and ``errors="replace"`` matched no non-UTF-8 name (attack50)."""
    try:
        with open(localfs.MOUNTINFO, "rb") as fh:
            lines = fh.read().split(b"\n")
    except OSError:
        return None
    fields = (os.fsdecode(line).partition(" - ")[0].split(" ") for line in lines)
    return {localfs.unescape_mount(f[4]) for f in fields if len(f) > 4}


def _mount_of(path: str, points: Optional[set[str]]) -> Optional[str]:
    """The innermost of ``points`` that ``path`` (its links resolved) is at or under."""
    real = os.path.realpath(path)
    found = [p for p in points or () if real == p or real.startswith(p.rstrip(os.sep) + os.sep)]
    return max(found, key=len) if found else None


def _beneath(rec: Any, points: Optional[set[str]]) -> Optional[str]:
    """The mount point ``rec`` (this machine's record) notes its folder was on, where that is
    not mounted now (what the path shows is the disk beneath); None where it is, or where
    either table is unknown (as before mount50: its reading taken)."""
    point = rec.get("mount") if isinstance(rec, dict) else None
    return point if isinstance(point, str) and points is not None and point not in points \
        else None


def _mounts(paths: Iterable[str], points: Optional[set[str]]) -> dict[str, str]:
    return {p: m for p in paths for m in [_mount_of(p, points)] if m is not None}


def src_unread(src: str, err: int) -> LocalFileError:
    """The failure of a push whose SRC could not be stat'ed or listed (``err``), remembered:
    a later push of any process that reads it as empty is refused (:func:`src_again`)."""
    keys = _keys(src)
    _change((), dict.fromkeys(keys, err), mounts=_mounts(keys, mount_points()))
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


def src_again(src: str, empty: bool, emptied: Collection[str] = ()) -> None:
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
        raise src_beneath(src, _errno(_read(mine=True)[path]), under)
    rec = _find(_read(), key)
    if rec is None:
        if covered:   # (--emptied SRC: the records of its mount's folders with it)
            _change((), {}, [p for p, _ in covered])
        return
    point = _beneath(_find(_read(mine=True), key), mount_points())
    if point is not None and not empty and key not in emptied:   # (files written into it)
        raise src_beneath(src, _errno(rec), point)
    if empty and key not in emptied:
        raise src_refused(src, _errno(rec))
    _change(_keys(key), {}, [*_keys(key), *(p for p, _ in covered)] if key in emptied else ())


def _covering(key: str) -> list[tuple[str, str]]:
    """This machine's records of folders below SRC (``key``) whose mount, not mounted now,
    is SRC's own or one above it: (path, mount point)."""
    mine = _read(mine=True)
    below = [p for p in mine if any(p.startswith(k + os.sep) for k in _keys(key))]
    points = mount_points() if below else None
    real = os.path.realpath(key)
    return [(p, m) for p in below for m in [_beneath(mine[p], points)]
            if m is not None and (real == m or real.startswith(m.rstrip(os.sep) + os.sep))]


def empty_again(folders: list[str], made: list[str], held: Iterable[str],
                unread: Sequence[Unread], src: str, emptied: Collection[str] = (),
                exclude: Sequence[str] = ()) -> list[Unread]:
    """The ``folders`` (a walk's of ``src``) that a push could not read and that hold nothing
    now (none of the walk's paths, ``held``, below them), unless ``emptied`` names them, as
    :class:`Unread` (``empty``), taken out of ``folders`` and ``made`` (not made on the
    store, as the walk's own unread folders); and those whose mount is not mounted now
    (``beneath``: what they hold, or that they are gone, is the disk beneath's; the caller
    leaves out what the walk found below them). Remembered: these and the walk's ``unread``
    folders; forgotten: the folders of SRC remembered that hold something now, are gone (a
    mount not undone), or that ``emptied`` names."""
    last, mine = _read(), _read(mine=True)
    root = os.path.abspath(src)
    held = list(held)
    points = mount_points() if mine else None
    again, forget = [], []
    for rel in folders:
        path = os.path.abspath(os.path.join(src, rel)) if rel else root
        rec = _find(last, path)
        if rec is None:
            continue
        if not rel or path in emptied:
            forget += _keys(path)   # (SRC's own: src_again's)
            continue
        point = _beneath(_find(mine, path), points)
        holds = any(h.startswith(rel + "/") for h in held)
        if holds and point is None:
            forget += _keys(path)
            continue
        again.append(Unread(rel, path, _errno(rec), True, not holds, point or ""))
    for u in again:
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
        point = _beneath(mine[p], points)
        below = below.replace(os.sep, "/")
        if point is None:
            if gone:
                forget.append(p)
        elif not (matches(below, exclude) or any(below == k or below.startswith(k + "/")
                                                 for k in kept)
                   or os.path.join(root, below) in emptied):
            kept.add(below)
            again.append(Unread(below, os.path.join(root, below), _errno(mine[p]), True,
                                False, point, gone))
    note = {k: u.errno for u in unread if u.folder and u.rel for k in _keys(u.path)}
    note.update({k: u.errno for u in again for k in _keys(u.path)})
    # The mount each was on: as the walk found it (a mount whose program ended is in the
    # table till it is undone), or for one kept again, as recorded (its path is the disk
    # beneath's now).
    fresh = [k for u in unread if u.folder and u.rel for k in _keys(u.path)]
    mounts = {k: mine[k]["mount"] for k in note if k in mine and "mount" in mine[k]}
    if fresh:
        points = points if points is not None else mount_points()
        mounts.update({k: m for k, m in _mounts(fresh, points).items()
                       if _beneath(mine.get(k), points) is None})
    everyone = [k for p in emptied for k in _keys(p) if k in last]
    if (any(p in mine for p in forget) or everyone or _pending()
            or any(_errno(mine.get(p)) != err or (mine.get(p) or {}).get("mount") != mounts.get(p)
                   for p, err in note.items())):
        _change(forget, note, everyone, mounts)
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
    got = rec.get("errno") if isinstance(rec, dict) else None
    return got if isinstance(got, int) and not isinstance(got, bool) else 0


@dataclass(frozen=True)
class Record:
    """One machine's record of a folder a push could not read (``drivestage unread list``)."""

    path: str
    host: str
    errno: int
    t: float   # when, in seconds since the epoch (0: unknown)
    #: The mount point it was on then ("" unknown), and whether that is mounted now (None:
    #: unknown, as for another machine's record).
    mount: str = ""
    mounted: Optional[bool] = None


def records() -> list[Record]:
    """Every machine's records in the state folder's memory, by path, this machine's first."""
    me, points = socket.gethostname(), mount_points()
    out = []
    for path, rec in sorted(_valid(_file().read(), str(_file().path))["folders"].items()):
        for host, r in sorted(_by_host(rec).items(),
                              key=lambda hr: (hr[0] not in ("", me), hr[0])):
            mine, mount = host in ("", me), r.get("mount")
            t = r.get("t")
            out.append(Record(path, host or me, _errno(r), t if isinstance(t, (int, float)) else 0,
                              mount if isinstance(mount, str) else "",
                              None if not (mine and isinstance(mount, str) and points is not None)
                              else mount in points))
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
