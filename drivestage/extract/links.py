"""Symlinks judged against DEST as it will be after a merge (run under the merge lock).

A path is resolved the way ``os.path.realpath`` does it: a link is followed (its target read
from the folder that holds it), anything else - folder, file, nothing yet - is taken as a
plain name. Only links change where a path leads, so "leads inside DEST" judged this way stays
true whatever folders and files later appear, vanish or swap, until a link changes: and every
extraction that adds or replaces a link re-judges the links already in DEST.
"""
from __future__ import annotations

import os
import posixpath
import stat
from collections import deque
from typing import Iterator, Optional

from drivestage.errors import UnsafeArchiveError
from drivestage.extract.members import Entry
from drivestage.extract.validation import is_reserved

_MAX_HOPS = 40  # the kernel's limit too: more links in a row resolve nowhere (ELOOP)


class View:
    """DEST as it is now (``tree`` None), or as it will be once ``tree`` (the archive's paths,
    implied folders included) is merged; ``kept`` are the archive's folders that merge into a
    real folder of DEST, so that DEST's other entries below them stay."""

    def __init__(self, dest: str, tree: Optional[dict[str, Entry]] = None,
                 kept: frozenset[str] = frozenset()):
        self.dest, self.tree, self.kept = dest, tree, kept
        self.roots = {os.path.normpath(dest), os.path.realpath(dest)}
        self._cache: dict[str, Optional[str]] = {}
        self._near: dict[str, str] = {}

    def link_target(self, rel: str) -> Optional[str]:
        """The target of the link at ``rel``, or None when ``rel`` is not a link."""
        if rel not in self._cache:
            self._cache[rel] = self._lookup(rel)
        return self._cache[rel]

    def _lookup(self, rel: str) -> Optional[str]:
        if self.tree is not None:
            e = self.tree.get(rel)
            if e is not None:
                return e.target if e.kind == "symlink" else None
            parent = self._nearest(posixpath.dirname(rel))
            if parent and parent not in self.kept:
                return None  # below a folder the archive brings whole: DEST's old entry is gone
        full = os.path.join(self.dest, rel)
        try:
            if not stat.S_ISLNK(os.lstat(full).st_mode):
                return None
            return os.readlink(full)
        except OSError:
            return None

    def _nearest(self, folder: str) -> str:
        """``folder`` or its nearest folder above that the archive has ("" if none), each
        answer kept: a link's target is resolved a name at a time, each name one level
        deeper, and the walk up from each took time in the square of the depth (2,047
        names: 2 million steps a link; attackpull33)."""
        assert self.tree is not None
        chain = []
        while folder and folder not in self.tree and folder not in self._near:
            chain.append(folder)
            folder = posixpath.dirname(folder)
        found = self._near.get(folder, folder)   # ("" above all, a folder of the tree)
        for f in chain:
            self._near[f] = found
        return found

    def inside_parts(self, target: str) -> Optional[list[str]]:
        """An absolute target as names below DEST, or None when it is elsewhere (an absolute
        path that leaves DEST and comes back through other links counts as elsewhere)."""
        norm = os.path.normpath(target)
        for root in self.roots:
            if norm == root:
                return []
            if norm.startswith(root.rstrip("/") + "/"):
                return norm[len(root.rstrip("/")) + 1:].split("/")
        return None


def resolves_inside(view: View, path: str, target: str) -> tuple[bool, str]:
    """Whether the link at ``path`` with ``target`` leads inside DEST in ``view`` (or nowhere:
    a loop), and the last link followed on the way (for messages)."""
    pos = path.split("/")[:-1]
    pending = deque(target.split("/"))
    hops, via = 0, ""
    while pending:
        part = pending.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            if not pos:
                return False, via
            pos.pop()
            continue
        rel = "/".join(pos + [part])
        link = view.link_target(rel)
        if link is None:
            pos.append(part)
            continue
        hops += 1
        if hops > _MAX_HOPS:
            return True, via
        via = rel
        if link.startswith("/"):
            inner = view.inside_parts(link)
            if inner is None:
                return False, via
            pos = []
            pending.extendleft(reversed(inner))
        else:
            pending.extendleft(reversed(link.split("/")))
    return True, via


def existing_links(dest: str) -> Iterator[str]:
    """The symlinks below DEST (not followed), drivestage's own folders left out."""
    stack = [""]
    while stack:
        rel = stack.pop()
        try:
            with os.scandir(os.path.join(dest, rel) if rel else dest) as it:
                entries = list(it)
        except OSError:
            continue
        for entry in entries:
            if is_reserved(entry.name):
                continue
            child = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_symlink():
                yield child
            elif entry.is_dir(follow_symlinks=False):
                stack.append(child)


def judge_links(archive: str, dest: str, entries: list[Entry], tree: dict[str, Entry],
                kept: frozenset[str], replaces_links: bool) -> None:
    """Refuse the archive unless every link it brings leads inside DEST once merged, and every
    link already in DEST that leads inside still does (see the module docstring)."""
    after = View(dest, tree, kept)
    new_links = [e for e in entries if e.kind == "symlink"]
    for e in new_links:
        ok, via = resolves_inside(after, e.path, e.target)
        if not ok:
            where = f" through {os.path.join(dest, via)}" if via and via != e.path else ""
            raise UnsafeArchiveError(
                f"symlink member {e.path!r} points to {e.target!r}, which "
                f"resolves outside the destination{where}; refusing the archive")
    if not new_links and not replaces_links:
        return  # only links change where a path leads
    before = View(dest)
    for rel in existing_links(dest):
        target = before.link_target(rel)
        if target is None or after.link_target(rel) != target:
            continue  # replaced by the archive (and judged above if it is a link)
        if not resolves_inside(before, rel, target)[0]:
            continue  # already leads elsewhere: the user's own link, never followed here
        if not resolves_inside(after, rel, target)[0]:
            raise UnsafeArchiveError(
                f"{os.path.basename(archive)}: once its members are in place, the link "
                f"{os.path.join(dest, rel)} (-> {target}) "
                "already in the destination would resolve outside it; refusing the archive")
