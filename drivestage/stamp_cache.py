"""A folder pull's cache of the stamps it reads (:func:`scope`): each stamp file read and
parsed once per version of it, not once for every archive that asks. (One file's pull runs
in a scope too: its own stamp was read 5-6 times, its rows parsed 4-6: attackpull40.)

A folder pull of n archives that share a path asks, for each archive, what every other
archive's stamp records (:func:`drivestage.stamps.siblings_wrote`, :func:`~drivestage.
stamps.taken`): n² stamp reads, 450,000 for 500 archives, 10-28 s for a rerun that writes
nothing (stampcache36). Within :func:`scope`, a state folder's stamps are kept parsed, each
with the inode number of the file that was read.

Every use lists the state folder again (one ``getdents``: no ``stat``, no read per stamp)
and reads only the entries that are new or whose inode number changed. Every stamp is
written by renaming a new file over its name (:func:`drivestage.localfs.atomic_write_at`),
by this pull or by another process (a second pull into the same DEST), so a stamp written
since it was read has another inode number — unless the old file's inode was freed and
given to the new one (a stamp written twice since the last look). The cache keeps each
stamp's file open, as many as :data:`_PINS` allows: an open file's inode is never freed,
so no other file can take its number while the cache trusts what it read. A stamp beyond
that many, or in a folder whose listing shows other numbers than its files have (some FUSE
file systems), is read at every use, as without the cache. So a stamp another pull wrote
is seen at the next use, as it was without the cache; none is trusted for longer.

(A stamp edited in place, not renamed over — by hand, during the pull — is seen by the
next pull, as one edited after this pull's look would be.)

Derived tables (:func:`derived`) are kept while the state folders they were made from are
unchanged (by the same listing), so a rerun's question per archive costs a lookup.

Where the kernel tells every change of the folder (a local file system: :mod:`drivestage.
dir_watch`), a use lists it again only when an entry other than a lock was made, removed or
renamed since the last listing: what that listing would have shown, without reading the
folder (one listing per archive was most of a rerun's time: rerun37).

One question asked of several stamps at once (whether an archive's members are in place:
its own records, the other archives', which of those stand for a path) is one use: within
:func:`moment`, a state folder is listed once by the thread asking, and every part of the
answer reads that listing (listed twice, a few microseconds apart, it took half a rerun's
time: rerun37).
"""
from __future__ import annotations

import functools
import operator
import os
import threading
from contextlib import contextmanager
from typing import Any, Callable, Hashable, Iterator, Optional, Sequence, TypeVar

from drivestage import dir_watch
from drivestage.extract.statedir import open_own, read_own
from drivestage.fork_drop import free_in_forks
from drivestage.interrupts import deferred


def _pins() -> int:
    """Stamp files kept open (their inode numbers pinned) at most: a quarter of the soft
    limit on open files, the rest for the pull's own sockets and files."""
    try:
        import resource
    except ImportError:   # (Windows: no such limit to read)
        return 256
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return 4096 if soft == resource.RLIM_INFINITY else min(4096, soft // 4)


_PINS = _pins()
_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # as statedir.read_own

#: ``parse(entry, raw bytes, stat of the file read)``: the parsed stamp, or None.
Parse = Callable[[str, bytes, os.stat_result], Optional[dict[str, Any]]]

_lock = free_in_forks(threading.RLock())
_depth = 0
_folders: dict[tuple[int, int], "_Folder"] = {}   # by the state folder's (device, inode)
_pinned = [0]   # stamp files held open
_derived: dict[Hashable, tuple[tuple[Any, ...], Any]] = {}
_parsed: dict[int, tuple[list[Any], Any]] = {}   # by id(rows), the rows held
_versions = [0]   # the last version given (unique in the process: never one reused)
#: What this process read: stamp files opened, state folders listed (tests count them).
counts = {"read": 0, "listed": 0}
_moment = threading.local()   # .seen: (device, inode) -> the listing, within moment()
_Listing = tuple[int, list[tuple[str, dict[str, Any]]]]
_F = TypeVar("_F", bound=Callable[..., Any])
_name = operator.attrgetter("name")


class _Folder:
    """One state folder's stamps as last listed: entry -> (inode, parsed or None), each
    kept only while its file is held open (its inode number pinned: the descriptor)."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[int, Optional[dict[str, Any]], int]] = {}
        self.seen: dict[str, int] = {}   # every entry's inode number, as last listed
        self.version = 0
        self.out: list[tuple[str, dict[str, Any]]] = []   # the stamps, as last listed
        self.vouched = False   # every stamp of ``out`` kept (none read unpinned)
        #: What tells whether a listing would show a change (None: list at every use).
        self.watch: Optional[dir_watch.Watch] = None
        self.watched = False   # (a watch tried)


@contextmanager
def scope() -> Iterator[None]:
    """Cache the stamps read in the block (nested blocks share one cache; the files kept
    open are closed when the outermost one ends). A Ctrl-C at any moment of its way in or
    out leaves no file open and no cache behind (one left open kept every later pull of the
    notebook's process reading through it, its stamp files held open)."""
    global _depth
    entered = False
    try:
        with deferred():
            with _lock:
                _depth += 1
                entered = True
        yield
    finally:
        if entered:
            left = [False]
            try:
                with deferred():
                    _leave(left)
            finally:
                _leave(left)   # (a Ctrl-C as the deferral began: left here, as it is)


def _leave(left: list[bool]) -> None:
    """Leave a scope once (``left``: done already); the outermost closes every file."""
    global _depth
    if left[0]:
        return
    with _lock:
        if not left[0]:
            _depth -= 1
            left[0] = True
        if _depth == 0:
            for folder in _folders.values():
                for entry in list(folder.entries):
                    _forget(folder, entry)
                if folder.watch is not None:
                    folder.watch.close()
            _folders.clear()
            _derived.clear()
            _parsed.clear()


def _read(state_fd: int, entry: str) -> Optional[tuple[bytes, os.stat_result, int]]:
    """The bytes of the stamp file ``entry`` (this user's regular file, never a link),
    its stat and its descriptor, still open; None when there is none such. (Called with
    a Ctrl-C held back: see :func:`_fetch`.)"""
    counts["read"] += 1
    try:
        fd = open_own(entry, _FLAGS, state_fd)
    except OSError:
        return None
    if fd < 0:
        return None
    try:
        st, chunks = os.fstat(fd), []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
    except BaseException:
        os.close(fd)
        raise
    return b"".join(chunks), st, fd


def _fetch(folder: _Folder, state_fd: int, entry: str, ino: Optional[int],
           parse: Parse) -> tuple[Optional[dict[str, Any]], bool]:
    """``entry`` read and parsed, and whether it is kept: while its file stays open, if
    the budget allows and the listing's inode number (``ino``, when listed) is the file's
    (else it was replaced since the listing, or the file system's listing shows other
    numbers: read again at the next use). A Ctrl-C waits for the end: one between the
    open and the close (or the keeping) left the descriptor open for the notebook's
    lifetime."""
    with deferred():
        _forget(folder, entry)
        got = _read(state_fd, entry)
        if got is None:
            return None, False
        raw, st, fd = got
        try:
            stamp = parse(entry, raw, st)
        except BaseException:
            os.close(fd)
            raise
        if (ino is None or ino == st.st_ino) and _pinned[0] < _PINS:
            _pinned[0] += 1
            folder.entries[entry] = (st.st_ino, stamp, fd)
            return stamp, True
        os.close(fd)
        return stamp, False


def _forget(folder: _Folder, entry: str) -> None:
    """Drop ``entry`` from the cache, closing its file."""
    with deferred():   # (see _fetch)
        had = folder.entries.pop(entry, None)
        if had is not None:
            _pinned[0] -= 1
            os.close(had[2])


def _folder(state_fd: int) -> _Folder:
    st = os.fstat(state_fd)
    return _folders.setdefault((st.st_dev, st.st_ino), _Folder())


@contextmanager
def moment() -> Iterator[None]:
    """One use (see the module doc): each state folder listed once by this thread within
    the block (nested blocks: the outermost's)."""
    if getattr(_moment, "seen", None) is not None:
        yield
        return
    _moment.seen = {}
    try:
        yield
    finally:
        _moment.seen = None


def one_use(fn: _F) -> _F:
    """``fn`` (a question asked of several stamps at once) run within a :func:`moment`."""
    @functools.wraps(fn)
    def within(*args: Any, **kwargs: Any) -> Any:
        with moment():
            return fn(*args, **kwargs)
    return within  # type: ignore[return-value]


def listing(state_fd: int, parse: Parse
            ) -> Optional[tuple[int, list[tuple[str, dict[str, Any]]]]]:
    """``(version, [(entry, stamp)…])`` for the readable stamps of the state folder
    ``state_fd``, by entry, each read only when new or changed since the last use; None
    outside a :func:`scope` (read them all). ``version`` changes whenever what the folder
    holds (its locks aside) may have changed since the last use. (Within a :func:`moment`,
    the listing this thread made of the folder in it.)"""
    if not _depth:
        return None
    now: Optional[dict[tuple[int, int], _Listing]] = getattr(_moment, "seen", None)
    st = os.fstat(state_fd) if now is not None else None
    if now is not None and st is not None and (st.st_dev, st.st_ino) in now:
        return now[st.st_dev, st.st_ino]
    with _lock:
        folder = _folder(state_fd)
        if folder.watch is not None and folder.version and folder.vouched and \
                not folder.watch.changed():   # (the kernel says a listing shows nothing new)
            return _now(now, st, (folder.version, folder.out))
        if not folder.watched:   # (before the first listing: a change during it is told)
            folder.watched = True
            folder.watch = dir_watch.watch(state_fd, _a_lock)
        counts["listed"] += 1
        with os.scandir(state_fd) as it:
            entries = list(it)
        seen = dict(zip(map(_name, entries), map(os.DirEntry.inode, entries)))   # (in C)
        # What changed since the last use (in C: a rerun's own locks come and go, no more).
        changed = [name for name, _ino in seen.items() - folder.seen.items()
                   if not name.endswith(".lock")]
        gone = [name for name in folder.seen.keys() - seen.keys()
                if not name.endswith(".lock")]
        folder.seen = seen
        if not changed and not gone and folder.version and folder.vouched:
            return _now(now, st, (folder.version, folder.out))
        vouched = True
        for entry in gone:
            _forget(folder, entry)
        out = []
        for entry in sorted(n for n in seen if n.endswith(".json")):
            had = folder.entries.get(entry)
            if had is not None and had[0] == seen[entry]:
                stamp: Optional[dict[str, Any]] = had[1]
            else:
                stamp, kept = _fetch(folder, state_fd, entry, seen[entry], parse)
                vouched = vouched and kept
            if stamp is not None:
                out.append((entry, stamp))
        _versions[0] += 1
        folder.version, folder.out, folder.vouched = _versions[0], out, vouched
        return _now(now, st, (folder.version, out))


def _a_lock(name: str) -> bool:
    return name.endswith(".lock")   # (locks come and go: never a change, as listed)


def _now(now: Optional[dict[tuple[int, int], _Listing]], st: Optional[os.stat_result],
         listed: _Listing) -> _Listing:
    """``listed``, kept for the rest of this thread's :func:`moment` (when in one)."""
    if now is not None and st is not None:
        now[st.st_dev, st.st_ino] = listed
    return listed


def read(state_fd: int, entry: str, parse: Parse) -> Optional[dict[str, Any]]:
    """The stamp in ``entry`` (None when none is there); within a :func:`scope`, the one
    read before while the file at that name is still the file read (one ``lstat``)."""
    if not _depth:
        raw = read_own(state_fd, entry)
        if raw is None:
            return None
        try:   # (the file read may be replaced since: its mtime tells a granularity only)
            st = os.stat(entry, dir_fd=state_fd, follow_symlinks=False)
        except OSError:
            return None
        return parse(entry, raw, st)
    with _lock:
        folder = _folder(state_fd)
        had = folder.entries.get(entry)
        if had is not None:
            try:
                if os.stat(entry, dir_fd=state_fd, follow_symlinks=False).st_ino == had[0]:
                    return had[1]
            except OSError:
                pass
        return _fetch(folder, state_fd, entry, None, parse)[0]


def derived(key: Hashable, basis: Sequence[Any], build: Callable[[], tuple[Any, bool]]
            ) -> Any:
    """What ``build()`` made (it says too whether that may be kept), kept under ``key``
    while ``basis`` stays the same: the versions of the state folders it was made from
    (:func:`listing`; compared by value) and the objects it depends on (by identity).
    Built at every call outside a :func:`scope`."""
    if not _depth:
        return build()[0]
    with _lock:
        had = _derived.get(key)
        if had is not None and len(had[0]) == len(basis) and all(
                a is b or (isinstance(a, (int, str, tuple)) and a == b)
                for a, b in zip(had[0], basis)):
            return had[1]
    made, keep = build()
    with _lock:
        if _depth and keep:
            _derived[key] = (tuple(basis), made)
        else:
            _derived.pop(key, None)
    return made


def parsed(rows: list[Any], parse: Callable[[list[Any]], Any]) -> Any:
    """``parse(rows)``, kept while the very list ``rows`` is (a cached stamp's member rows,
    shared by its copies: replaced, never changed in place, when a stamp changes)."""
    if not _depth or not rows:
        return parse(rows)
    with _lock:
        had = _parsed.get(id(rows))
    if had is not None and had[0] is rows:
        return had[1]
    made = parse(rows)
    with _lock:
        if _depth:
            _parsed[id(rows)] = (rows, made)
    return made
