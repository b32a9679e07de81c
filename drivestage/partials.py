"""A download's partial file beside its target, and the record of what it holds.

The partial is named after the target and a key made of the remote id, md5 and size
(``.c.zip.<key>.partial``: another version of the file never reuses it). Beside it, the record
(``.c.zip.<key>.ranges``, JSON ``{"size": N, "done": [[a, b], ...]}``) lists the byte ranges
already in the partial; it is written before the partial's first byte, so a rerun trusts only
what it lists. A partial without a record (drivestage 0.1.0 wrote them in order) is a prefix
of the file. Both names are reserved: no archive member or remote item may take them
(:func:`drivestage.extract.validation.is_reserved`).
"""
from __future__ import annotations

import bisect
import functools
import hashlib
import json
import os
import re
import stat
import threading
import time
from contextlib import contextmanager
from typing import Collection, Iterable, Iterator, Optional, Sequence

from drivestage.fork_drop import free_in_forks
from drivestage.localfs import atomic_write, fitted_name, open_regular
from drivestage.sizes import format_size
from drivestage.store import RemoteEntry

_TAG_RE = re.compile(r"^([0-9a-f]{16})\.(?:partial|ranges)\Z")
#: A record with more ranges than this is not one a download wrote (its streams leave a few
#: holes each): trusting it would mean a ranged request per hole.
_MAX_RANGES = 4096
_MAX_RECORD = 1 << 20  # bytes: such a record is about 100 KiB


def partial_path(target: str, entry: RemoteEntry) -> str:
    """The partial file for ``entry`` beside ``target`` (keyed by id + md5 + size)."""
    key = f"{entry.id}\0{entry.md5 or ''}\0{entry.size}".encode()
    tag = hashlib.sha1(key).hexdigest()[:16]
    folder, base = os.path.split(os.path.abspath(target))
    return os.path.join(folder, f".{fitted_name(base)}.{tag}.partial")


def ranges_path(partial: str) -> str:
    """The record of which byte ranges ``partial`` holds."""
    return partial[:-len(".partial")] + ".ranges"


#: Folders listed once for a folder pull (:func:`listed_once`): folder -> its listings.
_listed: dict[str, list[list[str]]] = {}
_listed_lock = free_in_forks(threading.Lock())


@contextmanager
def listed_once(folders: Iterable[str]) -> Iterator[None]:
    """Within the block, :func:`stale_partials` and :func:`record_temps` read each of
    ``folders`` as listed once at its start, not once per file (a folder pull of n files
    listed a folder of n names for each one: time in n²). They look only for leftovers of
    killed runs, a name's own under that name's lock: one made after the listing is this
    pull's own or another process's under way, neither to be removed; one listed and gone
    since is skipped (:func:`unlink`)."""
    names = {}
    for folder in {os.path.abspath(f) for f in folders}:
        try:
            names[folder] = sorted(os.listdir(folder))
        except FileNotFoundError:
            names[folder] = []  # not there yet: nothing was left in it
        except OSError:
            continue  # listed as it is when asked (and fails then, saying why)
    with _listed_lock:
        for folder, listing in names.items():
            _listed.setdefault(folder, []).append(listing)
    try:
        yield
    finally:
        with _listed_lock:
            for folder, listing in names.items():
                stack = _listed[folder]
                stack.remove(listing)
                if not stack:
                    del _listed[folder]


def listing(folder: str) -> Optional[list[str]]:
    """``folder``'s names as listed once by :func:`listed_once` (an absolute path), or None."""
    with _listed_lock:
        stack = _listed.get(folder)
        return stack[-1] if stack else None


def _names(folder: str) -> list[str]:
    """``folder``'s names: as listed once (:func:`listed_once`), or now."""
    names = listing(folder)
    return names if names is not None else sorted(os.listdir(folder))


def stale_partials(target: str, keep: Optional[str] = None) -> list[str]:
    """Partial files of other versions of ``target`` (never ``keep``), also those of which
    only the record is left (a kill between removing the two)."""
    folder, base = os.path.split(os.path.abspath(target))
    prefix = f".{fitted_name(base)}."
    out: list[str] = []
    try:
        names = _names(folder)
    except FileNotFoundError:
        return []
    for name in names:
        tag = _TAG_RE.match(name[len(prefix):]) if name.startswith(prefix) else None
        if tag is not None:
            path = os.path.join(folder, f"{prefix}{tag.group(1)}.partial")
            if path != keep and path not in out:
                out.append(path)
    return out


#: Any partial or record, and any record's temporary file: (the fitted name they are made of).
_ANY_RES = (re.compile(r"^\.(.+)\.[0-9a-f]{16}\.(?:partial|ranges)\Z"),
            re.compile(r"^\.\.(.+)\.[0-9a-f]{16}\.ranges\.[^/]+\.tmp\Z"))


def orphans(folder: str, names: Collection[str]) -> dict[str, list[str]]:
    """The partial downloads in ``folder``, their records and the records' temporary files,
    of files named none of ``names`` (a file Drive no longer has: a rerun would never finish
    nor remove them), by the fitted name they are made of (that of their lock)."""
    keep = set()
    for n in names:
        try:
            keep.add(fitted_name(n))
        except UnicodeEncodeError:
            pass  # half a surrogate pair (a pull left it out): no file has its name (attack28)
    out: dict[str, list[str]] = {}
    try:
        entries = sorted(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return out
    for entry in entries:
        for pattern in _ANY_RES:
            found = pattern.match(entry)
            if found is not None and found.group(1) not in keep:
                out.setdefault(found.group(1), []).append(os.path.join(folder, entry))
    return out


def _is_record_temp(name: str) -> bool:
    """Whether ``name`` is a range record's temporary file (a name no remote item or member
    may take: :func:`drivestage.extract.validation.is_reserved`)."""
    return _ANY_RES[1].match(name) is not None


def record_temps(target: str) -> list[str]:
    """Temporary files of range records of any version of ``target``: :func:`atomic_write`
    leaves one when the process is killed while it writes the record."""
    folder, base = os.path.split(os.path.abspath(target))
    pattern = re.compile(r"\.\." + re.escape(fitted_name(base)) +
                         r"\.[0-9a-f]{16}\.ranges\.[^/]+\.tmp\Z")
    try:
        names = _names(folder)
    except FileNotFoundError:
        return []
    return [os.path.join(folder, n) for n in names if pattern.match(n)]


def partial_size(target: str, entry: RemoteEntry) -> int:
    """Bytes already downloaded for ``entry`` (0 when there is no usable partial)."""
    partial = partial_path(target, entry)
    done = Ranges.load(partial, entry.size)
    return done.total() if done is not None else 0


def left_behind(target: str, entry: RemoteEntry) -> str:
    """For a message about a download that cannot go on now (its owner turned downloading
    off): where its partial stays and how to free it; "" when there is none. The partial is
    kept: the download goes on from it once allowed again."""
    have = partial_size(target, entry)
    if not have:
        return ""
    partial = partial_path(target, entry)
    return (f" A partial download of it ({format_size(have)}) stays in "
            f"{os.path.dirname(partial)} for when it may be downloaded again; delete {partial} "
            "to free the space.")


def open_partial(partial: str, size: int) -> int:
    """A descriptor of ``partial`` for reading and writing, created if need be, never
    through a link someone put there, and holding nothing past the file's ``size`` (bytes
    there would be renamed into place with the file, never hashed)."""
    fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    if os.fstat(fd).st_size > size:
        os.ftruncate(fd, size)
    return fd


def _read_record(path: str) -> bytes:
    """At most ``_MAX_RECORD + 1`` bytes of the range record at ``path``: only a regular
    file, opened without following a link and without waiting (a FIFO put there by another
    program held the pull for good, waiting for a writer); OSError otherwise."""
    fd = open_regular(path, follow=False)
    try:
        return os.pread(fd, _MAX_RECORD + 1, 0)
    finally:
        os.close(fd)


def remove_partial(partial: str) -> None:
    """Remove a partial file and its record."""
    for path in (partial, ranges_path(partial)):
        unlink(path)


class Ranges:
    """Sorted, merged ``[a, b)`` ranges of the file that are in the partial, and their
    record beside it."""

    def __init__(self, partial: str, size: int, done: Optional[list[list[int]]] = None):
        self.partial, self.size = partial, size
        self.starts: list[int] = [a for a, _ in done or []]
        self.ends: list[int] = [b for _, b in done or []]
        self.saved = False

    @classmethod
    def load(cls, partial: str, size: int) -> Optional["Ranges"]:
        """The ranges of an existing partial (None when there is no usable one)."""
        try:
            st = os.lstat(partial)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None  # a link or anything else there is no partial drivestage wrote
        have = st.st_size
        try:
            text = _read_record(ranges_path(partial))
            raw = json.loads(text) if len(text) <= _MAX_RECORD else None  # never read whole
        except FileNotFoundError:
            # drivestage 0.1.0 wrote partials in order: a prefix of the file.
            return cls(partial, size, [[0, have]] if 0 < have <= size else []) \
                if have <= size else None
        except (OSError, ValueError, RecursionError):   # (nested too deep: mount52)
            return None
        if not isinstance(raw, dict) or raw.get("size") != size or \
                not isinstance(raw.get("done"), list) or len(raw["done"]) > _MAX_RANGES:
            return None  # not a record drivestage wrote: the partial is not trusted
        pairs = []
        try:
            for a, b in raw["done"]:
                if not (isinstance(a, int) and isinstance(b, int) and 0 <= a < b <= size
                        and b <= have):
                    return None
                pairs.append((a, b))
        except (TypeError, ValueError):
            return None
        out = cls(partial, size)
        for a, b in sorted(pairs):  # in order, each one lands at the end: linear
            out.add(a, b)
        return out

    def add(self, a: int, b: int) -> None:
        i = bisect.bisect_left(self.ends, a)          # first range ending at or after a
        j = bisect.bisect_right(self.starts, b)       # ranges starting after b stay
        if i < j:
            a, b = min(a, self.starts[i]), max(b, self.ends[j - 1])
        self.starts[i:j], self.ends[i:j] = [a], [b]
        self.saved = False

    def remove(self, a: int, b: int) -> None:
        """No longer count ``[a, b)`` as held (bytes not to be trusted: fetched again)."""
        kept = [(x, y) for s, e in zip(self.starts, self.ends)
                for x, y in ((s, min(e, a)), (max(s, b), e)) if x < y]
        self.starts, self.ends = [x for x, _ in kept], [y for _, y in kept]
        self.saved = False

    def covers(self, a: int, b: int) -> bool:
        if a >= b:
            return True
        i = bisect.bisect_right(self.starts, a) - 1
        return i >= 0 and self.ends[i] >= b

    def first_covered(self, spans: Sequence[tuple[int, int]]) -> int:
        """The index of the first of ``spans`` (sorted, disjoint ``[a, b)``) that these
        ranges hold whole, or -1: one bisection per range held, so that waiting for any of
        thousands of spans costs little at each write."""
        best = -1
        for a, b in zip(self.starts, self.ends):
            lo, hi = 0, len(spans)  # the first span starting at or after a
            while lo < hi:
                mid = (lo + hi) // 2
                if spans[mid][0] < a:
                    lo = mid + 1
                else:
                    hi = mid
            # Spans are disjoint and sorted: when span lo reaches past b, so does every
            # later one that starts inside [a, b).
            if lo < len(spans) and spans[lo][1] <= b and (best < 0 or lo < best):
                best = lo
        return best

    def prefix(self) -> int:
        return self.ends[0] if self.starts and self.starts[0] == 0 else 0

    def total(self) -> int:
        return sum(b - a for a, b in zip(self.starts, self.ends))

    def missing(self) -> list[tuple[int, int]]:
        out, pos = [], 0
        for a, b in zip(self.starts, self.ends):
            if a > pos:
                out.append((pos, a))
            pos = b
        if pos < self.size:
            out.append((pos, self.size))
        return out

    def save(self) -> None:
        body = {"size": self.size, "done": [[a, b] for a, b in zip(self.starts, self.ends)]}
        # Beside the user's files: a Drive file or archive member may look like a dead
        # process's temporary file; only records' own are swept (reserved names).
        atomic_write(ranges_path(self.partial), json.dumps(body).encode(),
                     sweep_only=_is_record_temp)
        self.saved = True


def unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
