"""Which folder of DEST in the way of a new member an earlier extraction owns outright.

An update whose archive has a file (or link) where the previous version had a folder - v1
``ds/a/x``, v2 a file ``ds/a`` - meets the folder v1's extraction made. The merge never
replaces a folder of DEST (it could hold anything of the user's), except one that is exactly
what the earlier extraction of that archive wrote: the folder and everything below it
recorded by that extraction (:class:`~drivestage.extract.records.MemberRecord`, files and
links still the very ones it wrote: kind, size, mtime, inode), nothing else inside. The
caller passes those records (the stale ones of its stamp, less what other stamps list).
"""
from __future__ import annotations

import os
import posixpath
import stat
from dataclasses import dataclass
from types import MappingProxyType
from typing import Iterable, Mapping, Optional, Protocol, Sequence

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Record(Protocol):
    """What is read of a :class:`~drivestage.extract.records.MemberRecord` (records.py sits
    above the merge, which asks this module)."""

    @property
    def path(self) -> str: ...

    @property
    def kind(self) -> str: ...

    def matches(self, st: os.stat_result, target: Optional[str] = None) -> bool: ...


#: The records of an earlier extraction by path (a path may have a record per version).
Owned = Mapping[str, Sequence[Record]]
#: No records: no folder of DEST is replaced.
NOTHING: Owned = MappingProxyType({})


def by_path(records: Iterable[Record]) -> dict[str, list[Record]]:
    """The records as :data:`Owned`, with the folders that hold them: an extraction records
    only the folders an archive lists, and most list none (``ds/a/x`` alone makes ``ds/a``).
    A folder that held something else stays unowned all the same: what is inside decides."""
    out: dict[str, list[Record]] = {}
    for r in records:
        out.setdefault(r.path, []).append(r)
    for path in list(out):
        parent = posixpath.dirname(path)
        while parent and not any(r.kind == "dir" for r in out.get(parent, ())):
            out.setdefault(parent, []).append(_Folder(parent))
            parent = posixpath.dirname(parent)
    return out


@dataclass(frozen=True)
class _Folder:
    """A folder that holds recorded members (judged by what is inside it)."""

    path: str
    kind: str = "dir"

    def matches(self, st: os.stat_result, target: Optional[str] = None) -> bool:
        return stat.S_ISDIR(st.st_mode)


def own_folder(parent_fd: int, name: str, rel: str, owned: Owned) -> Optional[bool]:
    """Whether the folder ``name`` of ``parent_fd`` (at ``rel`` in DEST) and all it holds are
    what the earlier extraction wrote: None when not (anything else inside, a file changed
    since, not a folder), else whether it holds links (their removal changes where paths
    lead). Never goes through a link; reads no more entries than ``owned`` has."""
    if not any(r.kind == "dir" for r in owned.get(rel, ())):
        return None
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError:
        return None
    try:
        return _walk(fd, rel, owned)
    finally:
        os.close(fd)


def _walk(fd: int, rel: str, owned: Owned) -> Optional[bool]:
    links = False
    try:
        with os.scandir(fd) as entries:  # read as judged: the first stranger ends it
            for entry in entries:
                child = f"{rel}/{entry.name}"
                recs = owned.get(child, ())
                if not recs:
                    return None  # not that extraction's: the user's, or another archive's
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    inner = own_folder(fd, entry.name, child, owned)
                    if inner is None:
                        return None
                    links = links or inner
                    continue
                target = os.readlink(entry.name, dir_fd=fd) if stat.S_ISLNK(st.st_mode) \
                    else None
                if not any(r.kind != "dir" and r.matches(st, target) for r in recs):
                    return None  # edited, or put back by someone else since
                links = links or target is not None
    except OSError:
        return None
    return links
