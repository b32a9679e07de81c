"""Drive v2 File resources as :class:`~drivestage.store.RemoteEntry` objects."""
from __future__ import annotations

import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping, Optional, TypeGuard

from drivestage.drive.sessions import printable_excerpt
from drivestage.errors import MalformedAnswerError
from drivestage.first_seen import SEEN_MARK
from drivestage.paths import plain_id, printable
from drivestage.store import Quota, RemoteEntry

FOLDER_MIME = "application/vnd.google-apps.folder"
SHORTCUT_MIME = "application/vnd.google-apps.shortcut"
#: Google Docs, Sheets, Slides...: items without binary content (they export, not download).
GOOGLE_APPS_PREFIX = "application/vnd.google-apps."
_MD5 = re.compile(r"[0-9a-fA-F]{32}")


@dataclass(frozen=True)
class DriveEntry(RemoteEntry):
    """A :class:`RemoteEntry` found through a Drive shortcut, or in a listing.

    ``id`` is what the caller's next step acts on: a folder reached through a shortcut is the
    target folder (listed, uploaded into), while a file shortcut keeps its own id, so that a
    delete removes the shortcut and never the target's bytes, and :class:`DriveStore` reads
    the bytes from ``target_id``."""

    #: A file shortcut: the file whose bytes (and md5) it stands for.
    target_id: Optional[str] = None
    #: A folder reached through a shortcut: the shortcut itself (what a delete removes).
    shortcut_id: Optional[str] = None
    #: Folder ids above this entry in the walk that listed it (a shortcut cycle shows as a
    #: folder that is its own ancestor).
    ancestors: tuple[str, ...] = field(default=(), compare=False)
    #: The folder is the top of My Drive or of a shared drive (kept when reached through a
    #: shortcut, whose own parent the entry then shows).
    drive_top: bool = field(default=False, compare=False)
    #: The shared drive the item is in (None: My Drive, or the server did not say).
    drive_id: Optional[str] = field(default=None, compare=False)

    @property
    def via_shortcut(self) -> bool:
        """Whether this entry is (or was reached through) a shortcut."""
        return self.target_id is not None or self.shortcut_id is not None

    @property
    def top(self) -> bool:
        """The top of My Drive or of a shared drive (see :attr:`drive_top`)."""
        return self.drive_top

    @property
    def linked(self) -> bool:
        """A shortcut (the protocol's name for a link to an item elsewhere)."""
        return self.via_shortcut

    @property
    def item_id(self) -> str:
        """A folder shortcut's own id (a file shortcut's ``id`` is already its own)."""
        return self.shortcut_id or self.id


def parse_time(stamp: Optional[str]) -> float:
    """RFC 3339 (``2024-01-02T03:04:05.678Z``) to seconds since the epoch; 0 when absent."""
    if not stamp:
        return 0.0
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _bad(res: Mapping[str, Any], what: str, value: Any, where: str) -> MalformedAnswerError:
    ident = res.get("id") if isinstance(res.get("id"), str) else "?"
    return MalformedAnswerError(
        f"{where or 'Drive'}: the server answered malformed metadata for item {ident!r} "
        f"({what} {repr(value)[:60]}); is --api-root / DRIVESTAGE_API_ROOT a Drive API?")


def check_resource(res: Any, where: str = "") -> Mapping[str, Any]:
    """``res`` if it is a File resource with the fields drivestage reads well-formed, else
    MalformedAnswerError (one line, not a traceback in the middle of a pull)."""
    if not isinstance(res, Mapping):
        raise _bad({}, "an item that is not an object:", res, where)
    if not isinstance(res.get("id"), str) or not res["id"]:
        raise _bad(res, "id", res.get("id"), where)
    for key in ("title", "mimeType", "md5Checksum", "sha256Checksum"):
        if res.get(key) is not None and not isinstance(res[key], str):
            raise _bad(res, key, res[key], where)
    # The md5 names the version (stamps, partial files) and verifies it where no SHA-256 does:
    # one that is not an md5 would make a pull download twice and fail, or verify nothing.
    # (A malformed sha256Checksum is only passed over: :func:`drivestage.checksums.choose`.)
    md5 = res.get("md5Checksum")
    if md5 is not None and not _MD5.fullmatch(md5):
        raise _bad(res, "md5Checksum", md5, where)
    size = res.get("fileSize")
    if size is not None:
        try:
            if int(size) < 0:
                raise ValueError(size)
        except (TypeError, ValueError):
            raise _bad(res, "fileSize", size, where) from None
    parents = res.get("parents")
    if parents is not None and (not isinstance(parents, list) or
                                not all(isinstance(p, Mapping) for p in parents)):
        raise _bad(res, "parents", parents, where)
    for key in ("labels", "shortcutDetails"):
        if res.get(key) is not None and not isinstance(res[key], Mapping):
            raise _bad(res, key, res[key], where)
    return res


#: The key of the custom properties that mark a run folder on Drive
#: (:mod:`drivestage.drive.store_folders`).
RUN_MARK = "drivestage-run-folder"


def run_marked(res: Mapping[str, Any]) -> bool:
    """Whether the File resource ``res`` carries the run-folder mark: a property of
    :data:`RUN_MARK`, PRIVATE (this app's own) or PUBLIC (another OAuth client's run: Colab's
    beside a laptop's own client secrets, which see none of each other's PRIVATE ones). Any
    editor of the folder may set a PUBLIC one; a mark only ever keeps things on Drive, so a
    forged one costs a deletion not done, never a file."""
    props = res.get("properties")
    return isinstance(props, list) and any(
        isinstance(p, Mapping) and p.get("key") == RUN_MARK
        and p.get("visibility") in ("PRIVATE", "PUBLIC") for p in props)


def entry_from_resource(res: Mapping[str, Any], where: str = "") -> DriveEntry:
    """A Drive v2 File resource (a dict) as a :class:`DriveEntry` (``where`` names it in the
    error for a malformed one).

    A file of a Google type (Docs, Sheets...) has no binary content to download; ``kind``
    keeps the mimeType for messages. Another file without ``md5Checksum`` (Drive gave none
    for binary files stored before about 2014: rclone issue 980) still has bytes, known by
    their ``fileSize``: verified by their ``sha256Checksum``, or, without one, refused with
    the way to get them verified (``no_download``)."""
    check_resource(res, where)
    parents = res.get("parents") or []
    mime = res.get("mimeType") or ""
    md5 = res.get("md5Checksum")
    caps = res.get("capabilities")
    removable = not isinstance(caps, Mapping) or caps.get("canTrash") is not False or \
        caps.get("canDelete") is not False
    has_content = (md5 is not None or res.get("fileSize") is not None) and \
        not mime.startswith(GOOGLE_APPS_PREFIX)
    # Known before any media request: a folder pull fails while it lists, not after
    # downloading everything else (Drive's answer to the bytes would be 403 cannotDownloadFile).
    restricted = has_content and isinstance(caps, Mapping) and caps.get("canDownload") is False
    # Drive lists a size for every file with content: without one the bytes cannot be
    # asked for whole (taken as 0, nothing was downloaded, twice, then "do not match").
    sizeless = has_content and res.get("fileSize") is None
    no_download = restricted_message(where or res["id"], editor=editor_of(res),
                                     shared_drive=shared_drive_item(res)) if restricted \
        else unverifiable_message(where or res["id"]) \
        if has_content and md5 is None and not _sha256(res.get("sha256Checksum")) \
        else sizeless_message(where or res["id"]) if sizeless else None
    mark = None if no_download is None else restricted_mark(
        editor=editor_of(res), shared_drive=shared_drive_item(res)) if restricted \
        else SIZELESS_MARK if sizeless and md5 is not None else UNVERIFIABLE_MARK
    read_only = read_only_message(where or res["id"]) if mime == FOLDER_MIME and \
        isinstance(caps, Mapping) and caps.get("canAddChildren") is False else None
    return DriveEntry(
        id=res["id"], name=res.get("title") or "", is_dir=mime == FOLDER_MIME,
        size=int(res.get("fileSize") or 0), md5=md5, sha256=res.get("sha256Checksum"),
        modified=parse_time(res.get("modifiedDate")),
        created=parse_time(res.get("createdDate")),
        parent_id=(parents[0].get("id") if parents else None),
        parent_ids=tuple(str(p.get("id")) for p in parents if p.get("id")),
        has_content=has_content, no_download=no_download, no_download_mark=mark,
        read_only=read_only,
        kind=mime, removable=removable, drive_id=res.get("driveId") or res.get("teamDriveId"),
        drive_top=mime == FOLDER_MIME and not parents and _drive_top(res),
        run_mark=mime == FOLDER_MIME and run_marked(res), seen_mark=next(
            (str(p.get("value")) for p in res.get("properties") or () if isinstance(p, Mapping)
             and p.get("key") == SEEN_MARK and p.get("visibility") == "PUBLIC"), None))


def unverifiable_message(where: str) -> str:
    """The message for a binary file Drive lists without any checksum (files stored before
    about 2014: rclone issue 980): its bytes could not be verified, and a server that
    leaves the checksums out could serve anything. A copy made on Drive gets them."""
    return (f"{where}: Drive lists no checksum for it (no md5Checksum or sha256Checksum, as "
            "for files stored before Drive kept them), so its bytes could not be verified; "
            "not downloaded. Make a copy of it on Drive (File, Make a copy: Drive computes "
            "the copy's checksums) and pull the copy.")


def sizeless_message(where: str) -> str:
    """The message for a file listed with a checksum but without ``fileSize``, which Drive
    gives every file with content: whatever left it out is not Drive's answer as sent."""
    return (f"{where}: Drive lists no size for it (no fileSize), though it lists a checksum, "
            "so its bytes cannot be fetched whole and verified; not downloaded. Drive gives "
            "every file with content a size: something between here and Drive (a proxy) "
            "changes its answers, or the server is not Drive: check --api-root / "
            "DRIVESTAGE_API_ROOT, then pull again")


def _sha256(value: Any) -> bool:
    return isinstance(value, str) and re.fullmatch(r"[0-9a-fA-F]{64}", value) is not None


def read_only_message(where: str) -> str:
    """The message for a folder (or a shared drive) this account may not write into."""
    return (f"{where} is shared with you read-only (Drive: canAddChildren false): nothing "
            "can be written into it. Ask the owner to make you an editor, or push into a "
            "folder of your own")


def restricted_message(where: str, answer: str = "Drive reports canDownload false for "
                       "this account", *, editor: bool = False,
                       shared_drive: bool = False) -> str:
    """The message for a file this account sees but may not download (``answer``: how
    Drive said so). An ``editor`` of the file may not either: Drive's download restrictions
    turn it off for editors too (``restrictedForWriters``), and so may a shared drive's
    settings or the organisation's data rules: becoming an editor is then no remedy. A file
    in a ``shared_drive`` has no owner to ask: its Managers' setting for the whole drive
    ("Allow viewers and commenters to download", which overrides the file's) or an editor
    of the file turned it off."""
    if editor:
        return (f"{where}: downloading it is turned off even for editors like you ({answer}): "
                "by its owner, a Manager of its shared drive or your organisation's data "
                "rules. Ask them to allow downloads of it, or to share a copy with you.")
    if shared_drive:
        return (f"{where}: downloading is turned off for viewers and commenters of it "
                f"({answer}): by a Manager of its shared drive (the drive's setting 'Allow "
                "viewers and commenters to download, print, and copy files') or by an editor "
                "of the file. Ask them to turn it back on, to make you a Contributor (or "
                "more) of the shared drive, or to share a copy with you.")
    return (f"{where}: its owner has turned off downloading for viewers and commenters "
            f"({answer}). Ask the owner to turn it back on (Share, the settings gear: "
            "'Viewers and commenters can see the option to download, print, and copy'), to "
            "make you an editor, or to share a copy with you.")


#: ``ls``'s mark for a file Drive lists without a checksum (:func:`unverifiable_message`).
UNVERIFIABLE_MARK = "(Drive lists no checksum: it could not be verified)"
#: ``ls``'s mark for a file listed without its size (:func:`sizeless_message`).
SIZELESS_MARK = "(Drive lists no size: it could not be downloaded)"


def restricted_mark(*, editor: bool, shared_drive: bool) -> str:
    """:func:`restricted_message` in a few words, for ``ls``: every such file was marked
    "its owner turned off downloading for viewers", an editor's and a shared drive's too
    (include29)."""
    if editor:
        return "(downloading is turned off, even for editors like you)"
    if shared_drive:
        return "(downloading turned off for viewers: the shared drive's setting or an editor's)"
    return "(its owner turned off downloading for viewers)"


def shared_drive_item(res: Mapping[str, Any]) -> bool:
    """The item lives in a shared drive (which owns it: no user does)."""
    return bool(res.get("driveId") or res.get("teamDriveId"))


def editor_of(res: Mapping[str, Any]) -> bool:
    """This account may edit the file (v2 ``editable``, or ``capabilities.canEdit``)."""
    caps = res.get("capabilities")
    return res.get("editable") is True or (isinstance(caps, Mapping) and
                                           caps.get("canEdit") is True)


def _drive_top(res: Mapping[str, Any]) -> bool:
    """A folder without parents that is a shared drive's root, or one the user owns (My
    Drive's root; an orphaned folder of theirs counts too: refusing more is safe)."""
    return res.get("driveId") == res["id"] or res.get("teamDriveId") == res["id"] or \
        res.get("ownedByMe") is True


def is_trashed(res: Mapping[str, Any]) -> bool:
    """Whether the resource sits in the trash."""
    return bool((res.get("labels") or {}).get("trashed"))


def trashed_message(where: str, res: Mapping[str, Any]) -> str:
    """The message for a path into the trash. Only a file's owner (in a shared drive, a
    Content manager or Manager) may take it out (``capabilities.canUntrash``): anyone else
    was told to "restore it first", which Drive refuses them."""
    who = restorer(res)
    if who is None:
        return f"{where} is in the trash; restore it first"
    return (f"{where} is in the trash, and only {who} can take it out. Ask them to restore "
            "it, or to share a copy with you")


def restorer(res: Mapping[str, Any]) -> Optional[str]:
    """Who may take the trashed item ``res`` out of the trash, in words, where the caller may
    not (``capabilities.canUntrash`` false); None where the caller may."""
    caps = res.get("capabilities")
    if not isinstance(caps, Mapping) or caps.get("canUntrash") is not False:
        return None
    if res.get("driveId") or res.get("teamDriveId"):
        return "a Content manager or Manager of its shared drive"
    owners = res.get("owners")
    mail = owners[0].get("emailAddress") if isinstance(owners, list) and owners and \
        isinstance(owners[0], Mapping) else None
    return f"its owner ({printable(str(mail))})" if mail else "its owner"


def is_shortcut(res: Mapping[str, Any]) -> bool:
    """Whether the resource is a Drive shortcut."""
    return res.get("mimeType") == SHORTCUT_MIME

#: Longest chain of folders walked up for resource keys (Drive folders nest far less deep).
_MAX_VIA = 64
#: Longest id or key kept (Drive's are under 50 characters): a longer one from a server or a
#: stamp edited by hand would make every request's header too long to be answered.
_MAX_TOKEN = 200
_ID_IN_PATH = re.compile(r"/files/([A-Za-z0-9_-]+)")
_ID_IN_QUERY = re.compile(r"'([A-Za-z0-9_-]+)'\s+in\s+parents")
#: A request body's ``"parents": [{"id": ...}, ...]`` (JSON metadata, or its part of a
#: multipart upload) and the ids in it.
_PARENTS_IN_BODY = re.compile(rb'"parents"\s*:\s*\[([^\]]*)\]')
_ID_IN_PARENTS = re.compile(rb'"id"\s*:\s*"([A-Za-z0-9_-]+)"')
#: Bodies longer than this are not searched for parents (a chunk of a file's bytes).
_BODY_SEARCHED = 64 * 1024


class ResourceKeys:
    """The resource keys known in this run, and which folder each item was reached through.

    Items link-shared before Drive's 2021 security update answer 404 unless a request names
    their key (or the key of the link-shared folder they were reached through) in
    ``X-Goog-Drive-Resource-Keys: <id>/<key>[,<id>/<key>...]``. Keys come from a sharing URL,
    a shortcut's ``targetResourceKey``, or the ``resourceKey`` of listed items; :meth:`header`
    gives, for one request, the keys of the items its URI is about and of the folders above
    them, so the header stays short however many keys a run has learnt."""

    def __init__(self) -> None:
        self._keys: dict[str, str] = {}
        self._via: dict[str, str] = {}
        self._hinted: set[str] = set()   # ids whose via came from an earlier run's stamp
        self._hinted_keys: set[str] = set()   # ids whose key came from one
        #: upload session id -> the folder its file goes into (named by no request after
        #: the session's start, whose body named it)
        self._sessions: dict[str, str] = {}
        self._lock = threading.Lock()

    def learn(self, file_id: str, key: Optional[str] = None, *,
              via: Optional[str] = None) -> None:
        """Remember ``file_id``'s resource key and/or the folder ``via`` it was listed in (kept
        only when a key lies that way up: a tree without keys costs nothing)."""
        with self._lock:
            # A key from a server or a sharer is anybody's text: one that is not a key (a
            # CRLF in it would add header lines) is never sent; the item then answers 404
            # like one whose key we never learnt.
            if _plain(key):
                self._keys[file_id] = key
            elif key is None and file_id in self._hinted_keys:
                del self._keys[file_id]   # Drive showed it without one: the stamp was wrong
            self._hinted_keys.discard(file_id)
            if via and via != file_id and (via in self._keys or via in self._via):
                if file_id in self._hinted:   # this run's listing beats a stamp's guess
                    self._hinted.discard(file_id)
                    self._via[file_id] = via
                else:
                    self._via.setdefault(file_id, via)

    def for_session(self, session_uri: str, folder_id: str) -> None:
        """Every request of the upload session at ``session_uri`` carries the keys of
        ``folder_id``, where its file goes: the session references it (a chunk's answer is
        the new file, and shows only parents the request may open)."""
        upload = urllib.parse.parse_qs(urllib.parse.urlsplit(session_uri).query).get("upload_id")
        if upload:
            with self._lock:
                self._sessions[upload[0]] = folder_id

    def key(self, file_id: str) -> Optional[str]:
        """The resource key of ``file_id``, if known."""
        with self._lock:
            return self._keys.get(file_id)

    def header(self, uri: str, body: object = None) -> Optional[str]:
        """The ``X-Goog-Drive-Resource-Keys`` value for a request of ``uri`` with ``body``
        (None: none needed). Drive wants the keys of every item a request references: the
        folders a new item or an upload is put in are named only in the body's ``parents``,
        a move's in ``addParents`` / ``removeParents``."""
        with self._lock:
            if not self._keys:
                return None
            pairs: dict[str, None] = {}
            for start in _ids_in(uri) + _parents_in(body) + self._session_folder(uri):
                pairs.update(dict.fromkeys(self._pairs(start)))
        return ",".join(pairs) or None

    def _session_folder(self, uri: str) -> list[str]:
        """The folder of the upload session ``uri`` is a request of (the lock held)."""
        if "upload_id=" not in uri:
            return []
        upload = urllib.parse.parse_qs(urllib.parse.urlsplit(uri).query).get("upload_id")
        folder = self._sessions.get(upload[0]) if upload else None
        return [folder] if folder else []

    def _pairs(self, start: str) -> list[str]:
        """``<id>/<key>`` of ``start`` and of the keyed folders it was reached through,
        nearest first (the lock held)."""
        out: list[str] = []
        cur: Optional[str] = start
        seen: set[str] = set()
        while cur is not None and cur not in seen and len(seen) < _MAX_VIA:
            seen.add(cur)
            if cur in self._keys:
                out.append(f"{cur}/{self._keys[cur]}")
            cur = self._via.get(cur)
        return out

    def chain(self, file_id: str) -> Optional[str]:
        """What a later run needs to fetch ``file_id`` by id: the keys its requests carry,
        as the header spells them (None when it needs none)."""
        with self._lock:
            return ",".join(self._pairs(file_id)) or None

    def restore(self, file_id: str, chain: str) -> None:
        """Learn a :meth:`chain` saved by an earlier run: its keys, and that ``file_id`` is
        reached through them in that order. Anything malformed in it is ignored (the item
        then answers 404 and is found again by its path); keys and folders this run has
        learnt itself win over the saved ones (a stamp may be stale or edited by hand)."""
        if not _plain(file_id) or not isinstance(chain, str):
            return
        ids = [file_id]
        limit = _MAX_VIA * (2 * _MAX_TOKEN + 2)
        for pair in chain[:limit].split(",")[:_MAX_VIA]:
            fid, _, key = pair.partition("/")
            if _plain(fid) and _plain(key):
                with self._lock:
                    if fid not in self._keys:
                        self._keys[fid] = key
                        self._hinted_keys.add(fid)
                if fid != ids[-1] and fid not in ids:
                    ids.append(fid)
        with self._lock:
            for near, far in zip(ids, ids[1:]):
                if near not in self._via:
                    self._via[near] = far
                    self._hinted.add(near)


def _plain(text: object) -> TypeGuard[str]:
    """Whether ``text`` may be sent as a Drive id or resource key (plain and short)."""
    return isinstance(text, str) and plain_id(text) and len(text) <= _MAX_TOKEN


def _ids_in(uri: str) -> list[str]:
    """The Drive ids a request URI is about: ``files/<id>`` and ``'<id>' in parents``."""
    parts = urllib.parse.urlsplit(uri)
    found = _ID_IN_PATH.findall(parts.path)
    query = urllib.parse.parse_qs(parts.query)
    for q in query.get("q", []):
        found.extend(_ID_IN_QUERY.findall(q))
    for name in ("addParents", "removeParents"):
        for value in query.get(name, []):
            found.extend(v for v in value.split(",") if _plain(v))
    return found


def _parents_in(body: object) -> list[str]:
    """The ids of a request body's ``parents`` (none for a body that is not a short JSON
    text or multipart metadata: a file's bytes are never searched)."""
    if isinstance(body, str):
        body = body.encode("utf-8", "replace")
    if not isinstance(body, (bytes, bytearray)) or len(body) > _BODY_SEARCHED:
        return []
    found = _PARENTS_IN_BODY.search(bytes(body))
    return [m.decode() for m in _ID_IN_PARENTS.findall(found.group(1))] if found else []


def quota_of(about: Any) -> Quota:
    """Drive's About resource as used / total / trash bytes (``total`` None when unlimited);
    a count that is not a number is a malformed answer. ``used`` is what every Google
    service uses (``quotaBytesUsedAggregate``; v2's ``quotaBytesUsed`` is Drive's share
    alone), since ``quotaBytesTotal`` bounds them all: Gmail and Photos fill it too."""
    def number(name: str) -> int:
        try:
            return int(about.get(name) or 0)
        except (TypeError, ValueError):
            raise MalformedAnswerError(
                f"read the Drive quota: the server answered {name} "
                f"{str(about.get(name))[:40]!r}, not a number; is --api-root / "
                "DRIVESTAGE_API_ROOT a Drive API?") from None

    if not isinstance(about, Mapping):  # googleapiclient hands over a page's raw text
        raise MalformedAnswerError(
            f"read the Drive quota: the server answered {printable_excerpt(about)}, not "
            "Drive's About resource; is --api-root / DRIVESTAGE_API_ROOT a Drive API?")
    total = number("quotaBytesTotal")
    drive = number("quotaBytesUsed")
    # Absent from a partial answer or an old server: then Drive's own share is all we know.
    used = max(number("quotaBytesUsedAggregate"), drive) \
        if about.get("quotaBytesUsedAggregate") is not None else drive
    return Quota(total=total if total > 0 and about.get("quotaType") != "UNLIMITED" else None,
                 used=used, trash=number("quotaBytesUsedInTrash"), other=used - drive)
