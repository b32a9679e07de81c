"""When a file on disk is the one a record saw: :func:`same_mtime` (an mtime shown now is the
one stamped, perhaps coarser: a Drive mount seen anew), and a member of an extraction in
place (:func:`not_in_place`, :func:`shows`, :func:`in_real_place`), read by
:mod:`drivestage.stamps` (which re-exports them), :mod:`drivestage.stage_decide` and
:mod:`drivestage.stage_extraction`. Split out of stamps.py and localfs.py (mount31)."""
from __future__ import annotations

import os
import stat
import weakref
from typing import Iterable, Mapping, Optional

from drivestage.extract import MemberRecord
from drivestage.interrupts import deferred

#: Coarser times a file system may show a file's mtime at later than it showed it when it was
#: stamped: microseconds, milliseconds (Drive's modifiedTime, which Colab's Drive mount and
#: rclone show once the file is in the cloud, e.g. in a new Colab session), seconds (what a
#: Drive mount mounted anew shows by some accounts), FAT's 2 s.
COARSER_NS = (10**3, 10**6, 10**9, 2 * 10**9)
#: The coarser granularities at which a rounded mtime (a later one, up to half of it) also
#: counts: at whole seconds, "rounded" is what a rewrite a second later shows on a file
#: system that keeps whole seconds (ext3, HFS+, sshfs), or a rewrite on the second on a
#: Drive mount (milliseconds): taken for the staged copy, its bytes were kept (attackds29).
ROUNDED_NS = 10**6


def same_mtime(now: Optional[int], stamped: object, shown: object = None) -> bool:
    """Whether the mtime ``now`` (ns) is the ``stamped`` one: the same, or the same instant
    shown at a coarser granularity (:data:`COARSER_NS`) than the stamp saw, truncated (or
    rounded, to µs or ms: :data:`ROUNDED_NS`). A Drive mount shows a file staged in an
    earlier Colab session with Drive's millisecond mtime (or whole seconds), not the
    nanoseconds stamped: every new session hashed the whole archive again and extracted
    every member once more, through the mount. A file rewritten since has a later mtime; one
    a file system kept at that coarser granularity from the start was stamped so, and must
    match exactly. (The stamps' and the member records' test alike: :mod:`drivestage.stage_decide`,
    :func:`not_in_place`.)

    ``shown``: the mtime (ns) the same file system shows now of a file written after the one
    stamped (its stamp: ``stamp["_shown_ns"]``, :func:`drivestage.stamps.of`): a granularity
    counts only where that one is shown at it too. A mount seen anew shows every file at its
    granularity, the stamp too; a whole second beside a stamp shown in milliseconds is a real
    whole second (one of Drive's times in 1,000), such as the older version of a file whose
    new stamp reached Drive before it (DriveFS sends small files first): taken for the
    stamped version, its old bytes were "already staged" (mount31). None: any granularity."""
    if now is None or isinstance(stamped, bool) or not isinstance(stamped, int):
        return False
    if now == stamped:
        return True
    grain = shown if isinstance(shown, int) and not isinstance(shown, bool) else None
    return any(now % unit == 0 and stamped % unit != 0 and (grain is None or grain % unit == 0)
               and now in (stamped - stamped % unit,
                           (stamped + unit // 2) // unit * unit if unit <= ROUNDED_NS else None)
               for unit in COARSER_NS)


def not_in_place(dest: str, members: Iterable[MemberRecord],
                 siblings: Optional[Mapping[str, list[MemberRecord]]] = None,
                 shown: object = None,
                 looked: Optional[dict[str, os.stat_result]] = None) -> Optional[str]:
    """The first member that is absent, of another kind, of another size or (a file) mtime
    (a link: that leads elsewhere), or None. ``siblings``: records by path of what the other
    archives of the same Drive folder extracted here: a member that shows what one of them
    wrote (by the same test, :func:`shows`) is in place too
    (:func:`drivestage.stamps.siblings_wrote`). ``shown``: as for :func:`same_mtime`.

    Presence, kind, size and mtime - not the inode: a member put back with the same bytes
    and time (DEST copied with ``cp -a``, moved to another disk, a Drive mount seen anew)
    is in place. ``looked``: each member's lstat is kept there, by path (a rerun's next
    look, :func:`drivestage.stamps.taken`, takes it: 20,000 lstats fewer)."""
    with _Folders(dest) as folders:
        return _not_in_place(folders, dest, members, siblings, shown, looked)


def _not_in_place(folders: "_Folders", dest: str, members: Iterable[MemberRecord],
                  siblings: Optional[Mapping[str, list[MemberRecord]]], shown: object,
                  looked: Optional[dict[str, os.stat_result]]) -> Optional[str]:
    for m in members:
        rel = m.path
        st = folders.lstat(rel)
        if st is None:
            return rel
        if looked is not None:
            looked[rel] = st
        if m.kind == "file" and st.st_mtime_ns == m.mtime_ns and st.st_size == m.size and \
                stat.S_ISREG(st.st_mode):
            continue   # (shows() says so: the exact mtime stamped)
        # A sibling's member by the same test (not its inode: a Drive mount seen anew shows
        # new ones, and the shared path was extracted again in every new session: pull29).
        if not shows(dest, m, st, shown) and \
                not any(shows(dest, o, st, shown) for o in (siblings or {}).get(m.path, ())):
            return m.path
    return None


def shows(dest: str, m: MemberRecord, st: os.stat_result, shown: object = None) -> bool:
    """Whether ``st`` (the lstat of ``m``'s path) shows what ``m`` records: its kind, a
    file's size and mtime (:func:`same_mtime`, ``shown`` as there: as a Drive mount may
    show it coarser), a link's target."""
    if m.kind == "dir":
        return stat.S_ISDIR(st.st_mode)
    if m.kind == "symlink":
        # Its target too (read, never followed): its size alone is the target's length,
        # and a link retargeted to a name of the same length was in place for good.
        return stat.S_ISLNK(st.st_mode) and st.st_size == m.size and \
            _readlink(dest, m.path) == m.target
    # Its mtime too: a member rewritten since with its size (an edit, a file cut and
    # written out again, a hard link to another file) was in place for good (pull29).
    return stat.S_ISREG(st.st_mode) and st.st_size == m.size and \
        same_mtime(st.st_mtime_ns, m.mtime_ns, shown)


def in_real_place(dest: str, members: Iterable[MemberRecord]) -> list[MemberRecord]:
    """The members that are still exactly what the extraction they record wrote
    (:meth:`MemberRecord.matches`: kind, size, mtime, inode; a link's target), reached
    through real folders of DEST, no link on the way, as a merge writes them: what a restore
    need not write again. Judged by kind and size, it kept a member another archive had
    replaced with bytes of the same size (the rerun said extracted, the bytes were the other
    archive's), and one reached through a link (a folder moved to another disk, a link left
    in its place), which the merge, never writing through a link, then lost."""
    real: dict[str, bool] = {}

    def through_folders(rel: str) -> bool:
        parent = rel.rpartition("/")[0]
        if not parent:
            return True
        if parent not in real:
            st = _lstat(dest, parent) if through_folders(parent) else None
            real[parent] = st is not None and stat.S_ISDIR(st.st_mode)
        return real[parent]

    def written(m: MemberRecord) -> bool:
        st = _lstat(dest, m.path)
        if st is None:
            return False
        return m.matches(st, _readlink(dest, m.path) if stat.S_ISLNK(st.st_mode) else None)

    return [m for m in members if through_folders(m.path) and written(m)]


def _readlink(dest: str, rel: str) -> Optional[str]:
    try:
        return os.readlink(os.path.join(dest, rel))
    except OSError:
        return None


#: Member folders :class:`_Folders` keeps open at once (a folder past them: each path's lstat).
_OPEN_FOLDERS = 64
#: The members of a folder looked at before it is opened: an open and its close (under
#: deferred()) cost about what 20 whole-path lstats save; a folder of one or a few members
#: is looked at path by path (one file a folder: 7 times the CPU, opened at once).
_WORTH = 32
_O_PATH = getattr(os, "O_PATH", 0)   # (Linux: a folder opened to look in, not to read)


class _Folders:
    """The lstat of member paths of ``dest``, as ``os.lstat(dest/rel)`` answers it, the
    folder of many members resolved once per look, not once per member: from its
    :data:`_WORTH`-th member on, the folder ``dest/parent`` is opened by its path as that
    lstat resolves it (a link on the way followed, as there) and each member of it looked at
    by name (``dir_fd``). 20,000 members in two folders 9 deep: 45 ms of CPU instead of 68
    (overlap42). Where there is no ``O_PATH``, or a folder could not be opened (no such
    folder, no descriptor left), or :data:`_OPEN_FOLDERS` are open: each path's lstat."""

    def __init__(self, dest: str):
        self.dest = dest
        self.fds: dict[str, int] = {}   # parent -> descriptor, -1: none (each path's lstat)
        self.seen: dict[str, int] = {}  # parent -> members looked at path by path
        # A Ctrl-C that cuts the closes short: the rest are closed as this object goes.
        self._closer = weakref.finalize(self, _close_all, self.fds)

    def __enter__(self) -> "_Folders":
        return self

    def __exit__(self, *exc: object) -> None:
        _close_all(self.fds)
        self._closer.detach()   # (not before: cut short, the finalizer closes the rest)

    def lstat(self, rel: str) -> Optional[os.stat_result]:
        """``os.lstat(dest/rel)``, None when it fails or ``rel`` is no member path."""
        framed = f"/{rel}/"  # (as _lstat: never looked at outside DEST)
        if "//" in framed or "/./" in framed or "/../" in framed or "\0" in rel:
            return None
        parent, _, name = rel.rpartition("/")
        fd = self.fds.get(parent)
        if fd is None:
            seen = self.seen.get(parent, 0) + 1
            self.seen[parent] = seen
            fd = self._open(parent) if seen >= _WORTH and _O_PATH and \
                len(self.fds) < _OPEN_FOLDERS else -1
        try:
            return os.lstat(os.path.join(self.dest, rel)) if fd < 0 else \
                os.lstat(name, dir_fd=fd)
        except OSError:
            return None

    def _open(self, parent: str) -> int:
        with deferred():   # (a Ctrl-C between the open and the note would leak it)
            try:
                fd = os.open(os.path.join(self.dest, parent) if parent else self.dest or ".",
                             _O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError:   # (none there, or no descriptor left: each path's lstat)
                fd = -1
            self.fds[parent] = fd
        return fd


def _close_all(fds: dict[str, int]) -> None:
    """Close each descriptor of ``fds`` not closed yet (-1 then: a Ctrl-C between a close
    and its note would close the number twice, another file's by then)."""
    for parent, fd in list(fds.items()):
        if fd >= 0:
            with deferred():
                os.close(fd)
                fds[parent] = -1


def _lstat(dest: str, rel: str) -> Optional[os.stat_result]:
    framed = f"/{rel}/"  # a part "", "." or "..": "//", "/./" or "/../" in it
    if "//" in framed or "/./" in framed or "/../" in framed or "\0" in rel:
        return None  # not a member path: never looked at outside DEST
    try:
        return os.lstat(os.path.join(dest, rel))
    except OSError:
        return None
