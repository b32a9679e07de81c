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
PATH``). A memory that cannot be read (damaged, another version's) is said and taken as none
(push as before it existed); one that cannot be written (a full or read-only disk) is said
and held in this process only: push works either way.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import time
from typing import Any, Collection, Iterable, Mapping

from drivestage.errors import DriveStageError, LocalFileError
from drivestage.state import JsonFile, state_dir
from drivestage.unread import Unread, src_unread as _src_failure, src_refused

log = logging.getLogger("drivestage.upload_tree")   # (push's lines' name)

#: The file's name in the state folder, and the shape this code writes: ``{"version": 1,
#: "folders": {PATH: {HOST: {"errno": N, "t": T}}}}`` (PATH: a folder's absolute local path,
#: SRC's or one in it; HOST: the machine that could not read it; N: why; T: when, in seconds
#: since the epoch). By machine: the state folder is in the home folder, which two machines
#: may share (NFS), and a mount is one machine's: another machine's PATH holding something,
#: or missing there, says nothing of this one's (attackint49). A record of an earlier build
#: (``{"errno", "t"}``, no machine) counts as this machine's.
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
            everyone: Collection[str] = ()) -> None:
    """Forget this machine's records of the folders ``forget``, every machine's of those of
    ``everyone`` (``--emptied``: the user's word), and note those of ``note`` (path -> errno)
    as this machine's, in the file (a locked read-modify-write: two pushes at once each keep
    the other's) or, where it cannot be written, in this process (said: the next process
    does not know them)."""
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


def src_unread(src: str, err: int) -> LocalFileError:
    """The failure of a push whose SRC could not be stat'ed or listed (``err``), remembered:
    a later push of any process that reads it as empty is refused (:func:`src_again`)."""
    _change((), dict.fromkeys(_keys(src), err))
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
    forget that once it holds something, or ``emptied`` names it (``--emptied``)."""
    key = os.path.abspath(src)
    rec = _find(_read(), key)
    if rec is None:
        return
    if empty and key not in emptied:
        raise src_refused(src, _errno(rec))
    _change(_keys(key), {}, _keys(key) if key in emptied else ())


def empty_again(folders: list[str], made: list[str], held: Iterable[str],
                unread: Iterable[Unread], src: str, emptied: Collection[str] = ()
                ) -> list[Unread]:
    """The ``folders`` (a walk's of ``src``) that a push could not read and that hold nothing
    now (none of the walk's paths, ``held``, below them), unless ``emptied`` names them, as
    :class:`Unread` (``empty``), taken out of ``folders`` and ``made`` (not made on the
    store, as the walk's own unread folders). Remembered: these and the walk's ``unread``
    folders; forgotten: the folders of SRC remembered that hold something now, are gone, or
    that ``emptied`` names."""
    last, mine = _read(), _read(mine=True)
    root = os.path.abspath(src)
    held = list(held)
    again, forget = [], []
    for rel in folders:
        path = os.path.abspath(os.path.join(src, rel)) if rel else root
        rec = _find(last, path)
        if rec is None:
            continue
        if not rel or path in emptied or any(h.startswith(rel + "/") for h in held):
            forget += _keys(path)   # (SRC's own: src_again's)
            continue
        again.append(Unread(rel, path, _errno(rec), True, True))
    for u in again:
        folders.remove(u.rel)
        if u.rel in made:
            made.remove(u.rel)
    # A folder remembered below SRC that the walk did not find: gone (forgotten) or left out
    # by the filters, or below a folder not read (kept).
    forget += [p for p in mine if any(p.startswith(r + os.sep) for r in _keys(root))
               and p not in forget and _gone(p)]
    note = {k: u.errno for u in unread if u.folder and u.rel for k in _keys(u.path)}
    note.update({k: u.errno for u in again for k in _keys(u.path)})
    everyone = [k for p in emptied for k in _keys(p) if k in last]
    if (any(p in mine for p in forget) or everyone or _pending()
            or any(_errno(mine.get(p)) != err for p, err in note.items())):
        _change(forget, note, everyone)
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


def _errno(rec: Any) -> int:
    got = rec.get("errno") if isinstance(rec, dict) else None
    return got if isinstance(got, int) and not isinstance(got, bool) else 0
