"""The emulator's state: file records, shared drives, upload sessions and blobs.

Records live in memory and are written through to SQLite under ``data_dir`` so
the state survives a restart; file content lives in ``data_dir/blobs/<id>`` (old
revisions in ``blobs/<id>@<revision>``), partial uploads in ``data_dir/uploads/<session>``.
All methods are thread-safe. A record is a plain dict (see :meth:`EmulatorStore._new_record`);
:mod:`render` turns it into a Drive v2 File resource, :mod:`access` decides who sees it.

Everything here is the Drive as it is, without a caller: permission checks belong to the
routes (through :mod:`access`), so the Python API can seed any state. The quota and item
limits are in :mod:`store_limits`, parents and the trash in :mod:`store_trash`, ids in
:mod:`store_ids`, upload sessions in :mod:`store_sessions` (mixins of :class:`EmulatorStore`).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import shutil
import sqlite3
import threading
import time
from typing import Callable, Iterable, Iterator, Optional

from drivestage.emulator import properties
from drivestage.emulator.errors import EmulatorApiError, drive_error, not_found
from drivestage.emulator.store_dir import lock_data_dir, open_db, private_dirs, unlock_data_dir, \
    unreadable
from drivestage.emulator.store_ids import StoreIds, new_id
from drivestage.emulator.store_limits import StoreLimits
from drivestage.emulator.store_sessions import StoreSessions
from drivestage.emulator.store_trash import StoreTrash
from drivestage.emulator.wire import blob_checksums, open_private

log = logging.getLogger(__name__)

FOLDER_MIME = "application/vnd.google-apps.folder"
SHORTCUT_MIME = "application/vnd.google-apps.shortcut"
SERVICE_ACCOUNT_MESSAGE = (
    "Service Accounts do not have storage quota. Leverage shared drives "
    "(https://developers.google.com/workspace/drive/api/guides/about-shareddrives), "
    "or use OAuth delegation (http://support.google.com/a/answer/7281227) instead."
)
_COPY_CHUNK = 4 << 20


def new_resource_key() -> str:
    """A Drive-looking resource key (``0-`` and 22 URL-safe characters)."""
    return "0-" + secrets.token_urlsafe(16)[:22]


class EmulatorStore(StoreLimits, StoreTrash, StoreIds, StoreSessions):
    """Metadata, blobs and upload sessions of one emulated Drive account."""

    def __init__(self, data_dir: str, quota_bytes: Optional[int] = None):
        self.data_dir = os.path.abspath(data_dir)
        self.quota_bytes = quota_bytes
        #: Bytes other Google services take of the same storage (``GMAIL``, ``PHOTOS``):
        #: Drive's quota is shared with them, so they count toward ``quota_bytes`` too.
        self.other_usage: dict[str, int] = {}
        #: Items the account may have created (None: Drive's
        #: :data:`~drivestage.emulator.store_limits.MAX_ITEMS_CREATED`).
        self.item_creation_limit: Optional[int] = None
        self._last_created = 0.0  # see create()
        #: Seconds Drive's clock is off from this machine's (``Emulator.clock_offset``): the
        #: dates the store stamps (created, modified) are by it.
        self.clock_offset = 0.0
        self.blob_dir = os.path.join(self.data_dir, "blobs")
        self.upload_dir = os.path.join(self.data_dir, "uploads")
        self.lock = threading.RLock()
        self.closed = False
        # Held until close(): one emulator per folder (store_dir).
        self._lock_fd = lock_data_dir(self.data_dir)
        db_path = os.path.join(self.data_dir, "state.sqlite3")
        try:
            private_dirs(self.blob_dir, self.upload_dir)
            self._db = open_db(db_path)
        except BaseException:
            unlock_data_dir(self._lock_fd)
            raise
        self.files: dict[str, dict] = {}
        self._by_parent: dict[str, set[str]] = {}   # parent id -> child ids (an index)
        self.drives: dict[str, dict] = {}
        self.sessions: dict[str, dict] = {}
        self.owner_roots: dict[str, str] = {}       # other users' My Drive roots: email -> id
        #: Ids files.generateIds handed out: id -> whether a create used it (once used, an id
        #: is never free again, even after its file was deleted).
        self.generated: dict[str, bool] = {}
        #: Told of every change of a file record (old, new; None: absent), under the lock:
        #: the faults of a lagging listing (:meth:`~drivestage.emulator.faults.Faults.lag_listing`).
        self.observer: Optional[Callable[[Optional[dict], Optional[dict]], None]] = None
        try:
            self._load()
        except (sqlite3.DatabaseError, ValueError, TypeError, KeyError, AttributeError) as exc:
            # (a corrupted file, or a hand-edited row: not JSON, or not a record)
            self._db.close()
            unlock_data_dir(self._lock_fd)
            raise unreadable(db_path, exc) from None

    # ----------------------------------------------------------------- persistence
    def _load(self) -> None:
        for table, target in (("files", self.files), ("drives", self.drives), ("sessions", self.sessions)):
            for row_id, doc in self._db.execute(f"SELECT id, doc FROM {table}"):
                target[row_id] = json.loads(doc)
        for rec in self.files.values():
            self._index(rec, add=True)
        for row_id, doc in self._db.execute("SELECT id, doc FROM ids"):
            self.generated[row_id] = bool(json.loads(doc))
        for sess in list(self.sessions.values()):
            if sess.pop("token", None) is not None:    # older emulators stored the bearer token
                self._put("sessions", self.sessions, sess)
        self.root_id = self._meta("root")
        if self.root_id is None:
            self.root_id = new_id("0A")
            self._set_meta("root", self.root_id)
            self._put("files", self.files, self._new_record(
                self.root_id, "My Drive", FOLDER_MIME, [], None, self.now()))
        self.owner_roots = self._meta("owner_roots") or {}
        # What a SIGKILL left in uploads/: temp files of single-request uploads and copies,
        # a second name of a finishing session's bytes (routes_resumable._resumable_done), the
        # bytes of a session that made its file. Only an open session's bytes are used again.
        for name in os.listdir(self.upload_dir):
            sess = self.sessions.get(name)
            if sess is None or sess.get("done_file_id"):
                os.unlink(os.path.join(self.upload_dir, name))
        self._order_sessions()
        log.debug("emulator store at %s: %d files", self.data_dir, len(self.files))

    def _meta(self, key: str):
        row = self._db.execute("SELECT doc FROM meta WHERE id=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def _set_meta(self, key: str, value) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def _index(self, rec: dict, add: bool) -> None:
        for p in rec["parents"]:
            if add:
                self._by_parent.setdefault(p, set()).add(rec["id"])
            else:
                self._by_parent.get(p, set()).discard(rec["id"])

    def _put(self, table: str, target: dict, doc: dict) -> None:
        self.check_open()
        if target is self.files:
            old = self.files.get(doc["id"])
            if old is not None:
                self._index(old, add=False)
            self._index(doc, add=True)
            if self.observer is not None:
                self.observer(old, doc)
        target[doc["id"]] = doc
        self._db.execute(f"INSERT OR REPLACE INTO {table} VALUES (?, ?)", (doc["id"], json.dumps(doc)))

    def _drop(self, table: str, target: dict, doc_id: str) -> None:
        self.check_open()
        old = target.pop(doc_id, None)
        if target is self.files and old is not None:
            self._index(old, add=False)
            if self.observer is not None:
                self.observer(old, None)
        self._db.execute(f"DELETE FROM {table} WHERE id=?", (doc_id,))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the lock, and write what is saved meanwhile to disk as one: a SIGKILL keeps
        all of it or none (a finished upload's file and its session's mark of it). What is
        saved is committed even if the block raises: memory has it already."""
        with self.lock:
            self.check_open()
            if self._db.in_transaction:
                yield
                return
            self._db.execute("BEGIN")
            try:
                yield
            finally:
                if not self.closed:
                    self._db.execute("COMMIT")

    def save_file(self, rec: dict) -> None:
        """Write one file record through to disk."""
        with self.lock:
            self._put("files", self.files, rec)

    def save_drive(self, doc: dict) -> None:
        """Write one shared drive through to disk."""
        with self.lock:
            self._put("drives", self.drives, doc)

    def close(self) -> None:
        """Close the database (the blobs need nothing) and free the folder for another
        emulator. A handler still at work (the server stops without waiting for them) then
        changes nothing: see :meth:`check_open`."""
        with self.lock:
            if self.closed:
                return
            self.closed = True
            self._db.close()
            unlock_data_dir(self._lock_fd)

    def check_open(self) -> None:
        """Raise a 503 once closed; called with :attr:`lock` held before a change touches a
        file or the database, so that a change is made whole or not at all. (A finishing
        upload moved its bytes into ``blobs/`` and then failed to record them: a blob no
        file owned, for good.)"""
        if self.closed:
            raise EmulatorApiError(503, "backendError", "The emulator is stopping.")

    # ----------------------------------------------------------------- lookups
    @staticmethod
    def _new_record(file_id: str, title: str, mime: str, parents: list[str],
                    drive_id: Optional[str], now: float) -> dict:
        return {
            "id": file_id, "title": title, "mimeType": mime, "parents": list(parents),
            "trashed": False, "explicitlyTrashed": False, "starred": False, "hidden": False,
            "created": now, "modified": now, "size": None, "md5": None,
            "driveId": drive_id, "description": None, "version": 1,
        }

    def now(self) -> float:
        """Drive's clock: this machine's, moved by :attr:`clock_offset`."""
        return time.time() + self.clock_offset

    def resolve(self, file_id: str) -> str:
        """Map the ``root`` alias to the real root id."""
        return self.root_id if file_id == "root" else file_id

    def get(self, file_id: str) -> dict:
        """The record for ``file_id`` (``root`` works); 404 when unknown."""
        with self.lock:
            rec = self.files.get(self.resolve(file_id))
            if rec is None and file_id in self.drives:
                # A shared drive's id is also its root folder's id.
                d = self.drives[file_id]
                rec = self._new_record(file_id, d["name"], FOLDER_MIME, [], file_id, d["created"])
            if rec is None:
                raise not_found(file_id)
            return rec

    def is_folder(self, rec: dict) -> bool:
        return rec["mimeType"] == FOLDER_MIME

    def is_container_root(self, file_id: str) -> bool:
        """True for the roots of My Drive, of shared drives and of other users' My Drives."""
        return file_id == self.root_id or file_id in self.drives or file_id in self.owner_roots.values()

    def owner_root(self, email: str) -> str:
        """The root of another user's My Drive (created on first use); never visible to the caller."""
        with self.lock:
            if email not in self.owner_roots:
                root = new_id("0A")
                rec = self._new_record(root, "My Drive", FOLDER_MIME, [], None, self.now())
                rec["owner"] = email
                self._put("files", self.files, rec)
                self.owner_roots[email] = root
                self._set_meta("owner_roots", self.owner_roots)
            return self.owner_roots[email]

    def children(self, parent_id: str) -> list[dict]:
        """Direct children of a folder (trashed ones too)."""
        with self.lock:
            return [self.files[i] for i in self._by_parent.get(self.resolve(parent_id), ())]

    def ancestors(self, rec: dict) -> list[dict]:
        """The folders above ``rec``, nearest first (a cycle-safe walk up the first parents)."""
        out: list[dict] = []
        seen = {rec["id"]}
        with self.lock:
            while rec["parents"]:
                parent = self.files.get(rec["parents"][0])
                if parent is None or parent["id"] in seen:
                    break
                seen.add(parent["id"])
                out.append(parent)
                rec = parent
        return out

    def descendants(self, file_id: str) -> list[dict]:
        """Every record below ``file_id`` (depth first, deepest last)."""
        out: list[dict] = []
        stack = [file_id]
        with self.lock:
            seen = {file_id}
            while stack:
                for child in self.children(stack.pop()):
                    if child["id"] not in seen:
                        seen.add(child["id"])
                        out.append(child)
                        stack.append(child["id"])
        return out

    def all_files(self) -> list[dict]:
        """Every file and folder record (not the container roots)."""
        with self.lock:
            return [r for r in self.files.values() if not self.is_container_root(r["id"])]

    def blob_path(self, file_id: str) -> str:
        return os.path.join(self.blob_dir, file_id)

    def revision_path(self, file_id: str, revision_id: str) -> str:
        """Where an old (non-head) revision's bytes live."""
        return os.path.join(self.blob_dir, f"{file_id}@{revision_id}")

    # ----------------------------------------------------------------- mutations
    def create(self, title: str, mime: str, parent_ids: Iterable[str], *,
               blob: Optional[str] = None, size: int = 0, md5: Optional[str] = None,
               meta: Optional[dict] = None, owner: Optional[str] = None,
               shortcut: Optional[dict] = None, app_created: bool = False,
               file_id: Optional[str] = None, sums: Optional[dict] = None) -> dict:
        """Create a file (content moved in from the finished temp file ``blob``), a folder or
        a shortcut (``shortcut`` holds its details; it has no content). ``file_id``: an id
        :meth:`generate_ids` gave, taken now (:meth:`check_new_id` says why not)."""
        if sums is None and blob is not None and shortcut is None:
            sums = blob_checksums(blob)   # (``sums``: known already)
        # Both refused (400) before the bytes are moved in.
        dates = self._client_dates(meta or {})
        if meta and "properties" in meta:
            properties.merged([], meta["properties"], meta.get(properties.APP_FIELD))
        with self.lock:
            self.check_open()
            parents, drive_id = self.check_parents(parent_ids)
            if file_id is not None:
                self.check_new_id(file_id)
                self.generated[file_id] = True
                self._db.execute("INSERT OR REPLACE INTO ids VALUES (?, ?)", (file_id, "true"))
            # Items made within one millisecond (a warm client makes one in less) get
            # increasing dates, as the order they were made: which of two same-named folders
            # is the oldest then never hangs on their random ids (dedupe's tests flaked so).
            now = self.now()
            if now < self._last_created + 0.0011 < now + 1.0:   # (a clock_offset moved back:
                now = self._last_created + 0.0011                # the dates go back with it)
            self._last_created = now
            rec = self._new_record(file_id or new_id(), title, mime, parents, drive_id, now)
            if drive_id is None and owner is not None:
                rec["owner"] = owner
            if app_created:
                rec["app_created"] = True
            if shortcut is not None:
                rec["mimeType"] = SHORTCUT_MIME
                rec["shortcut"] = dict(shortcut)
            elif mime != FOLDER_MIME:
                if blob is None:
                    blob, size, md5 = self._empty_blob()
                    sums = {name: hashlib.new(name, b"").hexdigest() for name in ("sha1", "sha256")}
                os.replace(blob, self.blob_path(rec["id"]))
                rec["size"], rec["md5"] = size, md5
                rec.update(sums or {})
                rec["head_rev"] = new_id("0B")
            self._apply_meta(rec, meta or {})
            rec.update(dates)
            if not rec["trashed"] and self._in_trash(parents):
                rec.update(trashed=True, explicitlyTrashed=False)
            self._put("files", self.files, rec)
            return rec

    @staticmethod
    def _client_dates(meta: dict) -> dict:
        """A new item's ``createdDate`` and ``modifiedDate`` as the client gave them (else
        Drive stamps now): the v2 File marks neither "Output only" (as it marks ``version``,
        ``md5Checksum``...), and rclone's drive backend sets createdTime from a file's birth
        time ("btime … only writable on fresh uploads", with ``-M``) and modifiedTime
        from its mtime. So a file sent now may say it was created a year ago."""
        from drivestage.emulator.query import QueryError, parse_date
        out = {}
        for field, key in (("createdDate", "created"), ("modifiedDate", "modified")):
            if meta.get(field):
                try:
                    out[key] = parse_date(str(meta[field]))
                except QueryError as exc:
                    raise EmulatorApiError(400, "invalid", str(exc), location=field,
                                           location_type="other") from None
        return out

    def _empty_blob(self) -> tuple[str, int, str]:
        path = os.path.join(self.upload_dir, "empty-" + secrets.token_hex(8))
        open_private(path).close()
        return path, 0, hashlib.md5(b"").hexdigest()

    def update_meta(self, file_id: str, meta: dict, *, add_parents: Iterable[str] = (),
                    remove_parents: Iterable[str] = (), set_modified: bool = False) -> dict:
        """Patch metadata (title, mimeType, parents, labels, description, modifiedDate)."""
        with self.lock:
            rec = dict(self.get(file_id))
            if self.is_container_root(rec["id"]):
                raise EmulatorApiError(403, "cannotModifyRoot", "The root folder cannot be modified.")
            was_trashed = rec["trashed"]
            self._apply_meta(rec, meta, set_modified=set_modified)
            parents = list(rec["parents"])
            for p in add_parents:
                p = self.resolve(p)
                if p not in parents:
                    parents.append(p)
            removed = {self.resolve(p) for p in remove_parents}
            parents = [p for p in parents if p not in removed]
            if parents != rec["parents"] or add_parents or removed:
                rec["parents"], _ = self.check_parents(parents)
            old = self.files[rec["id"]]["parents"]
            self.check_no_cycle(rec["id"], [p for p in rec["parents"] if p not in old])
            if not set_modified:
                rec["modified"] = self.now()
            rec["version"] += 1
            moved = rec["parents"] != self.files[rec["id"]]["parents"] and \
                rec["trashed"] == was_trashed and not rec.get("explicitlyTrashed")
            if moved:
                # Moved into a trashed folder: in the trash with it; an item only trashed
                # with its old folder, moved out of the trash: out of it (_in_trash).
                rec["trashed"] = self._in_trash(rec["parents"])
            self._put("files", self.files, rec)
            if rec["trashed"] != was_trashed:
                return self.set_trashed(rec["id"], rec["trashed"], explicitly=not moved)
            return rec

    def _apply_meta(self, rec: dict, meta: dict, *, set_modified: bool = False) -> None:
        if "title" in meta and meta["title"] is not None:
            rec["title"] = str(meta["title"])
        special = (FOLDER_MIME, SHORTCUT_MIME)
        if meta.get("mimeType") and rec["mimeType"] not in special and meta["mimeType"] not in special:
            rec["mimeType"] = str(meta["mimeType"])
        if "description" in meta:
            rec["description"] = meta["description"]
        if "parents" in meta and meta["parents"] is not None and rec.get("id") in self.files:
            ids = [p["id"] if isinstance(p, dict) else str(p) for p in meta["parents"]]
            rec["parents"], _ = self.check_parents(ids)
        labels = meta.get("labels") or {}
        if "trashed" in labels:
            rec["trashed"] = bool(labels["trashed"])
            rec["explicitlyTrashed"] = rec["trashed"]
        if "starred" in labels:
            rec["starred"] = bool(labels["starred"])
        if "properties" in meta:
            rec["properties"] = properties.merged(rec.get("properties") or [], meta["properties"],
                                                  meta.get(properties.APP_FIELD))
        if set_modified and meta.get("modifiedDate"):
            from drivestage.emulator.query import parse_date
            rec["modified"] = parse_date(meta["modifiedDate"])

    def set_properties(self, file_id: str, props: list, *, touch: bool = False) -> dict:
        """Replace a file's properties; ``touch``: its modifiedDate set to now too."""
        with self.lock:
            rec = dict(self.get(file_id), properties=props)
            rec["modified"] = self.now() if touch else rec["modified"]
            rec["version"] += 1
            self._put("files", self.files, rec)
            return rec

    def update(self, file_id: str, **fields) -> dict:
        """Set record fields directly (the Python API's sharing, flags and limits)."""
        with self.lock:
            rec = dict(self.get(file_id))
            if self.is_container_root(rec["id"]):
                raise ValueError(f"{file_id} is a root folder; it cannot be changed")
            for key, value in fields.items():
                if value is None:
                    rec.pop(key, None)
                else:
                    rec[key] = value
            self._put("files", self.files, rec)
            return rec

    def take_download(self, file_id: str) -> None:
        """Count one download against the file's download quota (``download_limit`` left);
        403 downloadQuotaExceeded once it is spent."""
        with self.lock:
            rec = self.files.get(file_id)
            left = rec.get("download_limit") if rec else None
            if left is None:
                return
            if left <= 0:
                raise drive_error("downloadQuotaExceeded")
            self._put("files", self.files, dict(rec, download_limit=left - 1))

    def add_drive(self, name: str, role: str = "organizer") -> dict:
        """Create a shared drive; its id is also the id of its root folder."""
        with self.lock:
            doc = {"id": new_id("0A"), "name": name, "created": self.now(), "role": role}
            self._put("drives", self.drives, doc)
            return doc

    def copy_blob_to_temp(self, src) -> str:
        """A temp copy of a file's content, read from ``src`` (for files.copy)."""
        tmp = os.path.join(self.upload_dir, "copy-" + secrets.token_hex(8))
        with open_private(tmp) as dst:
            shutil.copyfileobj(src, dst, _COPY_CHUNK)
        return tmp

