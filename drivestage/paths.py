"""Parse the paths users type: ``drive:a/b/c.zip``, ``drive:id:<ID>``,
``drive:shared/<shared drive>/a/b``, ``drive:shared-with-me/<name>/a``, Drive sharing links,
and plain local paths.

* ``drive:a/b/c.zip`` starts at the root of My Drive (``drive:`` alone is that root);
* ``drive:id:<ID>`` is one file or folder by id; ``drive:id:<FOLDER_ID>/a/b`` walks on from it
  (``drive:id:root/shared/x`` reaches a My Drive folder that happens to be called "shared");
  ``drive:id:<ID>:<RESOURCE_KEY>`` adds the resource key an item link-shared before 2021
  needs (the ``resourcekey=`` of its link);
* ``drive:shared/<name>/a/b`` starts at the root of the shared drive called ``<name>``;
* ``drive:shared-with-me/<name>/a`` starts at the item called ``<name>`` in "Shared with me"
  (shared with you, not added to My Drive);
* a sharing link, ``https://drive.google.com/file/d/<ID>/view?usp=sharing``,
  ``.../open?id=<ID>`` or ``.../drive/folders/<ID>`` (or the Download button's
  ``https://drive.usercontent.google.com/download?id=<ID>``), with or without
  ``resourcekey=<KEY>``, is ``drive:id:<ID>[:<KEY>]``; any other web address is refused.

Names are exact and case-sensitive (Drive's own title queries are not: the store filters).
Repeated slashes collapse; ``.`` and ``..`` are refused because Drive has no such links.
"""
from __future__ import annotations

import fnmatch
import os
import re
import sys
import unicodedata
import urllib.parse
from dataclasses import dataclass
from typing import Iterable, Optional

from drivestage.errors import UsageError

PREFIX = "drive:"
#: `\Z`, not `$` (which also matches before a final newline: an id or key ending in one
#: would go into a URL or a header line).
_ID_RE = re.compile(r"^[A-Za-z0-9_-]+\Z")
#: Longest id or resource key accepted (Drive's are a few dozen characters): a longer one is
#: a mistake, and would be echoed whole into every message about it.
MAX_ID = 200
#: The hosts of Drive's sharing links (drive.usercontent.google.com: Drive's Download button).
_LINK_HOSTS = ("drive.google.com", "docs.google.com", "drive.usercontent.google.com")
_LINK_RE = re.compile(r"^https?://(www\.)?(drive|docs|drive\.usercontent)\.google\.com(/|$)",
                      re.I)
#: Any web address (``scheme://``): never a local path, even when it is no Drive link.
_WEB_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")
#: What the messages list as accepted forms.
FORMS = ("drive:a/b/c.zip, drive:id:<ID>[:<RESOURCE_KEY>], drive:shared/<shared drive>/a/b, "
         "drive:shared-with-me/<name>/a or a Drive sharing link")


@dataclass(frozen=True)
class StorePath:
    """A path inside one store, parsed: an id to start from (None: the store's root), then
    names below it. ``str()`` gives the text form (``a/b`` or ``id:X/a/b``)."""

    start: Optional[str] = None
    names: tuple[str, ...] = ()
    #: The resource key of ``start`` (an item link-shared before 2021), when known.
    key: Optional[str] = None

    @classmethod
    def parse(cls, text: str) -> "StorePath":
        """``a/b`` or ``id:X/a/b``; ``.``/``..`` and bad ids are refused (UsageError)."""
        start, names, key = _split(text)
        return cls(start, names, key)

    @property
    def name(self) -> Optional[str]:
        """The last name (None for a bare root or id)."""
        return self.names[-1] if self.names else None

    def child(self, name: str) -> "StorePath":
        """This path with one more name."""
        return StorePath(self.start, self.names + (name,), self.key)

    def __str__(self) -> str:
        rel = "/".join(self.names)
        if self.start is not None:
            key = f":{self.key}" if self.key else ""
            return f"id:{self.start}{key}" + (f"/{rel}" if rel else "")
        return rel


@dataclass(frozen=True)
class DrivePath:
    """A parsed ``drive:`` path."""

    anchor: str                       # "root", "id", "shared" or "shared-with-me"
    parts: tuple[str, ...] = ()       # names below the anchor
    file_id: Optional[str] = None     # for anchor "id"
    shared_drive: Optional[str] = None  # for anchor "shared"
    trailing_slash: bool = False      # the user wrote ".../" (a folder is meant)
    resource_key: Optional[str] = None  # for anchor "id": the item's resource key

    @property
    def name(self) -> Optional[str]:
        """The last name in the path (None for a bare root, id or shared drive)."""
        return self.parts[-1] if self.parts else None

    @property
    def store_path(self) -> StorePath:
        """The path inside the store the anchor opens (My Drive, or the shared drive)."""
        if self.anchor == "id":
            return StorePath(self.file_id, self.parts, self.resource_key)
        return StorePath(None, self.parts)

    def child(self, name: str) -> "DrivePath":
        """This path with one more name appended."""
        return DrivePath(self.anchor, self.parts + (name,), self.file_id, self.shared_drive,
                         resource_key=self.resource_key)

    def __str__(self) -> str:
        rel = "/".join(self.parts)
        if self.anchor == "id":
            return PREFIX + str(self.store_path)
        if self.anchor == "shared":
            return f"{PREFIX}shared/{self.shared_drive}" + (f"/{rel}" if rel else "")
        if self.anchor == "shared-with-me":
            return f"{PREFIX}shared-with-me" + (f"/{rel}" if rel else "/")
        return PREFIX + rel


def is_drive(spec: str) -> bool:
    """True for a ``drive:`` spec or a Drive sharing link (anything else is a local path)."""
    return isinstance(spec, str) and (spec.startswith(PREFIX) or is_link(spec))


def is_link(spec: str) -> bool:
    """True for an address on drive.google.com or docs.google.com (a sharing link)."""
    return isinstance(spec, str) and bool(_LINK_RE.match(spec.strip()))


def refuse_web_address(spec: str) -> None:
    """UsageError for a web address that is not a Drive link: taken for a local path, a push
    would write into ``./https:/<host>/...`` and report it uploaded."""
    if _WEB_RE.match(spec.strip()) and not is_link(spec):
        raise UsageError(f"{_shown(spec)} is a web address but not a Google Drive link; use "
                         f"{FORMS}, or a local path")


#: What a command's SRC, DEST or PATH may be, said when one is empty.
ANY_PLACE = "a drive: path, a Drive link or a local folder"


def refuse_empty(what: str, value: str, want: str = ANY_PLACE) -> None:
    """UsageError for an empty ``what`` (SRC, DEST, PATH): ``"$DEST"`` with the variable
    unset. Taken as it was, it named the working folder: a push copied SRC's files into it,
    a pull wrote there, exit 0 (attackcli39)."""
    if value == "":
        raise UsageError(f"{what} is empty (an unset variable?); give {want}")


def refuse_dangling_link(what: str, path: str) -> None:
    """UsageError for a ``what`` (DEST) that is, or lies below, a link whose target is gone:
    a pull said "File exists" and a push "is a file, not a folder", naming no link."""
    from drivestage.dangling_links import dangling_link

    found = dangling_link(path)
    if found is not None:
        link, target = found
        named = f"{what} {printable(link)}" if link == os.path.abspath(path) else \
            f"{what} {printable(path)}: {printable(link)}"
        raise UsageError(f"{named} is a link to {printable(target)}, which does not exist; "
                         f"make that folder, or give another {what}")


def refuse_bad_place(what: str, spec: str, want: str = ANY_PLACE) -> None:
    """:func:`refuse_empty`, and :func:`refuse_windows_path` for a ``spec`` that is no Drive
    path: what each command checks of a SRC, DEST or PATH before it is opened (ls, prune,
    dedupe and runs forget took ``C:\\runs`` for a local folder's name, and ls hinted
    ``drive:C:\\runs``)."""
    refuse_empty(what, spec, want)
    if not is_drive(spec):
        refuse_windows_path(what, spec)


def refuse_windows_path(what: str, path: str) -> None:
    """UsageError for a Windows path on this machine (``'C:\\Users\\me\\data'``, copied from
    a guide written on Windows): taken as it is, it named a folder of that name made in the
    working folder (ux35)."""
    if os.sep == "/" and re.match(r"[A-Za-z]:[\\/]", path):
        raise UsageError(f"{what} {printable(path)} is a Windows path, and this machine's paths "
                         "are written /content/data or ./data: give one of this machine's")


def parse_link(url: str) -> DrivePath:
    """A Drive sharing link -> ``drive:id:<ID>[:<KEY>]`` (UsageError for a link without an
    id).

    Accepts ``/file/d/<ID>/...`` (also Docs' ``/document/d/<ID>``...), ``/open?id=<ID>``,
    ``/uc?id=<ID>``, ``/drive/folders/<ID>`` (also ``/drive/u/0/folders/<ID>``), each with or
    without ``resourcekey=<KEY>`` in the query."""
    parts = urllib.parse.urlsplit(url.strip())
    query = {k.lower(): v for k, v in urllib.parse.parse_qsl(parts.query)}
    ident = None
    found = re.search(r"/(?:d|folders)/([^/?#]+)", parts.path)
    if found:
        ident = found.group(1)
    elif query.get("id"):
        ident = query["id"]
    if ident:
        _check_length(url, "id", ident)
    if not ident or not _ID_RE.match(ident):
        raise UsageError(f"{_shown(url)} is a Google address but not a link to a Drive file or "
                         "folder; copy the link with Share, Copy link (it looks like "
                         "https://drive.google.com/file/d/<ID>/view), or use drive:id:<ID>")
    key = query.get("resourcekey") or None
    if key is not None:
        _check_length(url, "resource key", key)
    if key is not None and not _ID_RE.match(key):
        raise UsageError(f"{_shown(url)}: resourcekey {_shown(key)} is not a Drive resource key "
                         "(letters, digits, '-' and '_' only)")
    return DrivePath("id", (), file_id=ident, resource_key=key)


def _shown(text: Optional[str]) -> str:
    """``text`` quoted for a message, shortened when long (a pasted blob is not echoed
    whole)."""
    text = text or ""
    if len(text) <= 120:
        return repr(text)
    return repr(text[:100]) + f"... ({len(text)} characters)"


def _check_length(spec: str, what: str, value: str) -> None:
    if len(value) > MAX_ID:
        raise UsageError(f"{_shown(spec)}: the {what} is {len(value)} characters long; Drive's "
                         f"are at most a few dozen (copy it again from the link)")


#: A sharing link pasted without its scheme (``drive.google.com/file/d/<ID>/view``).
_BARE_LINK_RE = re.compile(r"^(www\.)?(drive|docs|drive\.usercontent)\.google\.com/", re.I)


#: Another tool's prefix for Drive (``gdrive:``, ``Drive:``, ``GoogleDrive:``, ``gd:``).
_OTHER_PREFIX_RE = re.compile(r"^(?:[\w.-]*drive[\w.-]*|gd):/*(.*)$", re.I)


def drive_hint(src: str, what: str = "file") -> Optional[str]:
    """What a local path that is not there, written like a Drive path or link, was probably
    meant to be: a relative path (``VOC_datasets/x.zip``: ``drive:`` forgotten) or a link
    without ``https://``; None for a path that is plainly local (``/...``, ``./...``,
    ``~/...``). ``what`` is "file" or "folder"."""
    text = src.strip()
    if _BARE_LINK_RE.match(text):
        return f"a Drive sharing link starts with https://: https://{text}"
    if _WEB_RE.match(text):   # (not drive:https://…, no path at all: attack52)
        return (f"a web address is neither a {what} here nor a path on Google Drive: "
                f"download it first and give the {what}, or give its drive: path")
    if not text or text.startswith(("/", ".", "~")):
        return None
    other = _OTHER_PREFIX_RE.match(text)
    if other is not None:  # gdrive:x (rclone's remotes), Drive:x: the prefix, not the path
        text = other.group(1)
    return f"a {what} on Google Drive is written drive:{text}"


def split_names(rel: str, spec: str) -> tuple[str, ...]:
    """``a//b/c/`` -> ``("a", "b", "c")``; ``.``/``..`` refused with the spec in the message."""
    parts = tuple(p for p in rel.split("/") if p != "")
    for part in parts:
        if part in (".", ".."):
            raise UsageError(f"{_shown(spec)}: '{part}' is not allowed in a Drive path; "
                             "write the full path from the root")
    return parts


def names_encoding() -> str:
    """How this process reads file names, for a message that blames it: ``this system names
    files in ascii (its locale: LC_ALL=C)``."""
    locale = next((f"{v}={os.environ[v]}" for v in ("LC_ALL", "LC_CTYPE", "LANG")
                   if os.environ.get(v)), "none set")
    return f"this system names files in {sys.getfilesystemencoding()} (its locale: {locale})"


#: What to do about :func:`names_encoding`.
UTF8_LOCALE = "run with a UTF-8 locale (LC_ALL=C.UTF-8) or PYTHONUTF8=1"


def _as_typed(spec: str) -> str:
    """``spec`` as UTF-8 where its bytes are UTF-8 and only the locale read them as another
    encoding (``LC_ALL=C`` with ``PYTHONUTF8=0``: ASCII, each byte above 127 a lone
    surrogate): it said they were not UTF-8 and to type them again, as they were
    (attackcli40). Otherwise ``spec`` as it is."""
    try:
        return os.fsencode(spec).decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return spec


def parse(spec: str) -> DrivePath:
    """Parse a ``drive:`` spec or a sharing link; raises UsageError naming the spec and the
    accepted forms."""
    if is_link(spec):
        return parse_link(spec)
    if not is_drive(spec):
        raise UsageError(f"{_shown(spec)} is not a Drive path; use {FORMS}")
    if any("\udc80" <= ch <= "\udcff" for ch in spec):
        spec = _as_typed(spec)
    if any("\udc80" <= ch <= "\udcff" for ch in spec):
        # Bytes of argv that are not UTF-8 (Python reads each as a lone surrogate of this
        # range): the query could not be encoded, and the error blamed the server (attack28).
        raise UsageError(f"{_shown(spec)}: a Drive path is Unicode text, and this one holds "
                         "bytes that are not UTF-8 (a terminal or script in another "
                         "encoding?); type it again in UTF-8")
    rest = spec[len(PREFIX):]
    trailing = rest.endswith("/")
    if rest.startswith("id:"):
        start, names, key = _split(rest, spec)
        return DrivePath("id", names, file_id=start, trailing_slash=trailing, resource_key=key)
    stripped = rest.lstrip("/")
    if stripped == "shared-with-me" or stripped.startswith("shared-with-me/"):
        rel = stripped[len("shared-with-me"):]
        return DrivePath("shared-with-me", split_names(rel, spec), trailing_slash=trailing)
    if stripped == "shared" or stripped.startswith("shared/"):
        name, _, rel = stripped[len("shared/"):].partition("/")
        if not name:
            raise UsageError(f"{_shown(spec)}: missing shared drive name; use "
                             "drive:shared/<shared drive name>/path")
        return DrivePath("shared", split_names(rel, spec), shared_drive=name,
                         trailing_slash=trailing)
    return DrivePath("root", split_names(stripped, spec), trailing_slash=trailing)


def split_store_path(path: str) -> tuple[Optional[str], tuple[str, ...]]:
    """A store-relative path (``a/b`` or ``id:X/a/b``) -> ``(start id or None, names)``."""
    start, names, _key = _split(path)
    return start, names


def _split(path: str, spec: Optional[str] = None
           ) -> tuple[Optional[str], tuple[str, ...], Optional[str]]:
    """``a/b`` or ``id:X[:KEY]/a/b`` -> ``(start id or None, names, resource key or None)``;
    ``spec`` is what the user typed, for messages."""
    spec = spec or path
    if not path.startswith("id:"):
        return None, split_names(path, spec), None
    head, _, rel = path[3:].partition("/")
    ident, _, key = head.partition(":")
    if not ident:
        raise UsageError(f"{_shown(spec)}: missing file id; use drive:id:<FILE_ID>")
    _check_length(spec, "id", ident)
    _check_length(spec, "resource key", key)
    if not _ID_RE.match(ident):
        raise UsageError(f"{_shown(spec)}: {_shown(ident)} is not a Drive file id "
                         "(letters, digits, '-' and '_' only)")
    if ":" in head and not _ID_RE.match(key):
        raise UsageError(f"{_shown(spec)}: {_shown(key)} is not a Drive resource key; use "
                         "drive:id:<FILE_ID>:<RESOURCE_KEY> (the resourcekey= of the link)")
    return ident, split_names(rel, spec), key or None


def plain_id(text: object) -> bool:
    """Whether ``text`` may be a Drive id or resource key (letters, digits, ``-`` and ``_``):
    what goes into a request's URL or ``X-Goog-Drive-Resource-Keys`` header."""
    return isinstance(text, str) and bool(_ID_RE.match(text))


def patterns(given: Iterable[str]) -> tuple[str, ...]:
    """``include``, ``exclude`` or ``protect`` as the Python API was given it: a lone string
    is one pattern or name, not its characters (``exclude="*.log"`` was ``*``, ``.``, ...:
    every file; ``push(..., include="*.zip", delete=True)`` trashed what the filter was to
    leave; ``protect="epoch_003.pt"`` protected nothing)."""
    return (given,) if isinstance(given, str) else tuple(given)


def refuse_empty_patterns(what: str, given: Iterable[str]) -> None:
    """UsageError for an empty pattern among ``what`` (``include``, ``exclude``, ``protect``)
    as the Python API was given it: ``include=os.environ.get("INCLUDE", "")`` matched no
    name, and a CheckpointSync mirrored nothing, without a word (attack52's left)."""
    if any(p == "" for p in patterns(given)):
        raise UsageError(f"{what} has an empty pattern (an unset variable?); give a glob "
                         "such as '*.pt', or leave it out")


def matches(rel: str, patterns: Iterable[str]) -> bool:
    """Whether ``rel`` (``a/b/c.txt``) or its last name matches one of the glob ``patterns``
    (case-sensitive, as Drive names are): the rule of ``--include`` / ``--exclude``. Both in
    Unicode's composed form: ``café`` typed (NFC) matched no ``café`` a Mac had named (NFD,
    ``e`` and a combining accent), and the refusal named a file that read the same (ux35)."""
    rel = unicodedata.normalize("NFC", rel)
    base = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(base, p)
               for p in (unicodedata.normalize("NFC", p) for p in patterns))


#: The longest path the kernel takes, in bytes (Linux's PATH_MAX less its NUL).
PATH_MAX = 4095


#: Unicode's bidirectional controls (they reorder what a terminal shows: "Trojan Source").
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                  "\u2066\u2067\u2068\u2069")


def plain_name(name: str) -> bool:
    """True for a name that is one path component on every system: not empty, not ``.`` or
    ``..``, without ``/``, ``\\`` or NUL. Drive titles may be anything; only a plain one is
    ever joined to a local folder or managed as a checkpoint."""
    return bool(name) and name not in (".", "..") and not any(c in name for c in "/\\\0")


def usable_local_path(path: str) -> bool:
    """Whether ``path`` is an absolute path the system takes: no NUL in it, no half of a
    surrogate pair (``os.lstat`` raised ValueError / UnicodeEncodeError for those, where a
    path came from a file: attack51's damaged ``unread.json``)."""
    try:
        return os.path.isabs(path) and b"\0" not in os.fsencode(path)
    except UnicodeError:
        return False


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: control characters (ANSI escapes start with
    one), line separators and bidirectional controls shown as ``\\xNN`` / ``\\uNNNN``. Drive
    titles are anybody's text; a title must not rewrite the user's screen. So is half of a
    surrogate pair (Drive's JSON may carry one): printed as it is, it ended the command in a
    UnicodeEncodeError (attack28)."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch in _BIDI or unicodedata.category(ch) in ("Cc", "Zl", "Zp", "Cs"):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def printable_lines(text: str) -> str:
    """:func:`printable` for a message of several lines (its newlines kept)."""
    return "\n".join(printable(line) for line in text.split("\n"))


#: drivestage's state folder in every DEST (stamps, locks).
STATE_DIR = ".drivestage"
#: Hidden names drivestage keeps for itself at any depth: its state folder, the temporary
#: folders of extractions (``.drivestage-extract-*``, ``.drivestage-replaced-*``) and partial
#: downloads with their records (``.<name>.<16 hex>.partial`` / ``.ranges``, see
#: :mod:`drivestage.partials`) and the records' temporary files
#: (``..<name>.<16 hex>.ranges.<random>.tmp``), which a pull of ``<name>`` removes.
_PARTIAL_RE = re.compile(r"^\..+\.[0-9a-f]{16}\.(partial|ranges(\..+\.tmp)?)$",
                         re.IGNORECASE)


def is_reserved(name: str) -> bool:
    """True for a path component drivestage keeps for its own state (any letter case)."""
    if not name.startswith("."):
        return False  # the casefold of no other character starts with "." (all were tried)
    folded = name.casefold()
    return folded == STATE_DIR or folded.startswith(STATE_DIR + "-") or \
        bool(_PARTIAL_RE.match(name))
