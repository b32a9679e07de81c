"""Stamp files in a DEST's state folder: their names, reading them (through a folder pull's
cache, :mod:`drivestage.stamp_cache`), listing them, and their member records. Split from
:mod:`drivestage.stamps` (near its 500-line cap), which says what a stamp holds and why
each is read only through the state folder's checked descriptor."""
from __future__ import annotations

import hashlib
import json
import logging
import os
from contextlib import contextmanager
from typing import Any, Iterator, Optional, Sequence

from drivestage import stamp_cache
from drivestage.extract import MemberRecord
from drivestage.extract.statedir import opened_state
from drivestage.extract.validation import STATE_DIR
from drivestage.localfs import fitted_name

log = logging.getLogger("drivestage.stamps")

VERSION = 2
LEGACY_VERSION = 1
#: Stamps are plain dicts (``decide`` reads a few keys; JSON both ways).
Stamp = dict[str, Any]
_NAME_BYTES = 150      # longer local names are hashed in the stamp's file name


def _base(name: str) -> str:
    return fitted_name(name, _NAME_BYTES)


def path_of(dest: str, name: str, file_id: str) -> str:
    """The stamp file of the remote file ``file_id`` staged as ``dest/<name>``."""
    return os.path.join(dest, STATE_DIR, _file_of(name, file_id))


def _file_of(name: str, file_id: str) -> str:
    key = hashlib.sha1(file_id.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"{_base(name)}@{key}.json"


@contextmanager
def _state(dest: str) -> Iterator[Optional[int]]:
    """The checked descriptor of ``dest``'s state folder (None: there is none yet)."""
    with opened_state(dest, create=False) as fd:
        yield fd


def _all(dest: str) -> Iterator[tuple[str, Stamp]]:
    """``(file name, stamp)`` for every readable stamp in ``dest``'s state folder. Within a
    folder pull's cache (:mod:`drivestage.stamp_cache`) the stamps are the cache's own,
    shared: read them, never change them (:func:`drivestage.stamps.every` copies)."""
    with _state(dest) as fd:
        if fd is None:
            return
        cached = stamp_cache.listing(fd, _parser(dest))
        if cached is not None:
            yield from cached[1]
            return
        for entry in os.listdir(fd):
            stamp = _read(dest, fd, entry) if entry.endswith(".json") else None
            if stamp is not None:
                yield entry, stamp


def _version(dest: str) -> Optional[int]:
    """The version of ``dest``'s state folder as the pull's cache last listed it (None:
    no cache, or no state folder): changed whenever a stamp may have."""
    with _state(dest) as fd:
        cached = stamp_cache.listing(fd, _parser(dest)) if fd is not None else None
    return cached[0] if cached is not None else None


def _read(dest: str, state_fd: int, entry: str) -> Optional[Stamp]:
    """The stamp in the file ``entry``; None unless it is this user's regular file (a link
    or someone else's file there is never followed nor trusted: its records would decide
    what an update removes) holding a stamp. (The cache's own, within a folder pull's: see
    :func:`_all`.)"""
    stamp = stamp_cache.read(state_fd, entry, _parser(dest))
    if stamp is None and _exists(state_fd, entry):
        log.debug("%s is not a stamp of this user's (a link, another user's file, "
                  "unreadable, no stamp): ignored", os.path.join(dest, STATE_DIR, entry))
    return stamp


def _parser(dest: str) -> stamp_cache.Parse:
    def parse(entry: str, raw: bytes, st: os.stat_result) -> Optional[Stamp]:
        try:
            stamp = json.loads(raw)
        except (ValueError, RecursionError):   # (nested too deep: was a traceback, mount52)
            return None
        if not isinstance(stamp, dict) or stamp.get("version") not in (VERSION,
                                                                        LEGACY_VERSION):
            return None
        if not isinstance(stamp.get("id"), str) or \
                not isinstance(stamp.get("members", []), list):
            return None
        stamp["_path"] = os.path.join(dest, STATE_DIR, entry)
        # What granularity DEST's file system shows its files at now (mtimes.same_mtime).
        stamp["_shown_ns"] = st.st_mtime_ns
        return stamp
    return parse


def _exists(state_fd: int, entry: str) -> bool:
    try:
        os.stat(entry, dir_fd=state_fd, follow_symlinks=False)
    except OSError:
        return False
    return True


def records(stamp: Stamp, key: str = "members") -> list[MemberRecord]:
    """The member records of a stamp (``members`` or ``stale``); none for a 0.1.0 stamp.
    (Within a folder pull's cache, a row list's records are parsed once.)"""
    if stamp.get("version") != VERSION:
        return []
    return list(stamp_cache.parsed(_rows(stamp, key), _records))


#: The types of a row :meth:`MemberRecord.to_json` writes, field by field.
_ROW_TYPES = (str, str, int, int, int, str)


def record_rows(stamp: Stamp, key: str = "members") -> list[tuple[Any, ...]]:
    """The rows of :func:`records` (``members`` or ``stale``) as tuples, each equal to
    ``tuple(record.to_json())`` of its record: a row of exactly those types is that tuple as
    it is; any other goes through :meth:`MemberRecord.from_json` as in :func:`records` (or is
    dropped with it). A pull that just wrote its stamp's 20,000 rows parsed them all back
    into records only to turn them into rows again, to settle its journal (tail39)."""
    if stamp.get("version") != VERSION:
        return []
    out: list[tuple[Any, ...]] = []
    for row in _rows(stamp, key):
        if type(row) is list and tuple(map(type, row)) == _ROW_TYPES:
            out.append(tuple(row))
            continue
        try:
            out.append(tuple(MemberRecord.from_json(row).to_json()))
        except (TypeError, ValueError):
            continue  # a damaged row: vouches for nothing
    return out


def damaged_row(stamp: Stamp, parsed: Optional[Sequence[MemberRecord]] = None
                ) -> Optional[str]:
    """The first member row of ``stamp`` (a version-2 stamp) that is no record (or
    ``members``, when it has none), or None. A damaged row vouches for nothing, and dropped,
    its member was never looked at: a rerun called the extraction staged over a member that
    was gone (attackpull40). ``parsed``: :func:`records` of it, when the caller has them
    (counts are compared; the rows are parsed again only when one is damaged)."""
    rows = stamp.get("members")
    if not isinstance(rows, list):
        return "members"
    if len(records(stamp) if parsed is None else parsed) == len(rows):
        return None
    for row in rows:
        try:
            MemberRecord.from_json(row)
        except (TypeError, ValueError):
            return str(row)
    return "members"


def _records(rows: list[Any]) -> list[MemberRecord]:
    out: list[MemberRecord] = []
    for row in rows:
        try:
            out.append(MemberRecord.from_json(row))
        except (TypeError, ValueError):
            continue  # a damaged row: never a reason to remove anything
    return out


def unrecorded(stamp: Stamp) -> list[str]:
    """The members a 0.1.0 stamp lists (they have no records), and those it carried over."""
    out = [str(p) for p in _rows(stamp, "unrecorded")]
    if stamp.get("version") == LEGACY_VERSION and stamp.get("extracted"):
        out += [str(row[0]) for row in _rows(stamp, "members")
                if isinstance(row, list) and row]
    return out


def _rows(stamp: Stamp, key: str) -> list[Any]:
    """A list field of a stamp; none when a damaged stamp holds something else there."""
    rows = stamp.get(key)
    return rows if isinstance(rows, list) else []


def others(rows: list[Any], end: Optional[int], path: Any, fid: Any,
           rank: Optional[int]) -> list[MemberRecord]:
    """Of an index's ``(rank, stamp file, id, record)`` rows for one path (the latest in the
    pull's order first), the records up to ``end`` but those of the stamp file ``path`` or
    the id ``fid``, and with ``rank``, those of a rank before it: copied in slices where the
    rows allow (row by row, each archive asking, 500 that share a path took a tenth of a
    rerun: rerun37)."""
    end = len(rows) if end is None else end
    if rank is not None and rows and rows[-1][0] is None:   # (ranked and not: row by row)
        return [m for r, p, f, m in rows[:end]
                if p != path and f != fid and (r is None or r >= rank)]
    paths, fids, records = stamp_cache.parsed(rows, _columns)
    out: list[MemberRecord] = []
    start = 0
    for at in sorted({*_positions(paths, path, end), *_positions(fids, fid, end)}) + [end]:
        out += records[start:at]
        start = at + 1
    return out


def _columns(rows: list[Any]) -> tuple[list[Any], list[Any], list[MemberRecord]]:
    """An index's rows for one path as columns: stamp files, ids, records."""
    return [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows]


def _positions(column: list[Any], value: Any, end: int) -> list[int]:
    """Where ``value`` is in ``column`` before ``end`` (looked for in C: ``list.index``)."""
    found: list[int] = []
    while True:
        try:
            found.append(column.index(value, found[-1] + 1 if found else 0, end))
        except ValueError:
            return found
