"""Stamps: what ``pull`` staged into a DEST, one per remote file.

A stamp lives in ``DEST/.drivestage/`` (a name no archive member and no remote item may take,
see :func:`drivestage.extract.validation.is_reserved`), keyed by the remote file's identity:
``<local name>@<hash of the remote id>.json``. So ``one/data.zip`` and ``two/data.zip``
pulled into one DEST keep two stamps, each with its own members, and neither pull touches
the other's. A stamp records the remote file (id, md5, size), the local copy (size, mtime),
whether its extraction is in place, the records of the members that extraction wrote
(:class:`~drivestage.extract.MemberRecord`), and ``stale``: members of older versions still
to be removed once a newer extraction is in place. It is written atomically.

Whoever can write DEST can put a link or a folder of theirs at ``.drivestage``, and a forged
stamp's records (anyone can read them off the user's files with ``stat``) would make an
update remove the user's files. So every stamp is read, written, listed and removed through
the state folder's descriptor, checked to be this user's real folder
(:mod:`drivestage.extract.statedir`; anything else stops the pull with one line), and a
stamp is read only from this user's regular file there: a link or someone else's file at a
stamp's name is ignored, never followed.

Stamps written by drivestage 0.1.0 (``<name>.json``, version 1, members as ``[path, size]``)
are still read: an intact copy stays a cache hit, but their members are never removed (no
record proves that a path is still what that extraction wrote).
"""
from __future__ import annotations

import bisect
import json
import logging
import os
import stat
from typing import Any, Callable, Collection, Iterable, Iterator, Mapping, Optional, Sequence

from drivestage import partials, stamp_cache
from drivestage.errors import DriveStageError
from drivestage.extract import MemberRecord
from drivestage.extract.members import ancestors
from drivestage.extract.journals import journaled, merging
from drivestage.member_reach import read_from
from drivestage.extract.statedir import opened_state
from drivestage.extract.validation import STATE_DIR
from drivestage.localfs import atomic_write_at
# (Moved to stamp_files, stampcache36; read here as before.)
from drivestage.stamp_files import others
from drivestage.stamp_files import LEGACY_VERSION as LEGACY_VERSION, VERSION as VERSION, \
    Stamp as Stamp, _all as _all, _base as _base, _file_of as _file_of, _read as _read, \
    _rows as _rows, _state as _state, _version as _version, damaged_row as damaged_row, \
    path_of as path_of, \
    record_rows as record_rows, records as records, unrecorded as unrecorded
# (Moved to mtimes, mount31; read here as before.)
from drivestage.mtimes import _lstat as _lstat, _readlink as _readlink, \
    in_real_place as in_real_place, not_in_place as not_in_place, shows as shows

log = logging.getLogger(__name__)


def of(dest: str, name: str, *, listed: bool = False) -> list[Stamp]:
    """Every stamp of a remote file staged as ``dest/<name>`` (several remote files may have
    been staged under one local name), 0.1.0 stamps included. ``listed``: the stamps are
    those of the state folder as a folder pull listed it at its start
    (:func:`drivestage.partials.listed_once`; one listing, not one per file), when it did
    (the caller says when a stamp written since cannot matter), each read as it is now."""
    prefix = _base(name) + "@"
    found = []
    with _state(dest) as fd:
        if fd is None:
            return []
        names = partials.listing(os.path.join(os.path.abspath(dest), STATE_DIR)) \
            if listed else None
        for entry in sorted(os.listdir(fd)) if names is None else names:
            if entry.startswith(prefix) and entry.endswith(".json"):
                stamp = _read(dest, fd, entry)
                if stamp is not None and stamp.get("version") == VERSION and \
                        stamp.get("file") == name:
                    found.append(dict(stamp))   # (a copy: the caller's to change)
        legacy = _read(dest, fd, name + ".json")
    if legacy is not None and legacy.get("version") == LEGACY_VERSION:
        found.append(dict(legacy))
    return found


def own(dest: str, name: str, file_id: str) -> Optional[Stamp]:
    """The stamp of the remote file ``file_id`` staged as ``dest/<name>``, or None: one file
    read, not a listing (:func:`of` lists the state folder, which holds a stamp per file: a
    folder pull of n files that listed it for each one took time in n²)."""
    with _state(dest) as fd:
        if fd is None:
            return None
        stamp = _read(dest, fd, _file_of(name, file_id))
    if stamp is None or stamp.get("version") != VERSION or stamp.get("file") != name or \
            stamp.get("id") != file_id:
        return None
    return dict(stamp)   # (a copy: the caller's to change; the cache's stays as read)


def written_since(stamp: Stamp, since_ns: Optional[int]) -> bool:
    """Whether ``stamp``'s file was written at or after ``since_ns`` (``time.time_ns()``; a
    second's slack for file systems' coarse clocks): by another pull, then, which may have
    seen a newer version on Drive than a folder pull's walk did. False when ``since_ns`` is
    None."""
    path = stamp.get("_path")
    if since_ns is None or not isinstance(path, str):
        return False
    try:
        return os.lstat(path).st_mtime_ns >= since_ns - 1_000_000_000
    except OSError:
        return False


def members_of_others(dest: str, *mine: Stamp) -> set[str]:
    """The member paths the stamps in ``dest`` other than ``mine`` list (their archives wrote
    there too): an update of one archive never removes what another one's stamp stands
    for."""
    paths = {s.get("_path") for s in mine}
    out: set[str] = set()
    for _entry, other in _all(dest):
        if other.get("_path") in paths:
            continue
        if other.get("version") == VERSION:
            out.update(m.path for m in records(other))
        else:
            out.update(str(row[0]) for row in other.get("members") or []
                       if isinstance(row, list) and row)
    return out


def recorded(dest: str, paths: Collection[str]) -> set[str]:
    """Of the member paths ``paths`` (relative to ``dest``), those a stamp lists (a member,
    a stale one, one a 0.1.0 stamp names) of an archive extracted into ``dest``, into a
    folder above it (``VOC.zip`` into ``data``, then ``fixes.zip`` into
    ``data/VOCdevkit/VOC2007``) or into one of its folders on the way to the path. What else
    DEST holds at a member's path no extraction put there: the user's, which an extraction
    never replaces unasked (:mod:`drivestage.extract.occupied`). So too the files a merge a
    kill cut off before its stamp moved in, while there (:func:`~drivestage.extract.journals.
    merging`)."""
    here, want = os.path.abspath(dest), set(paths)
    folders, up = {here}, here
    while os.path.dirname(up) != up:
        up = os.path.dirname(up)
        folders.add(up)
    folders.update(os.path.join(here, *p.split("/")) for p in ancestors(want))
    out: set[str] = set()
    for folder in sorted(folders):
        moved = read_from(here, folder)
        if moved is None:
            continue
        try:
            # The journals first: a pull writes its stamp, then removes its journal; read
            # the other way round, one finishing in between was in neither (attackclob32).
            with _state(folder) as fd:
                found = [merging(fd, folder)] if fd is not None else []
            found += [_paths(s) for _e, s in _all(folder)]
        except (DriveStageError, OSError):
            continue   # (a state folder that is not this user's, or unreadable: not read)
        for listed in found:
            out.update(p for p in map(moved, listed) if p in want)
    return out


def _paths(stamp: Stamp) -> list[str]:
    """Every member path ``stamp`` lists: its members, stale ones, those it carried over."""
    out = [m.path for key in ("members", "stale") for m in records(stamp, key)]
    out += [str(p) for p in _rows(stamp, "unrecorded")]
    if stamp.get("version") == LEGACY_VERSION:
        out += [str(row[0]) for row in _rows(stamp, "members") if isinstance(row, list) and row]
    return out


def staged_files(dest: str) -> set[str]:
    """The local files that the stamps in ``dest`` stand for (downloads from Drive, which no
    archive member may replace)."""
    out: set[str] = set()
    for entry, stamp in _all(dest):
        name = stamp.get("file") if stamp.get("version") == VERSION else entry[:-len(".json")]
        if isinstance(name, str) and name and "/" not in name and name not in (".", ".."):
            out.add(os.path.join(dest, name))
    return out


def kept_archives(dest: str) -> list[str]:
    """The archives in ``dest`` that ``pull -x`` downloaded, extracted and kept (no
    ``--remove-archive``): the regular files a rerun with that flag would remove, sorted."""
    out: list[str] = []
    for _entry, stamp in _all(dest):
        name = stamp.get("file")
        if stamp.get("version") != VERSION or not stamp.get("extracted") or \
                stamp.get("removed") is True or not isinstance(name, str) or \
                not name or "/" in name or name in (".", ".."):
            continue
        st = _lstat(dest, name)
        if st is not None and stat.S_ISREG(st.st_mode):
            out.append(os.path.join(dest, name))
    return sorted(out)


def every(dest: str) -> list[Stamp]:
    """Every readable stamp in ``dest``'s state folder (copies: the caller's to change)."""
    return [dict(stamp) for _, stamp in _all(dest)]


def find(dest: str, name: str, src: str) -> Optional[Stamp]:
    """The stamp of an earlier pull of ``src`` into ``dest/<name>``, or None."""
    for stamp in of(dest, name):
        if stamp.get("src") == src:
            return stamp
    return None


def new(*, src: str, file_id: str, name: str, remote_name: str, parent_id: Optional[str],
        md5: Optional[str], size: int, mtime_ns: int,
        stale: Sequence[MemberRecord] = (), previous: Sequence[Stamp] = ()) -> Stamp:
    """A stamp for a downloaded (not yet extracted) copy; ``previous``: the stamps of the
    earlier versions it replaces, whose ``made`` folders it carries (:func:`made_by`)."""
    stamp = {"version": VERSION, "src": src, "id": file_id, "name": remote_name,
             "file": name, "parent_id": parent_id, "md5": md5, "size": size,
             "mtime_ns": mtime_ns, "extracted": False, "members": [],
             "stale": [m.to_json() for m in stale]}
    made = made_by(previous)
    if made:
        stamp["made"] = [m.to_json() for m in made]
    return stamp


def made_by(found: Sequence[Stamp]) -> list[MemberRecord]:
    """The folders the extractions of ``found`` made that their archives do not list (each
    once: :attr:`drivestage.extract.ExtractResult.made`). A new version carries them: those
    only its dropped members filled go once empty (stampcache36's report: they stayed)."""
    out = {(m.path, m.ino): m for s in found for m in records(s, "made") if m.kind == "dir"}
    return list(out.values())


def write(dest: str, stamp: Stamp) -> None:
    """Write ``stamp`` (atomically) where its remote id says, through the state folder's
    checked descriptor (made when there is none)."""
    entry = _file_of(stamp["file"], stamp["id"])
    body = {k: v for k, v in stamp.items() if not k.startswith("_")}
    with opened_state(dest, create=True) as fd:
        assert fd is not None
        atomic_write_at(fd, entry, json.dumps(body, separators=(",", ":")).encode())
    stamp["_path"] = os.path.join(dest, STATE_DIR, entry)


def drop(stamp: Stamp) -> None:
    """Remove a stamp's file (through the state folder's checked descriptor)."""
    path = stamp.get("_path")
    if not isinstance(path, str):
        return
    folder, entry = os.path.split(path)
    with _state(os.path.dirname(folder)) as fd:
        if fd is None:
            return
        try:
            os.unlink(entry, dir_fd=fd)
        except FileNotFoundError:
            pass


@stamp_cache.one_use   # (each state folder listed once for the whole question)
def missing_member(dest: str, stamp: Stamp, current: Optional[Listed] = None
                   ) -> Optional[str]:
    """The first member of ``stamp``'s extraction that is not in place (absent, another kind,
    another size), or a damaged row of it (:func:`damaged_row`), or None when all are; ""
    when the stamp has no extraction. ``current``: as for :func:`siblings_wrote`."""
    if not stamp.get("extracted"):
        return ""
    if stamp.get("version") == VERSION:
        rows = records(stamp)   # (parsed once: outside a folder pull's cache, every call)
        damaged = damaged_row(stamp, rows)
        if damaged is not None:
            return damaged
        left = left_over(dest, stamp, current)
        if left:
            return left[0]
        shown = stamp.get("_shown_ns")
        looked: dict[str, os.stat_result] = {}   # (one look a member, for both)
        missing = not_in_place(dest, rows, shown=shown, looked=looked)
        if missing is None:
            return taken(dest, stamp, current, looked)
        return not_in_place(dest, rows, siblings_wrote(dest, stamp, current), shown)
    for row in stamp.get("members") or []:  # 0.1.0: [path, size of a file or -1]
        try:
            rel, size = str(row[0]), int(row[1])
        except (TypeError, ValueError, IndexError):
            return str(row)
        st = _lstat(dest, rel)
        if st is None or (size >= 0 and (not stat.S_ISREG(st.st_mode) or st.st_size != size)):
            return rel
    return None


def left_paths(stamp: Stamp) -> list[str]:
    """The member paths ``stamp``'s extraction left to archives pulled after it."""
    return [str(p) for p in _rows(stamp, "left")]


def left_over(dest: str, stamp: Stamp, current: Optional[Listed] = None) -> list[str]:
    """The member paths ``stamp``'s extraction left to an archive pulled after it
    (:mod:`drivestage.extract.occupied`) that no such archive of ``current`` records: the
    user's file there is still to be judged (every one, without a folder pull's listing)."""
    left = left_paths(stamp)
    wrote = siblings_wrote(dest, stamp, current) if left else {}
    return [p for p in left if p not in wrote]


def taken(dest: str, stamp: Stamp, current: Optional[Listed] = None,
          looked: Mapping[str, os.stat_result] = {}) -> Optional[str]:
    """The first file or link member of ``stamp`` that is not what its extraction wrote but
    exactly what another archive's stamp in ``dest`` recorded (a member or a stale one) and
    that archive does not stand for the path now (:func:`siblings_wrote`). Of the same
    size, it passed for in place: b.zip updated on Drive without ``ds/x`` left its old
    ``ds/x``, and a.zip was "already staged" over bytes no archive on Drive holds (attacky27).
    Only a member changed since its extraction costs a look at the other stamps
    (``looked``: the members' lstats by path, as just taken: not taken again)."""
    changed: list[tuple[MemberRecord, os.stat_result, Optional[str]]] = []
    for m in records(stamp):
        st = (looked[m.path] if m.path in looked else _lstat(dest, m.path)) \
            if m.kind != "dir" else None
        link = _readlink(dest, m.path) if st is not None and stat.S_ISLNK(st.st_mode) else None
        if st is not None and not m.matches(st, link):
            changed.append((m, st, link))
    if not changed:
        return None
    # (Every stamp's records by path, made once while the state folder is unchanged.)
    foreign = _Held(stamp_cache.derived(("taken", os.path.abspath(dest)), [_version(dest)],
                                        lambda: (_recorded_by(dest), True)), stamp)
    standing = siblings_wrote(dest, stamp, current) \
        if any(m.path in foreign for m, _st, _link in changed) else {}
    for m, st, link in changed:
        if any(o.matches(st, link) for o in foreign.get(m.path, ())) and \
                not any(o.matches(st, link) for o in standing.get(m.path, ())):
            return m.path
    return None


class Listed(dict[str, Optional[str]]):
    """The files a folder pull listed: id -> md5 (None when the listing had none),
    ``folders``: id -> the local folder the pull stages it into, and ``ranks``: id -> its
    place in the order the pull stages (and merges) them."""

    def __init__(self, md5s: Mapping[str, Optional[str]], folders: Mapping[str, str],
                 ranks: Mapping[str, int] = {}):
        super().__init__(md5s)
        self.folders = {k: os.path.abspath(v) for k, v in folders.items()}
        self.ranks = dict(ranks)

    def before(self, one: object, other: object) -> bool:
        """Whether the file ``one`` comes before ``other`` in the pull's order (False when
        either has no place in it)."""
        first, second = self.ranks.get(str(one)), self.ranks.get(str(other))
        return first is not None and second is not None and first < second


def siblings_wrote(dest: str, stamp: Stamp, current: Optional[Listed] = None
                   ) -> Mapping[str, list[MemberRecord]]:
    """The member records, by path in ``dest``, of the other archives of the same folder
    pull extracted there (a folder pull of a.zip and b.zip that share a path, or of
    ``a.zip`` holding ``sub/x`` and ``sub/b.zip`` holding ``x``): the one merged last holds
    it. Judged by their own records alone, each rerun extracted one of them again and the
    shared path's bytes went back and forth for good (attackpull26; pullorder27 for
    archives in nested folders). A later archive's merge that a kill cut off before its
    stamp (which says "downloaded" then) counts with the files it moved in and DEST still
    holds as moved in
    (:func:`~drivestage.extract.journals.journaled`): judged by the stamp alone, the
    rerun's earlier archive wrote the shared path back and the later one, which had judged
    it in place before its turn, failed "… changed while … was extracted" (attackpull35).

    ``current``: the files a folder pull listed: only a stamp of one of them, of the
    version listed, in the folder the pull stages it into, and not before ``stamp``'s in the
    pull's order (the later one holds a shared path: a repair of the earlier one that wrote
    the path is no reason for the later one to leave it so), counts. A sibling deleted from
    Drive (its stamp stays in DEST) or updated to a version without the path kept the
    path's bytes, which no archive on Drive held, "already staged" (attackz26). Without a
    folder pull's listing none counts: a pull of one archive (`pull drive:src/a.zip DEST
    -x`) puts its own members back, as it always did (tests/test_attack15_extract.py)."""
    if current is None:
        return {}
    here = os.path.abspath(dest)
    folders = sorted({here, *current.folders.values()})
    basis = [current, *folders, *map(_version, folders)]   # (a new listing: a new table)
    return _Held(stamp_cache.derived(("siblings", here), basis,
                                     lambda: _held_by(here, folders, current)),
                 stamp, current)


def held_later(dest: str, current: Listed) -> Callable[[str, Collection[str]], set[str]]:
    """``held(file_id, paths)``: of the member paths ``paths`` of the archive ``file_id``
    of a folder pull (``current``), extracted into ``dest``, those another archive after it
    in the pull's order holds, by :func:`siblings_wrote`'s table as the stamps are now, kept
    for the pull (what the later ones held before it: one that overlaps merges only after
    the archive asking). Made once per folder, not once per archive: 120 archives sharing a
    path, each asking, rebuilt the table each time (every stamp written changes it)."""
    here = os.path.abspath(dest)
    index, _steady = _held_by(here, sorted({here, *current.folders.values()}), current)

    def held(file_id: str, paths: Collection[str]) -> set[str]:
        if not index:
            return set()
        theirs = _Held(index, {"id": file_id}, current)
        return {p for p in paths if p in theirs}
    return held


#: What stamps record, by path: (rank in the pull, stamp file, id, record) rows, the latest
#: in the pull's order first.
_Index = dict[str, list[tuple[Optional[int], Any, Any, MemberRecord]]]


def _held_by(here: str, folders: list[str], current: Listed) -> tuple[_Index, bool]:
    """:func:`siblings_wrote`'s table for every archive of ``current`` at once (and whether
    it may be kept: not when a killed merge's journal counted, whose files may change)."""
    out: _Index = {}
    steady = True
    for folder in folders:
        into = read_from(here, folder)
        if into is None:
            continue
        journaled_by = journaled(folder)
        for _entry, other in _all(folder):
            if other.get("version") != VERSION or not _is_current(other, current) \
                    or current.folders.get(other["id"]) != folder:
                continue
            # Its records once extracted, and what a merge of it that a kill cut off before
            # its stamp moved in (its stamp then says "downloaded", not extracted).
            mine = records(other) if other.get("extracted") else []
            killed = journaled_by(other)
            steady = steady and not killed
            held = [(rel, m) for m in mine + killed if (rel := into(m.path)) is not None]
            row = (current.ranks.get(other["id"]), other.get("_path"), other["id"])
            for rel, m in held:
                out.setdefault(rel, []).append((*row, m))
            # A folder above its members is the later one's too, listed or not: an earlier
            # archive's file there was replaced by it, and judged missing, every rerun
            # extracted it again and failed ("… is a file, but … is a folder": attacky27).
            for rel in ancestors(rel for rel, _m in held):
                out.setdefault(rel, []).append((*row, MemberRecord(rel, "dir")))
    for rows in out.values():   # (the latest first: the one that holds a path)
        rows.sort(key=lambda r: -1 if r[0] is None else r[0], reverse=True)
    return out, steady


def _recorded_by(dest: str) -> _Index:
    """:func:`taken`'s table: every stamp's members and stale ones in ``dest``, by path."""
    out: _Index = {}
    for _entry, other in _all(dest):
        for o in records(other) + records(other, "stale"):
            out.setdefault(o.path, []).append((None, other.get("_path"), other.get("id"), o))
    for rows in out.values():   # (the last by name first: most often what a path holds)
        rows.reverse()
    return out


class _Held(Mapping[str, list[MemberRecord]]):
    """A table's records by path, of stamps other than ``stamp`` and, with ``current``,
    not before it in the pull's order (:func:`siblings_wrote`)."""

    def __init__(self, index: _Index, stamp: Stamp, current: Optional[Listed] = None):
        self._index, self._path, self._id = index, stamp.get("_path"), stamp.get("id")
        self._rank = current.ranks.get(str(self._id)) if current is not None else None

    def __getitem__(self, rel: str) -> list[MemberRecord]:
        rows, end = self._index.get(rel) or [], None
        if self._rank is not None and rows and rows[-1][0] is not None:
            # (Ranked the latest first: those not before this one lead; 500 archives that
            # share a path, each asking, cost 125,000 looks at the others without this.)
            end = bisect.bisect_right(rows, -self._rank, key=lambda r: -(r[0] or 0))
        out = others(rows, end, self._path, self._id, self._rank)   # (copied in slices)
        if not out:
            raise KeyError(rel)
        return out

    def __iter__(self) -> Iterator[str]:
        return (rel for rel in self._index if rel in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __bool__(self) -> bool:   # (``siblings or {}``: not a look at every path)
        return bool(self._index)


def _is_current(stamp: Stamp, current: Optional[Mapping[str, Optional[str]]]) -> bool:
    """Whether ``stamp`` is of a file ``current`` lists, as listed (none, without a list)."""
    if current is None:
        return False
    file_id = stamp.get("id")
    if not isinstance(file_id, str) or file_id not in current:
        return False
    return current[file_id] is None or current[file_id] == stamp.get("md5")


def replaceable(dest: str, previous: list[Stamp]) -> list[MemberRecord]:
    """What the earlier versions of an archive (their stamps ``previous``) wrote into
    ``dest`` and no other stamp stands for: a folder of those alone may give way to a member
    that is a file now (see :class:`drivestage.extract.job.Job`)."""
    stale = [m for s in previous for key in ("members", "stale") for m in records(s, key)]
    others = members_of_others(dest, *previous) if stale else set()
    return [m for m in stale if m.path not in others]
