"""Parse the paths users type: ``drive:a/b/c.zip``, ``drive:id:<ID>``,
``drive:shared/<shared drive>/a/b``, and plain local paths.

* ``drive:a/b/c.zip`` starts at the root of My Drive (``drive:`` alone is that root);
* ``drive:id:<ID>`` is one file or folder by id; ``drive:id:<FOLDER_ID>/a/b`` walks on from it
  (``drive:id:root/shared/x`` reaches a My Drive folder that happens to be called "shared");
* ``drive:shared/<name>/a/b`` starts at the root of the shared drive called ``<name>``.

Names are exact and case-sensitive (Drive's own title queries are not: the store filters).
Repeated slashes collapse; ``.`` and ``..`` are refused because Drive has no such links.
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Iterable, Optional

from drivestage.errors import UsageError

PREFIX = "drive:"
_ID_RE = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class StorePath:
    """A path inside one store, parsed: an id to start from (None: the store's root), then
    names below it. ``str()`` gives the text form (``a/b`` or ``id:X/a/b``)."""

    start: Optional[str] = None
    names: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> "StorePath":
        """``a/b`` or ``id:X/a/b``; ``.``/``..`` and bad ids are refused (UsageError)."""
        start, names = split_store_path(text)
        return cls(start, names)

    @property
    def name(self) -> Optional[str]:
        """The last name (None for a bare root or id)."""
        return self.names[-1] if self.names else None

    def child(self, name: str) -> "StorePath":
        """This path with one more name."""
        return StorePath(self.start, self.names + (name,))

    def __str__(self) -> str:
        rel = "/".join(self.names)
        if self.start is not None:
            return f"id:{self.start}" + (f"/{rel}" if rel else "")
        return rel


@dataclass(frozen=True)
class DrivePath:
    """A parsed ``drive:`` path."""

    anchor: str                       # "root", "id" or "shared"
    parts: tuple[str, ...] = ()       # names below the anchor
    file_id: Optional[str] = None     # for anchor "id"
    shared_drive: Optional[str] = None  # for anchor "shared"
    trailing_slash: bool = False      # the user wrote ".../" (a folder is meant)

    @property
    def name(self) -> Optional[str]:
        """The last name in the path (None for a bare root, id or shared drive)."""
        return self.parts[-1] if self.parts else None

    @property
    def store_path(self) -> StorePath:
        """The path inside the store the anchor opens (My Drive, or the shared drive)."""
        return StorePath(self.file_id if self.anchor == "id" else None, self.parts)

    def child(self, name: str) -> "DrivePath":
        """This path with one more name appended."""
        return DrivePath(self.anchor, self.parts + (name,), self.file_id, self.shared_drive)

    def __str__(self) -> str:
        rel = "/".join(self.parts)
        if self.anchor == "id":
            return PREFIX + str(self.store_path)
        if self.anchor == "shared":
            return f"{PREFIX}shared/{self.shared_drive}" + (f"/{rel}" if rel else "")
        return PREFIX + rel


def is_drive(spec: str) -> bool:
    """True for a ``drive:`` spec (anything else is a local path)."""
    return isinstance(spec, str) and spec.startswith(PREFIX)


def split_names(rel: str, spec: str) -> tuple[str, ...]:
    """``a//b/c/`` -> ``("a", "b", "c")``; ``.``/``..`` refused with the spec in the message."""
    parts = tuple(p for p in rel.split("/") if p != "")
    for part in parts:
        if part in (".", ".."):
            raise UsageError(f"{spec!r}: '{part}' is not allowed in a Drive path; "
                             "write the full path from the root")
    return parts


def parse(spec: str) -> DrivePath:
    """Parse a ``drive:`` spec; raises UsageError naming the spec and the accepted forms."""
    if not is_drive(spec):
        raise UsageError(f"{spec!r} is not a Drive path; use drive:a/b/c.zip, drive:id:<ID> "
                         "or drive:shared/<shared drive>/a/b")
    rest = spec[len(PREFIX):]
    trailing = rest.endswith("/")
    if rest.startswith("id:"):
        ident, _, rel = rest[3:].partition("/")
        if not ident:
            raise UsageError(f"{spec!r}: missing file id; use drive:id:<FILE_ID>")
        if not _ID_RE.match(ident):
            raise UsageError(f"{spec!r}: {ident!r} is not a Drive file id "
                             "(letters, digits, '-' and '_' only)")
        return DrivePath("id", split_names(rel, spec), file_id=ident, trailing_slash=trailing)
    stripped = rest.lstrip("/")
    if stripped == "shared" or stripped.startswith("shared/"):
        name, _, rel = stripped[len("shared/"):].partition("/")
        if not name:
            raise UsageError(f"{spec!r}: missing shared drive name; use "
                             "drive:shared/<shared drive name>/path")
        return DrivePath("shared", split_names(rel, spec), shared_drive=name,
                         trailing_slash=trailing)
    return DrivePath("root", split_names(stripped, spec), trailing_slash=trailing)


def split_store_path(path: str) -> tuple[Optional[str], tuple[str, ...]]:
    """A store-relative path (``a/b`` or ``id:X/a/b``) -> ``(start id or None, names)``."""
    if path.startswith("id:"):
        ident, _, rel = path[3:].partition("/")
        if not ident or not _ID_RE.match(ident):
            raise UsageError(f"{path!r}: not a Drive file id; use id:<FILE_ID>")
        return ident, split_names(rel, path)
    return None, split_names(path, path)


def matches(rel: str, patterns: Iterable[str]) -> bool:
    """Whether ``rel`` (``a/b/c.txt``) or its last name matches one of the glob ``patterns``
    (case-sensitive, as Drive names are): the rule of ``--include`` / ``--exclude``."""
    base = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(base, p) for p in patterns)
