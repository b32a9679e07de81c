"""Member names: cleaned (:func:`clean_name`), their folders (:func:`ancestors`), and the
bounds a name is held to as it is listed, before any folder of it is made in memory
(:func:`check_reach`, :func:`new_folders`; split from :mod:`drivestage.extract.members` at
its line cap)."""
from __future__ import annotations

import os
import re
import sys
from typing import Iterable

from drivestage.errors import ArchiveError, UnsafeArchiveError

#: Folders a member may lie below. The merge into DEST's folders and the judging of a
#: replaceable folder go one call and two descriptors per level: 1,500 levels (a 3 KB path,
#: well under PATH_MAX) raised RecursionError halfway through a merge. A few hundred stay
#: far inside Python's recursion limit and a process's 1,024 descriptors.
DEPTH_MAX = 256
#: The longest path the kernel takes, in bytes (Linux's PATH_MAX less its NUL). 256 folders
#: of 255 bytes are 64 KiB: a member of a 4,100-byte path in DEST was merged in, and every
#: look at it by its path then failed (attackpull33).
PATH_MAX = 4095
#: How many sets of an archive's folders an extraction holds at once at its peak (the
#: checks', the merge plan's, the writing's: 3.4 measured, a set's slots with them), each a
#: string of the folder's whole path: what :func:`new_folders` charges a folder.
FOLDER_COPIES = 4
_SLOT = 50   # (a set's slot and its share of the table, in bytes)


_DRIVE_LETTER = re.compile(r"^[A-Za-z]:")


def ancestors(paths: Iterable[str]) -> set[str]:
    """Every folder above the clean member paths ``paths`` (``a`` and ``a/b`` for
    ``a/b/c``): one string split per path, as members of a folder share its ancestors."""
    out: set[str] = set()
    for path in paths:
        parent = path.rpartition("/")[0]
        while parent and parent not in out:  # once there, so are all above it
            out.add(parent)
            parent = parent.rpartition("/")[0]
    return out


def clean_name(raw: str, what: str = "member") -> str:
    """Normalise a member name to ``a/b/c``; refuse anything that could leave DEST."""
    if "\0" in raw:
        raise UnsafeArchiveError(f"{what} {raw!r} has a NUL byte in its name; refusing the archive")
    framed = f"/{raw}/"  # no part "", "." or "..", no "\\": already clean (nearly all names)
    if "//" not in framed and "/./" not in framed and "/../" not in framed and \
            "\\" not in raw and not _DRIVE_LETTER.match(raw):
        return raw
    name = raw.replace("\\", "/")
    if name.startswith("/") or _DRIVE_LETTER.match(name):
        raise UnsafeArchiveError(
            f"{what} {raw!r} has an absolute path; refusing to extract an archive that "
            "writes outside the destination")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(
            f"{what} {raw!r} contains '..' and could write outside the destination "
            "(zip-slip); refusing the archive")
    return "/".join(parts)


def check_reach(path: str, archive: str) -> None:
    """Refuse the clean member path ``path`` as it is listed where no extraction could take
    it: deeper than :data:`DEPTH_MAX` folders, or longer than :data:`PATH_MAX` bytes. The
    checks of the whole list judge it so too, but after its folders are made in memory: one
    member 20,000 folders deep (a tar.gz of 210 bytes) took 417 MB first; a 1 MiB pax name,
    250 GB (attack47)."""
    depth = path.count("/")
    if depth > DEPTH_MAX:
        raise ArchiveError(
            f"member {path[:80]!r}... of {os.path.basename(archive)} lies {depth} folders "
            f"deep; drivestage extracts members at most {DEPTH_MAX} folders deep: flatten "
            "it in the archive")
    size = len(path) if path.isascii() else len(os.fsencode(path))
    if size > PATH_MAX:
        raise ArchiveError(
            f"member {path[:80]!r}... of {os.path.basename(archive)} is a {size:,}-byte path, "
            f"longer than the {PATH_MAX:,} bytes Linux takes: shorten its folder names in "
            "the archive")


def new_folders(path: str, seen: set[str]) -> int:
    """The memory the folders above ``path`` not in ``seen`` take in an extraction (each
    its whole path, :data:`FOLDER_COPIES` times): added to ``seen``. A dataset's members
    share a few folders (none new but for the first of each); a member of folders of its
    own costs its depth times its length (5,000 members in 19 folders of 200 bytes each, a
    tar.gz of 416 KB, took 690 MB: attack47)."""
    cost = 0
    parent = path.rpartition("/")[0]
    while parent and parent not in seen:   # (once there, so are all above it)
        seen.add(parent)
        cost += sys.getsizeof(parent) + _SLOT
        parent = parent.rpartition("/")[0]
    return cost * FOLDER_COPIES
