"""A merge's journal: the members it moves into DEST, named until the caller's stamp records
them, so that those a kill left in between count as recorded (see :mod:`.occupied`).

One file an extraction, in DEST's state folder: ``<archive key>.<tag>-<pid>.<random>.merging``
(the tag and pid as :mod:`drivestage.temps` makes them), written once under the merge lock
(:func:`note_merging`) and never rewritten, so a sweep that judged one removes exactly what
it judged. Each row is the record of a member as moved in (path, kind, size, mtime, inode).

A journal is trusted no further than it can be checked (a kill leaves one behind; another
process of this user may edit or plant one): :func:`merging` counts a row only when its path
is a plain relative path inside the folder (no ``..``, not absolute, no empty part) and DEST
still holds the very file the merge moved in there (its inode, size and mtime: a file put at
the path since, the user's, is not the member). A journal goes (:func:`settle`) once it is
provably done: its writer no longer under way (this process's own while it merges, another
live process's, one of another machine younger than a day: left alone) and each of its rows
unusable (such a path, or the file changed or gone: it can never count again) or vouched for
by a stamp's record of that very file. Journals left by kills so do not pile up: the next
pull of the archive, or any extraction into DEST, removes them.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
import threading
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

from drivestage import temps
from drivestage.extract.records import MemberRecord
from drivestage.extract.statedir import opened_state, read_own
from drivestage.fork_drop import free_in_forks
from drivestage.localfs import atomic_write_at

SUFFIX = ".merging"   # (not a stamp's ".json": never read as one)
#: A journal's row as this process wrote it (:meth:`MemberRecord.row`: its JSON, as a tuple).
Row = tuple[Any, ...]
_KEY = 16              # hex digits of the archive's key

#: The journals of merges under way in this process, by (DEST, name), each with its rows as
#: written: from :func:`note_merging` until the caller's :func:`release` (its stamp written, or
#: the extraction given up): never judged meanwhile.
_mine: dict[tuple[str, str], list[Row]] = {}
_mine_lock = free_in_forks(threading.Lock())


def key(archive: str) -> str:
    """The name every journal of ``archive`` starts with."""
    digest = hashlib.sha1(os.path.abspath(archive).encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:_KEY] + "."


def note_merging(dest: str, archive: str, records: Sequence[MemberRecord],
                 made: Sequence[MemberRecord] = ()) -> None:
    """Write the journal of the merge of ``archive`` about to move the members ``records``
    into ``dest`` (under the merge lock, once they passed :class:`~.occupied.Occupied`);
    ``made``: the records of the folders it may make (its temporary folder's, with their
    inodes: one DEST shows with that inode is one the merge moved in, :func:`made`)."""
    name = (f"{key(archive)}{temps.namespace_tag()}-{os.getpid()}."
            f"{secrets.token_hex(3)}{SUFFIX}")
    # Tuples, written as the same JSON arrays and kept as they are for settle(): one object
    # a row, not a list and its tuple copy (20,000 of each, a young collection's worth).
    rows = [r.row() for r in records if r.kind != "dir"]
    body: dict[str, Any] = {"members": rows}
    if made:
        body["made"] = [r.to_json() for r in made if r.kind == "dir"]
    with opened_state(dest, create=True) as fd:
        assert fd is not None
        with _mine_lock:
            _mine[(os.path.abspath(dest), name)] = rows
        atomic_write_at(fd, name, json.dumps(body).encode())


def made(dest: str, archive: str, names: Optional[Sequence[str]] = None
         ) -> list[MemberRecord]:
    """The folders killed merges of ``archive`` made in ``dest`` (their journals' ``made``
    rows whose folder DEST still holds, that very one: its inode), which no stamp records
    yet: the rerun's merge finds them there and makes none of them. Asked before this
    process's own merge of it (whose journal is not a kill's). ``names``: the state folder
    as a folder pull listed it at its start (a kill's journal is older), else listed."""
    prefix = key(archive)
    out: list[MemberRecord] = []
    with opened_state(dest, create=False) as fd:
        if fd is None:
            return []
        for name in _journals(os.listdir(fd) if names is None else names):
            if name.startswith(prefix) and _writer_gone(dest, fd, name):
                out += [r for r in _rows(fd, name, "made") if _live(dest, r)]
    return out


def release(dest: str, archive: str) -> dict[str, list[Row]]:
    """The merges of ``archive`` into ``dest`` in this process are over (its stamp written,
    or the extraction given up: a journal left then is judged as a kill's). Returns their
    journals' rows as written, by name (for :func:`settle`'s ``own``)."""
    here, prefix = os.path.abspath(dest), key(archive)
    with _mine_lock:
        ended = [m for m in _mine if m[0] == here and m[1].startswith(prefix)]
        return {name: _mine.pop((where, name)) for where, name in ended}


def merging(state_fd: int, folder: str) -> list[str]:
    """The paths the journals in ``folder``'s state folder (``state_fd``) name that count as
    recorded: valid rows whose file ``folder`` still holds as it was moved in."""
    out: list[str] = []
    for name in _journals(os.listdir(state_fd)):
        out += [r.path for r in _rows(state_fd, name) if _live(folder, r)]
    return out


def journaled(folder: str) -> Callable[[Mapping[str, Any]], list[MemberRecord]]:
    """``of(stamp)``: the files the killed merges of ``stamp``'s archive (``folder/<its
    file>``) moved into ``folder`` that are still there as moved in (the rows
    :func:`merging` counts): what that archive wrote there as much as its stamp's records.
    A folder pull killed after the later archive's merge of a shared path, before its stamp:
    the rerun's earlier archive took the path for nobody's and wrote it back (attackpull35).
    The state folder is listed once (a folder pull of many archives asks for each)."""
    with opened_state(folder, create=False) as fd:
        names = _journals(os.listdir(fd)) if fd is not None else []

    def of(stamp: Mapping[str, Any]) -> list[MemberRecord]:
        name = stamp.get("file")
        if not names or not isinstance(name, str) or not name or "/" in name:
            return []
        prefix = key(os.path.join(folder, name))
        mine = [n for n in names if n.startswith(prefix)]
        if not mine:
            return []
        with opened_state(folder, create=False) as fd:
            if fd is None:
                return []
            return [r for n in mine for r in _rows(fd, n) if _live(folder, r)]
    return of


def settle(dest: str, vouched: Callable[[], Iterable[Row]],
           archive: Optional[str] = None, names: Optional[Sequence[str]] = None,
           own: Mapping[str, Sequence[Row]] = {}) -> int:
    """Remove the journals of ``archive`` (every journal, without it) in ``dest``'s state
    folder that are provably done (see the module; ``vouched``: the records of ``dest``'s
    stamps as rows, ``tuple(record.to_json())``, asked only when a journal needs them).
    ``names``: the state folder as listed already (a folder pull's,
    :func:`drivestage.partials.listing`). ``own``: this process's
    journals, released, with their rows as written (:func:`release`): one whose every row
    is vouched for goes without being read back (its rows as they are on disk, those of them
    still live, are fewer or the same: a pull of 20,000 members read, parsed and looked at
    each again, a fifth of a second of CPU). Returns how many went."""
    prefix = key(archive) if archive is not None else ""
    gone = 0
    with opened_state(dest, create=False) as fd:
        if fd is None:
            return 0
        listed = names if names is not None else os.listdir(fd)
        found = [n for n in _journals(listed)
                 if n.startswith(prefix) and _writer_gone(dest, fd, n)]
        if not found:
            return 0
        stamped = set(vouched())
        for name in found:
            written = own.get(name)
            if written is not None and all(row in stamped for row in written):
                done = True
            else:
                rows = [r for r in _rows(fd, name) if _live(dest, r)]
                done = all(tuple(r.to_json()) in stamped for r in rows)
            if done:
                try:
                    os.unlink(name, dir_fd=fd)
                    gone += 1
                except FileNotFoundError:
                    pass
    return gone


def _journals(names: Iterable[str]) -> list[str]:
    return [n for n in names if n.endswith(SUFFIX)]


def _rows(state_fd: int, name: str, field: str = "members") -> list[MemberRecord]:
    """The valid rows of a journal (none of one that is not this user's regular file, or of
    another form: an older build's list of paths, an edit by hand); ``field``: its members'
    (files and links), or the folders it may make (``made``)."""
    raw = read_own(state_fd, name)
    try:
        found = json.loads(raw) if raw else None
    except (ValueError, RecursionError):   # (nested too deep: was a traceback, mount52)
        return []
    rows = found.get(field) if isinstance(found, dict) else None
    kinds = ("dir",) if field == "made" else ("file", "symlink")
    out: list[MemberRecord] = []
    for row in rows if isinstance(rows, list) else []:
        try:
            rec = MemberRecord.from_json(row)
        except (TypeError, ValueError):
            continue
        if rec.kind in kinds and _inside(rec.path):
            out.append(rec)
    return out


def _inside(path: str) -> bool:
    """Whether ``path`` is a member path as extractions write them: relative, "/"-separated,
    without an empty, ``.`` or ``..`` part (nothing that leads out of the folder)."""
    parts = path.split("/")
    return bool(path) and "\0" not in path and "\\" not in path and \
        all(p not in ("", ".", "..") for p in parts)


def _live(folder: str, rec: MemberRecord) -> bool:
    """Whether ``folder`` holds at ``rec.path`` the very file, link or folder (its inode)
    the merge moved in."""
    where = os.path.join(folder, *rec.path.split("/"))
    try:
        st = os.lstat(where)
        link = os.readlink(where) if stat.S_ISLNK(st.st_mode) else None
    except OSError:
        return False
    if rec.kind == "dir":
        return stat.S_ISDIR(st.st_mode) and st.st_ino == rec.ino
    return rec.matches(st, link)


def _writer_gone(dest: str, state_fd: int, name: str) -> bool:
    """Whether the process that wrote the journal ``name`` is no longer merging: this one's
    own once released (or never noted: an older run's with a reused pid), another's once
    it is gone (as :func:`drivestage.temps.stale` judges a temporary file)."""
    with _mine_lock:
        if (os.path.abspath(dest), name) in _mine:
            return False
    middle = name[_KEY + 1:-len(SUFFIX)]   # "<tag>-<pid>.<random>"
    made = temps.parse(f".x.{middle}.tmp")
    if made is None:
        return True   # (not of the form this module writes: nothing to wait for)
    if made == (temps.namespace_tag(), os.getpid()):
        return True
    try:
        st = os.lstat(name, dir_fd=state_fd)
    except OSError:
        return False
    return temps.stale(f".x.{middle}.tmp", st)
