"""The rules a member list must pass before anything is written (see the package docstring).

Only the archive is looked at here; what depends on DEST (a file where DEST has a folder,
links judged against DEST's own links) is checked again under the merge lock, in
:mod:`.merging` and :mod:`.links`.
"""
from __future__ import annotations

import functools
import logging
import os
import posixpath
import re
from typing import Callable, Optional

from drivestage import temps
from drivestage.errors import ArchiveError, UnsafeArchiveError
# (Kept in drivestage.paths, below the push's walk too, which leaves them out: attack28.)
from drivestage.paths import STATE_DIR as STATE_DIR
from drivestage.paths import is_reserved as is_reserved
from drivestage.extract.members import Entry, ancestors
from drivestage.extract.names import DEPTH_MAX as DEPTH_MAX, PATH_MAX as _PATH_MAX

log = logging.getLogger(__name__)

_NAME_MAX = 255           # bytes in one path component, on every common file system
# DEPTH_MAX (folders a member may lie below) and _PATH_MAX (the longest path the kernel
# takes, in bytes): see drivestage.extract.names, where a member is held to them as listed.
#: The most names (``..`` or a folder's) a symlink member's target may hold: up as far as a
#: member lies, then down as far. Judging a link follows its target a name at a time: 2,047
#: names (``x/x/…``, 4 KB) took 3.5 s of CPU a link (attackpull33).
_TARGET_NAMES = 2 * DEPTH_MAX + 1


def check_members(entries: list[Entry], archive: str) -> list[Entry]:
    """The final member list: the last member of a name wins (tar semantics), and every rule
    that needs only the archive holds; raises :class:`UnsafeArchiveError` or
    :class:`ArchiveError` naming the member otherwise."""
    by_path: dict[str, Entry] = {}
    named_early: set[int] = set()   # the hard links whose target's name came before them
    for e in entries:
        if not e.path:
            continue  # the archive root ("./")
        if e.kind == "hardlink" and e.target in by_path:
            named_early.add(id(e))
        by_path.pop(e.path, None)
        by_path[e.path] = e
    final = _without_leftovers(list(by_path.values()), archive)
    # No list-sized map beside by_path (a member's place, the files, the leaves: 0.2 KB a
    # member at the peak): a leaf is a member of by_path but a folder or a leftover, and
    # places and files are kept only for archives with hard links.
    dropped = {e.path for e in by_path.values()} - {e.path for e in final} \
        if len(final) < len(by_path) else set()

    def leaf(path: str) -> Optional[Entry]:
        e = by_path.get(path)
        return e if e is not None and e.kind != "dir" and path not in dropped else None

    hardlinked = any(e.kind == "hardlink" for e in final)
    after = {e.path: i for i, e in enumerate(final)} if named_early else {}  # (last place)
    links = {e.path for e in final if e.kind == "symlink"}
    # A member below a link or a file: rare, and only those folders matter, so each folder
    # is judged once (its highest folder that is a leaf, or none), whatever the depth.
    below_leaf = _BelowLeaf({p for p in ancestors(by_path) if leaf(p) is not None})
    seen_files: set[str] = set()
    names = _NameChecker(archive)
    for e in final:
        names.check(e)
        prefix = below_leaf(e.path.rpartition("/")[0]) if below_leaf.leaves else None
        if prefix in links:
            raise UnsafeArchiveError(
                f"member {e.path!r} would be written through the symlink member {prefix!r}; "
                "refusing the archive")
        if prefix is not None:
            raise ArchiveError(f"member {e.path!r} needs {prefix!r} to be a folder, but the "
                               "archive also has a file of that name; the archive is inconsistent")
        if e.kind == "symlink":
            check_link_target(e.path, e.target)
        elif e.kind == "hardlink":
            if id(e) in named_early and after.get(e.target, -1) > after[e.path]:
                raise UnsafeArchiveError(   # (its file was the earlier member: not kept)
                    f"hard link member {e.path!r} points to {e.target!r}, which a later "
                    "member of that name replaces (a tar appended to: tar -r or -u); refusing "
                    "the archive: make it again (tar -c) and upload it")
            target = leaf(e.target)
            if e.target not in seen_files or target is None or target.kind != "file":
                raise UnsafeArchiveError(
                    f"hard link member {e.path!r} points to {e.target!r}, which is not a file "
                    "earlier in the archive; refusing the archive")
        if e.kind == "file" and hardlinked:
            seen_files.add(e.path)
    return final


def check_path_lengths(entries: list[Entry], dest: str, archive: str) -> None:
    """Refuse a member whose path in ``dest`` (absolute) is longer than the kernel takes:
    the merge moved it in, then the check of what was merged failed as "changed while …
    was extracted (another program or pull wrote there)", and every rerun "File name too
    long", with a 4 KB line; what was merged stayed."""
    base = len(os.fsencode(dest)) + 1
    for e in entries:
        size = base + (len(e.path) if e.path.isascii() else len(os.fsencode(e.path)))
        if size > _PATH_MAX:
            raise ArchiveError(
                f"member {e.path[:80]!r}... of {os.path.basename(archive)} would be a "
                f"{size:,}-byte path in {dest}, longer than the {_PATH_MAX:,} bytes Linux "
                "takes: shorten its folder names in the archive")


def _without_leftovers(final: list[Entry], archive: str) -> list[Entry]:
    """``final`` less the files named like an atomic write's temporary file
    (:mod:`drivestage.temps`): the leftover of a write killed where the archive was made (a
    data root zipped whole). Extracted, the next atomic write into its folder here (the
    trainer's annotation lines, at every start) removed it as a dead process's, and every
    pull then put it back: with ``--remove-archive``, by downloading the whole archive."""
    out = [e for e in final if e.kind not in ("file", "hardlink") or
           temps.parse(e.path.rpartition("/")[2]) is None]
    if len(out) < len(final):
        first = next(e.path for e in final if e not in out)
        more = len(final) - len(out) - 1
        log.warning("left out member %r of %s: the temporary file of a write that was "
                    "interrupted where the archive was made, not part of the data (the next "
                    "write into its folder removes such a leftover)%s", first, archive,
                    f"; and {more} more like it" if more else "")
    return out


class _BelowLeaf:
    """For a folder of the archive, its highest folder (itself included) that is also a
    member other than a folder (``leaves``), or None: each folder's answer comes from its
    parent's, so a list of paths a few hundred deep costs one look per folder, not one per
    folder of every member (0.5 ms a member at 256 deep)."""

    def __init__(self, leaves: set[str]):
        self.leaves = leaves
        self.known: dict[str, Optional[str]] = {"": None}

    def __call__(self, folder: str) -> Optional[str]:
        chain = []
        while folder not in self.known:
            chain.append(folder)
            folder = folder.rpartition("/")[0]
        above = self.known[folder]
        for path in reversed(chain):  # from the top down
            if above is None and path in self.leaves:
                above = path
            self.known[path] = above
        return above


def check_names(e: Entry, archive: str) -> None:
    """The rules on one member's name (reserved names, length, depth)."""
    parts = e.path.split("/")
    _check_parts(e, parts, archive)
    _check_depth(e, len(parts) - 1, archive)


class _NameChecker:
    """:func:`check_names` for a whole list: a folder's names are judged once, for the first
    member below it (the members of a folder share them)."""

    def __init__(self, archive: str):
        self.archive = archive
        self.folders_ok: set[str] = set()

    def check(self, e: Entry) -> None:
        """:func:`check_names` of ``e``: the same error for the same member."""
        folder, _, name = e.path.rpartition("/")
        new = folder not in self.folders_ok
        parts = folder.split("/") if new and folder else []
        _check_parts(e, parts, self.archive)
        _check_parts(e, [name], self.archive, _judge_part.__wrapped__)  # names are unique
        if new:
            _check_depth(e, len(parts), self.archive)
            self.folders_ok.add(folder)


def _check_parts(e: Entry, parts: list[str], archive: str,
                 judge: Optional[Callable[[str], tuple[bool, int]]] = None) -> None:
    for part in parts:
        reserved, size = (judge or _judge_part)(part)
        if reserved:
            # (What to do said too: a data root zipped whole holds the stamps of the pulls
            # into it and the trainer's .drivestage-trainer/.)
            raise UnsafeArchiveError(
                f"member {e.path!r} uses the name {part!r}, "
                "which drivestage keeps for its own state (stamps, locks, temporary folders, "
                "partial downloads, the trainer's files); refusing the archive: rename that "
                "member, or make the archive again without those folders (a data root "
                "zipped whole holds them: zip -r data.zip data -x '*/.drivestage*')")
        if size > _NAME_MAX:
            raise ArchiveError(
                f"member {e.path[:80]!r}... of {os.path.basename(archive)} has a {size}-byte name; "
                f"file systems allow {_NAME_MAX} bytes: shorten it in the archive")


def _check_depth(e: Entry, depth: int, archive: str) -> None:
    if depth > DEPTH_MAX:
        raise ArchiveError(
            f"member {e.path[:80]!r}... of {os.path.basename(archive)} lies {depth} folders "
            f"deep; drivestage extracts members at most {DEPTH_MAX} folders deep: flatten "
            "it in the archive")


@functools.lru_cache(maxsize=4096)
def _judge_part(part: str) -> tuple[bool, int]:
    # (reserved?, bytes): folder names repeat in every member below them, so most parts of a
    # 20,000-member list were judged already.
    return is_reserved(part), len(part) if part.isascii() else len(os.fsencode(part))


def check_link_target(path: str, target: str) -> None:
    """A symlink member's target: relative, and of the form ``../`` (any number) then names
    only, staying inside DEST when read from the link's folder. A target that climbs after
    it descended (``d/up/..``) is refused even when it looks harmless: once ``d/up`` is a link
    (from this archive, another one, or the user), ``..`` leaves from wherever that leads."""
    size = len(os.fsencode(target))
    if size > _PATH_MAX:   # (os.symlink's ENAMETOOLONG named all of it: a line of 4 KB+)
        raise ArchiveError(
            f"symlink member {path[:80]!r} points to {target[:80]!r}..., a {size:,}-byte "
            f"target, longer than the {_PATH_MAX:,} bytes Linux takes; the archive is "
            "corrupt: make it again and upload it")
    names = sum(1 for part in target.split("/") if part not in ("", "."))
    if names > _TARGET_NAMES:   # (each is a step of the resolution: links.resolves_inside)
        raise ArchiveError(
            f"symlink member {path[:80]!r} points to {target[:80]!r}..., a target of "
            f"{names:,} names, more than the {_TARGET_NAMES:,} drivestage follows (up "
            f"{DEPTH_MAX} folders, then down {DEPTH_MAX}); the archive is corrupt: make it "
            "again and upload it")
    if not target or "\0" in target or target.startswith("/") or \
            re.match(r"^[A-Za-z]:", target):
        raise UnsafeArchiveError(
            f"symlink member {path!r} points to {target!r}, outside the destination; "
            "refusing the archive")
    descended = False
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if is_reserved(part):
            raise UnsafeArchiveError(
                f"symlink member {path!r} points into {part!r}, "
                "which drivestage keeps for its own state; refusing the archive")
        if part != "..":
            descended = True
        elif descended:
            raise UnsafeArchiveError(
                f"symlink member {path!r} points to {target!r}, which "
                "goes back up ('..') after entering a folder: "
                "through other links that can lead outside the destination; "
                "refusing the archive (write the target without the detour)")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    if resolved == ".." or resolved.startswith("../"):
        raise UnsafeArchiveError(
            f"symlink member {path!r} points to {target!r}, outside the destination; "
            "refusing the archive")
