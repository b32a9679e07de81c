"""What an extraction wrote, member by member, and the removal that trusts nothing else.

A :class:`MemberRecord` identifies the exact file an extraction put at a path: its kind,
size, mtime and inode (a link: its target and inode). The inode tells "the file we wrote"
from "a file of the same size and time put there since" (by the user, or by another archive
that shares the path). :func:`remove_members` removes a recorded path only while it is still
exactly that file or link, reached through real folders of DEST; folders only when empty.
"""
from __future__ import annotations

import os
import stat
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Sequence, Union

from drivestage.extract.members import Entry
from drivestage.extract.merging import merge_lock
from drivestage.extract.tempdir import TempDir
from drivestage.interrupts import deferred

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_new = object.__new__


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """One member as written: ``kind`` is "file" (hard links too), "dir" or "symlink".
    (Slots: an extraction holds one a member, and a dict each took 0.1 KB more.)"""

    path: str              # relative to DEST, "/"-separated
    kind: str
    size: int = 0          # bytes of a file; 0 for a folder, the target's length for a link
    mtime_ns: int = 0
    ino: int = 0
    target: str = ""       # a link's target

    def to_json(self) -> list[Any]:
        """A compact row for a stamp: ``[path, kind, size, mtime_ns, ino, target]``."""
        return [self.path, self.kind, self.size, self.mtime_ns, self.ino, self.target]

    def row(self) -> tuple[Any, ...]:
        """:meth:`to_json` as a tuple (written as the same JSON array; hashable, as a
        journal's rows are compared)."""
        return (self.path, self.kind, self.size, self.mtime_ns, self.ino, self.target)

    @classmethod
    def from_json(cls, row: Sequence[Any]) -> "MemberRecord":
        path, kind, size, mtime_ns, ino, target = row
        # The record the constructor makes, its slots set directly: a frozen dataclass's
        # __init__ sets each through object.__setattr__, more than half of the cost of a
        # stamp's 20,000 rows, read a few times by every pull -x and every rerun (perf35).
        rec = _new(cls)
        _set_path(rec, str(path))
        _set_kind(rec, str(kind))
        _set_size(rec, int(size))
        _set_mtime_ns(rec, int(mtime_ns))
        _set_ino(rec, int(ino))
        _set_target(rec, str(target))
        return rec

    def matches(self, st: os.stat_result, target: Optional[str] = None) -> bool:
        """True when ``st`` (an lstat) is the very file or link this record describes."""
        if self.kind == "file":
            return stat.S_ISREG(st.st_mode) and (st.st_size, st.st_mtime_ns, st.st_ino) == \
                (self.size, self.mtime_ns, self.ino)
        if self.kind == "symlink":
            return stat.S_ISLNK(st.st_mode) and st.st_ino == self.ino and target == self.target
        return stat.S_ISDIR(st.st_mode)


#: Each field's slot, set as :meth:`MemberRecord.from_json` sets them (past the frozen
#: class's ``__setattr__``).
_set_path, _set_kind, _set_size, _set_mtime_ns, _set_ino, _set_target = (
    getattr(MemberRecord, name).__set__
    for name in ("path", "kind", "size", "mtime_ns", "ino", "target"))


@dataclass
class ExtractResult:
    """What :func:`drivestage.extract.extract` wrote into ``dest``, in archive order."""

    archive: str
    dest: str
    members: list[MemberRecord] = field(default_factory=list)
    #: How many of ``members`` were in place already and not written (``extract(kept=)``).
    kept: int = 0
    #: Member paths not written nor recorded, where DEST holds another file that an archive
    #: of the pull merged after this one may hold (see :class:`~.occupied.Occupied`).
    left: list[str] = field(default_factory=list)
    #: The folders its merge made in DEST that the archive does not list (a folder of its
    #: members' paths that DEST lacked), as records ("dir", its inode): the stamp keeps them,
    #: so that a later version without those members removes them once empty
    #: (:func:`remove_folders`).
    made: list[MemberRecord] = field(default_factory=list)

    @property
    def paths(self) -> list[str]:
        """The relative paths written (files, folders, links), as ``extract_archive`` returns."""
        return [m.path for m in self.members]


def record_members(root: TempDir, entries: list[Entry]) -> list[MemberRecord]:
    """Records of the members as they are in the temporary folder ``root`` (a rename into
    DEST keeps inode, size and mtime)."""
    out = []
    for e in entries:
        if e.kind == "file" and e.written is not None:
            size, mtime_ns, ino = e.written
            out.append(MemberRecord(e.path, "file", size, mtime_ns, ino))
            continue
        st = os.lstat(e.path, dir_fd=root.fd)
        if e.kind == "dir":
            out.append(MemberRecord(e.path, "dir", 0, st.st_mtime_ns, st.st_ino))
        elif e.kind == "symlink":
            out.append(MemberRecord(e.path, "symlink", st.st_size, st.st_mtime_ns, st.st_ino,
                                    os.readlink(e.path, dir_fd=root.fd)))
        else:
            out.append(MemberRecord(e.path, "file", st.st_size, st.st_mtime_ns, st.st_ino))
    return out


def remove_members(dest: Union[str, "os.PathLike[str]"],
                   members: Sequence[Union[str, MemberRecord]], keep: set[str],
                   lock_dir: Optional[Union[str, "os.PathLike[str]"]] = None) -> int:
    """Remove what an earlier extraction into ``dest`` wrote and a new one did not (paths in
    ``keep`` stay). Returns how many files, links and folders were removed.

    With :class:`MemberRecord`\\ s, a file or link goes only while it is still exactly what
    that extraction wrote; with plain paths (an old stamp), any file or link there goes.
    Either way: only through real folders of DEST (never through a link, never outside DEST),
    never a folder's contents, and folders only once empty (deepest first). Runs under the
    merge lock of ``lock_dir`` (default ``dest``)."""
    root = os.path.abspath(os.fspath(dest))
    if not os.path.isdir(root):
        return 0
    with merge_lock(os.path.abspath(os.fspath(lock_dir)) if lock_dir is not None else root):
        root_fd = -1
        try:
            with deferred():  # see _parent
                root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            removed, folders = 0, []
            for m in members:
                rec = m if isinstance(m, MemberRecord) else None
                rel = m.path if isinstance(m, MemberRecord) else str(m)
                if rel in keep:
                    continue
                if rec is not None and rec.kind == "dir" or rec is None and _is_dir(root_fd, rel):
                    folders.append(rel)
                elif _remove_file(root_fd, rel, rec):
                    removed += 1
            for rel in sorted(folders, key=lambda p: p.count("/"), reverse=True):
                removed += _remove_empty_folder(root_fd, rel)
            return removed
        finally:
            if root_fd >= 0:
                os.close(root_fd)


@contextmanager
def _parent(root_fd: int, rel: str) -> Iterator[Optional[tuple[int, str]]]:
    """A descriptor of ``rel``'s folder reached through real folders only, and its name,
    for the block (None: not reachable so). Opened with a Ctrl-C held back, as the state
    folder's (:func:`drivestage.extract.statedir.opened_state`): one between an open and the
    block's ``finally`` left a folder of DEST open for the notebook's lifetime."""
    fd = -1
    try:
        with deferred():
            fd = _open_parent(root_fd, rel)
        yield (fd, rel.rsplit("/", 1)[-1]) if fd >= 0 else None
    finally:
        if fd >= 0:
            os.close(fd)


def _open_parent(root_fd: int, rel: str) -> int:
    """See :func:`_parent`; -1 when not reachable."""
    parts = rel.split("/")
    if not rel or rel.startswith("/") or "\0" in rel or \
            any(p in ("", ".", "..") for p in parts):
        return -1  # not a member path: never outside DEST, whatever a stamp says
    fd = os.dup(root_fd)
    for part in parts[:-1]:
        try:
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
        except OSError:
            os.close(fd)
            return -1
        os.close(fd)
        fd = child
    return fd


def _is_dir(root_fd: int, rel: str) -> bool:
    with _parent(root_fd, rel) as opened:
        if opened is None:
            return False
        fd, name = opened
        try:
            return stat.S_ISDIR(os.lstat(name, dir_fd=fd).st_mode)
        except OSError:
            return False


def _remove_file(root_fd: int, rel: str, rec: Optional[MemberRecord]) -> bool:
    with _parent(root_fd, rel) as opened:
        if opened is None:
            return False
        fd, name = opened
        try:
            st = os.lstat(name, dir_fd=fd)
        except OSError:
            return False
        if rec is not None:
            try:
                target = os.readlink(name, dir_fd=fd) if stat.S_ISLNK(st.st_mode) else None
            except FileNotFoundError:
                return False
            if not rec.matches(st, target):
                return False  # replaced or changed since that extraction: not ours any more
        elif not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            return False
        try:
            os.unlink(name, dir_fd=fd)
        except FileNotFoundError:
            return False
        return True


def remove_folders(dest: Union[str, "os.PathLike[str]"], folders: Sequence[MemberRecord],
                   keep: set[str], lock_dir: Optional[Union[str, "os.PathLike[str]"]] = None
                   ) -> int:
    """Remove the folders an earlier extraction into ``dest`` made (``folders``: their
    records, :attr:`ExtractResult.made`) that are empty now, deepest first, each only while
    it is still that very folder (its inode: one the user made at that path since is
    theirs), reached through real folders of DEST; paths in ``keep`` stay. Returns how many
    went. Runs under the merge lock of ``lock_dir`` (default ``dest``)."""
    root = os.path.abspath(os.fspath(dest))
    todo = [f for f in folders if f.kind == "dir" and f.path not in keep]
    if not todo or not os.path.isdir(root):
        return 0
    with merge_lock(os.path.abspath(os.fspath(lock_dir)) if lock_dir is not None else root):
        root_fd = -1
        try:
            with deferred():  # see _parent
                root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            return sum(_remove_empty_folder(root_fd, f.path, f.ino) for f in
                       sorted(todo, key=lambda f: (f.path.count("/"), f.path), reverse=True))
        finally:
            if root_fd >= 0:
                os.close(root_fd)


def _remove_empty_folder(root_fd: int, rel: str, ino: int = 0) -> int:
    with _parent(root_fd, rel) as opened:
        if opened is None:
            return 0
        fd, name = opened
        try:
            if ino and os.lstat(name, dir_fd=fd).st_ino != ino:
                return 0   # (another folder now: not the one that extraction made)
            os.rmdir(name, dir_fd=fd)  # only when empty; a link is never removed as a folder
            return 1
        except OSError:
            return 0
