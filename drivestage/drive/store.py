"""Google Drive as a :class:`~drivestage.store.RemoteStore`.

:func:`connect` builds PyDrive2's ``GoogleAuth``/``GoogleDrive`` and the googleapiclient
service without touching the network (the Drive v2 discovery document ships with
googleapiclient), for Google or for any endpoint given by ``api_root`` /
``$DRIVESTAGE_API_ROOT`` such as ``drivestage emulator``.

PyDrive2 does metadata (listing, folders, trash/delete, about); bytes go through raw
ranged reads (:mod:`drivestage.drive.media`) and the resumable upload protocol
(:mod:`drivestage.drive.upload`). PyDrive2 never retries, so every call here runs under the
:class:`~drivestage.drive.transport.Transport`'s retry loop, and a failed answer is typed by
:func:`drivestage.drive.answers.typed_error`.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
from typing import Any, Iterator, Optional, Union

from drivestage.drive import answers, auth
from drivestage.drive.media import DEFAULT_CHUNK_SIZE, MediaReader
from drivestage.drive.resources import FOLDER_MIME, entry_from_resource, is_trashed
from drivestage.drive.transport import Transport
from drivestage.drive.upload import upload_file
from drivestage.errors import DuplicateNameError, NotFoundError, RemoteError, UsageError
from drivestage.paths import DrivePath, StorePath
from drivestage.store import ByteSink, Md5Source, ProgressFn, Quota, RemoteEntry, RemoteStore

log = logging.getLogger(__name__)

_DOC_LOCK = threading.Lock()
_DOC_TEXT: Optional[str] = None


def _discovery_doc(api_root: Optional[str]) -> dict[str, Any]:
    """The Drive v2 discovery document, pointed at ``api_root`` when given."""
    global _DOC_TEXT
    with _DOC_LOCK:
        if _DOC_TEXT is None:
            from googleapiclient.discovery_cache import get_static_doc

            _DOC_TEXT = get_static_doc("drive", "v2")
            if _DOC_TEXT is None:  # pragma: no cover - ships with googleapiclient
                raise RemoteError("the Drive v2 discovery document is missing from "
                                  "google-api-python-client; reinstall it")
    doc: dict[str, Any] = json.loads(_DOC_TEXT)
    if api_root:
        root = api_root.rstrip("/") + "/"
        # rootUrl alone is what both the JSON and the media-upload URLs derive from;
        # client_options' api_endpoint would leave uploads pointing at https://googleapis.
        doc["rootUrl"] = root
        doc["mtlsRootUrl"] = root
        doc["baseUrl"] = root + doc["servicePath"]
    return doc


def _api_root(api_root: Optional[str]) -> Optional[str]:
    root = api_root if api_root is not None else os.environ.get("DRIVESTAGE_API_ROOT")
    if not root:
        return None
    if not re.match(r"^https?://[^/]+", root):
        raise UsageError(f"--api-root {root!r} is not an http(s) URL "
                         "(e.g. http://127.0.0.1:8765/)")
    return root.rstrip("/") + "/"


def connect(api_root: Optional[str] = None, credentials: Optional[str] = None,
            token: Optional[str] = None, *, timeout: Optional[float] = None) -> "DriveStore":
    """A :class:`DriveStore` on My Drive of the account found by :mod:`drivestage.drive.auth`.

    ``api_root`` defaults to ``$DRIVESTAGE_API_ROOT``; with it, the token defaults to
    ``$DRIVESTAGE_TOKEN``. No network is used until the first call.
    """
    from googleapiclient.discovery import build_from_document
    from pydrive2.auth import GoogleAuth
    from pydrive2.drive import GoogleDrive

    root = _api_root(api_root)
    creds = auth.load_credentials(credentials=credentials, token=token, api_root=root)
    # An explicit settings dict: GoogleAuth would otherwise read ./settings.yaml if present.
    gauth = GoogleAuth(settings=dict(GoogleAuth.DEFAULT_SETTINGS), http_timeout=timeout)
    gauth.credentials = creds
    gauth.http = creds.authorize(auth.build_http(timeout))
    gauth.service = build_from_document(_discovery_doc(root), http=gauth.http)
    return DriveStore(Transport(gauth, timeout=timeout), GoogleDrive(gauth), api_root=root)


def _join(where: str, name: str) -> str:
    """``drive:a`` + ``b`` -> ``drive:a/b`` (``drive:`` + ``b`` -> ``drive:b``)."""
    return f"drive:{name}" if where == "drive:" else f"{where.rstrip('/')}/{name}"


def _parsed(path: Union[str, StorePath]) -> tuple[Optional[str], tuple[str, ...]]:
    sp = path if isinstance(path, StorePath) else StorePath.parse(path)
    return sp.start, sp.names


#: Pages of one listing before it is given up: 1,000 pages of 1,000 items is twice what one
#: Drive folder can hold (500,000 children); a server that keeps sending new page tokens
#: beyond that is looping.
MAX_PAGES = 1000


def _check_page_token(token: str, seen: set[str], where: str) -> None:
    """Refuse a ``nextPageToken`` this listing already followed: the server is looping."""
    if token in seen:
        raise RemoteError(f"listing {where}: Drive sent the same page token twice (after "
                          f"{len(seen) + 1} pages), so the listing would never end; stopped. "
                          "Try again later; if it persists, the server (or a proxy) is broken")
    seen.add(token)


def _too_many_pages(where: str) -> RemoteError:
    return RemoteError(f"listing {where}: more than {MAX_PAGES} pages, more than a Drive "
                       "folder can hold; stopped (the server keeps sending new page tokens). "
                       "Try again later")


def _escape(name: str) -> str:
    """A name inside a ``q`` string literal."""
    return name.replace("\\", "\\\\").replace("'", "\\'")


class DriveStore(RemoteStore):
    """Google Drive (My Drive, or one shared drive) behind the :class:`RemoteStore` protocol.

    Store paths are ``a/b/c`` from the store's root or ``id:<ID>[/a/b]``. Folder ids found
    while resolving are cached for the life of the store (one run).
    """

    def __init__(self, transport: Transport, drive: Any, *, api_root: Optional[str] = None,
                 root_id: str = "root", drive_id: Optional[str] = None,
                 label: str = "drive:"):
        self.transport = transport
        self.drive = drive            # PyDrive2's GoogleDrive: metadata calls
        self.api_root = api_root
        self.root_id = root_id
        self.drive_id = drive_id      # set for a shared drive
        self.label = label            # "drive:" or "drive:shared/<name>/"
        self._reader = MediaReader(transport)
        self._folder_ids: dict[tuple[str, ...], str] = {(): root_id}
        self._names: dict[str, str] = {root_id: label}

    def __repr__(self) -> str:
        return f"<DriveStore {self.label} at {self.api_root or 'googleapis.com'}>"

    @property
    def service(self) -> Any:
        """The googleapiclient Drive v2 service."""
        return self.transport.service

    def set_retries(self, attempts: Optional[int]) -> None:
        """Attempts per Drive request (None: ``$DRIVESTAGE_RETRY_ATTEMPTS`` or 8)."""
        self.transport.attempts = attempts

    def _list_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"maxResults": 1000, "supportsAllDrives": True,
                                  "includeItemsFromAllDrives": True}
        if self.drive_id:
            params.update(corpora="drive", driveId=self.drive_id)
        return params

    # ----------------------------------------------------------------- entries

    def describe(self, entry: RemoteEntry) -> str:
        """``drive:a/b/c.zip`` when we know the path, else ``drive:id:<ID>``."""
        return self._names.get(entry.id) or f"drive:id:{entry.id}"

    def _remember(self, entry: RemoteEntry, where: str) -> RemoteEntry:
        self._names[entry.id] = where
        return entry

    # ----------------------------------------------------------------- metadata

    def _get(self, file_id: str, where: str) -> dict[str, Any]:
        f = self.drive.CreateFile({"id": file_id})
        self.transport.call(f"stat {where}", f.FetchMetadata)
        return dict(f)

    def stat(self, entry: RemoteEntry) -> RemoteEntry:
        """Fresh metadata for ``entry`` (one files.get)."""
        where = self.describe(entry)
        res = self._get(entry.id, where)
        if is_trashed(res):
            raise NotFoundError(f"{where} is in the trash; restore it first")
        return self._remember(entry_from_resource(res), where)

    def _children(self, parent_id: str, where: str,
                  name: Optional[str] = None) -> list[dict[str, Any]]:
        q = f"'{parent_id}' in parents and trashed=false"
        if name is not None:
            q += f" and title='{_escape(name)}'"
        params = dict(self._list_params(), q=q)

        # PyDrive2's GetList() stops after one page when maxResults is set; walk the pages
        # ourselves, retrying each page on its own.
        listing = self.drive.ListFile(params)

        def page() -> Optional[list[Any]]:
            try:
                return list(next(listing))
            except StopIteration:
                return None

        items: list[dict[str, Any]] = []
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            got = self.transport.call(f"list {where}", page)
            if got is None:
                break
            items.extend(dict(f) for f in got)
            token = listing.get("pageToken")
            if token is None:
                break
            _check_page_token(token, seen, where)
        else:
            raise _too_many_pages(where)
        if name is not None:  # Drive's title match ignores case: keep exact names only
            items = [it for it in items if it.get("title") == name]
        # One item listed twice (a page served again) is one item, not a duplicate name.
        unique = {it.get("id"): it for it in items}
        return [it for it in unique.values() if not is_trashed(it)]

    def _child(self, parent_id: str, name: str, parent_where: str,
               where: str) -> Optional[dict[str, Any]]:
        found = self._children(parent_id, parent_where, name)
        if len(found) > 1:
            ids = [it["id"] for it in found]
            raise DuplicateNameError(
                f"{where} matches {len(ids)} items with that exact name (ids "
                f"{', '.join(ids)}); Drive allows duplicates. Address one by id, e.g. "
                f"drive:id:{ids[0]}, or rename/delete the others.", ids=ids)
        return found[0] if found else None

    def resolve(self, path: Union[str, StorePath]) -> RemoteEntry:
        """The entry at ``path`` (``a/b/c`` or ``id:<ID>[/a/b]``), exact names."""
        start, names = _parsed(path)
        if start is not None:
            base_where = f"drive:id:{start}"
            res = self._get(start, base_where)
            if is_trashed(res):
                raise NotFoundError(f"{base_where} is in the trash; restore it first")
            cur = entry_from_resource(res)
            self._remember(cur, base_where)
            key: Optional[tuple[str, ...]] = None
        else:
            base_where = self.label.rstrip("/") if names else self.label
            cur = RemoteEntry(id=self.root_id, name="", is_dir=True)
            key = ()
        where = base_where
        for i, name in enumerate(names):
            parent_where, where = where, _join(where, name)
            if not cur.is_dir:
                raise NotFoundError(f"{where}: {self.describe(cur)} is a file, not a folder")
            cached = self._folder_ids.get(key + (name,)) if key is not None else None
            if cached is not None and i < len(names) - 1:
                cur = RemoteEntry(id=cached, name=name, is_dir=True)
            else:
                child = self._child(cur.id, name, parent_where, where)
                if child is None:
                    raise NotFoundError(f"{where} not found (no item named {name!r} in "
                                        f"{self.describe(cur)}; names are case-sensitive)")
                cur = entry_from_resource(child)
            self._remember(cur, where)
            if key is not None:
                key = key + (name,)
                if cur.is_dir:
                    self._folder_ids[key] = cur.id
        return cur

    def list(self, folder: RemoteEntry) -> list[RemoteEntry]:
        """Children of ``folder`` (all pages), trashed items excluded."""
        where = self.describe(folder)
        out = []
        for res in self._children(folder.id, where):
            entry = entry_from_resource(res)
            out.append(self._remember(entry, _join(where, entry.name)))
        return out

    def make_folders(self, path: Union[str, StorePath]) -> RemoteEntry:
        """``mkdir -p``; a retried create first looks again, so no duplicate folders."""
        start, names = _parsed(path)
        cur = self.resolve(f"id:{start}") if start else \
            RemoteEntry(id=self.root_id, name="", is_dir=True)
        key: Optional[tuple[str, ...]] = () if start is None else None
        where = self.describe(cur)
        for name in names:
            parent_where, where = where, _join(where, name)
            cached = self._folder_ids.get(key + (name,)) if key is not None else None
            if cached is not None:
                cur = RemoteEntry(id=cached, name=name, is_dir=True)
            else:
                cur = self._ensure_folder(cur, name, parent_where, where)
            self._remember(cur, where)
            if key is not None:
                key = key + (name,)
                self._folder_ids[key] = cur.id
        return cur

    def _ensure_folder(self, parent: RemoteEntry, name: str, parent_where: str,
                       where: str) -> RemoteEntry:
        for attempt in self.transport.retrying(f"create folder {where}"):
            with attempt:
                existing = self._child(parent.id, name, parent_where, where)
                if existing is not None:
                    if existing.get("mimeType") != FOLDER_MIME:
                        raise UsageError(f"{where} exists and is a file, not a folder")
                    return entry_from_resource(existing)
                f = self.drive.CreateFile({"title": name, "mimeType": FOLDER_MIME,
                                           "parents": [{"id": parent.id}]})
                f.Upload()
                log.info("created folder %s", where)
                return entry_from_resource(dict(f))
        raise AssertionError("unreachable")  # pragma: no cover

    def delete(self, entry: RemoteEntry, *, trash: bool = False) -> None:
        """Delete permanently (or move to the trash); already gone on a retry is fine."""
        where = self.describe(entry)
        f = self.drive.CreateFile({"id": entry.id})
        tried = []

        def once() -> None:
            tried.append(1)
            try:
                (f.Trash if trash else f.Delete)()
            except Exception as exc:
                failure = answers.failure_of(exc)
                if failure is not None and failure.gone and len(tried) > 1:
                    return  # an earlier attempt went through before its answer was lost
                raise

        self.transport.call(f"{'trash' if trash else 'delete'} {where}", once)
        self._names.pop(entry.id, None)
        self._folder_ids = {k: v for k, v in self._folder_ids.items() if v != entry.id}

    def quota(self) -> Quota:
        """Used / total / trash bytes of the account (``total`` None when unlimited)."""
        about = self.transport.call("read the Drive quota", self.drive.GetAbout)
        total = int(about.get("quotaBytesTotal") or 0)
        return Quota(total=total if total > 0 and about.get("quotaType") != "UNLIMITED"
                     else None,
                     used=int(about.get("quotaBytesUsed") or 0),
                     trash=int(about.get("quotaBytesUsedInTrash") or 0))

    def find_shared_drive(self, name: str) -> str:
        """The id of the shared drive called exactly ``name``."""
        items: list[dict[str, Any]] = []

        def fetch() -> None:
            items.clear()
            token = None
            seen: set[str] = set()
            for _ in range(MAX_PAGES):
                kwargs: dict[str, Any] = {"maxResults": 100}
                if token:
                    kwargs["pageToken"] = token
                page = self.service.drives().list(**kwargs).execute(
                    http=self.transport.http())
                items.extend(page.get("items") or [])
                token = page.get("nextPageToken")
                if not token:
                    return
                _check_page_token(token, seen, "the shared drives")
            raise _too_many_pages("the shared drives")

        self.transport.call(f"list shared drives (looking for {name!r})", fetch)
        found = [d for d in items if d.get("name") == name]
        if not found:
            names = ", ".join(sorted(repr(d.get("name")) for d in items)) or "none"
            raise NotFoundError(f"no shared drive named {name!r} (this account sees: "
                                f"{names}; names are case-sensitive)")
        if len(found) > 1:
            ids = [d["id"] for d in found]
            raise DuplicateNameError(f"{len(ids)} shared drives are named {name!r} (ids "
                                     f"{', '.join(ids)}); use drive:id:<ID>/path instead",
                                     ids=ids)
        return str(found[0]["id"])

    def in_shared_drive(self, name: str) -> "DriveStore":
        """A store on the same connection, rooted at the shared drive ``name``."""
        drive_id = self.find_shared_drive(name)
        return DriveStore(self.transport, self.drive, api_root=self.api_root, root_id=drive_id,
                          drive_id=drive_id, label=f"drive:shared/{name}/")

    # ----------------------------------------------------------------- bytes

    def fetch_range(self, entry: RemoteEntry, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of ``entry`` in one ranged GET, retried as a whole."""
        return self._reader.fetch_range(entry, start, end, self.describe(entry))

    def read_into(self, entry: RemoteEntry, start: int, sink: ByteSink) -> int:
        """One long ranged GET from ``start`` to ``sink.limit()``, resumed after failures."""
        return self._reader.read_into(entry, start, sink, self.describe(entry))

    def requests_made(self) -> int:
        """Requests sent on this store's credentials so far."""
        return self.transport.calls

    def read_range(self, entry: RemoteEntry, start: int, end: int, *,
                   chunk_size: Optional[int] = None) -> Iterator[bytes]:
        """Stream bytes ``[start, end)``: one ranged GET per chunk, each chunk retried."""
        step = chunk_size or DEFAULT_CHUNK_SIZE
        pos = start
        while pos < end:
            stop = min(end, pos + step)
            yield self.fetch_range(entry, pos, stop)
            pos = stop

    def upload(self, local_path: str, folder: RemoteEntry, name: str, *,
               replace: Optional[RemoteEntry] = None, progress: Optional[ProgressFn] = None,
               chunk_size: Optional[int] = None,
               md5_cache: Optional[Md5Source] = None) -> RemoteEntry:
        """Resumable, md5-verified upload (see :mod:`drivestage.drive.upload`)."""
        return upload_file(self.transport, self, local_path, folder, name, replace=replace,
                           chunk_size=chunk_size, progress=progress, md5_cache=md5_cache)


def open_drive(path: DrivePath, *, api_root: Optional[str] = None,
               credentials: Optional[str] = None,
               token: Optional[str] = None) -> tuple[DriveStore, StorePath]:
    """A parsed ``drive:`` path -> (store rooted where it starts, the path inside it)."""
    store = connect(api_root=api_root, credentials=credentials, token=token)
    if path.anchor == "shared":
        assert path.shared_drive is not None
        store = store.in_shared_drive(path.shared_drive)
    return store, path.store_path
