"""Google Drive as a :class:`~drivestage.store.RemoteStore`.

:func:`connect` builds PyDrive2's ``GoogleAuth``/``GoogleDrive`` and the googleapiclient
service without touching the network (the Drive v2 discovery document ships with
googleapiclient), for Google or for any endpoint given by ``api_root`` /
``$DRIVESTAGE_API_ROOT`` such as ``drivestage emulator``.

PyDrive2 does metadata (listing, folders, trash/delete, about); bytes go through raw
ranged ``files().get_media`` requests on per-thread connections. PyDrive2 never retries, so
every call here runs under :mod:`drivestage.drive.retry`; after a lost connection the thread's
keep-alive connection is dropped, because a reset mid-response poisons it for one more
request.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
from datetime import datetime
from typing import Any, Callable, Iterator, Optional, TypeVar

from drivestage import paths
from drivestage.drive import auth, retry
from drivestage.errors import (DuplicateNameError, NotFoundError, RemoteError, UsageError)
from drivestage.store import ProgressFn, Quota, RemoteEntry

log = logging.getLogger(__name__)

T = TypeVar("T")

FOLDER_MIME = "application/vnd.google-apps.folder"
GOOGLE_APPS_PREFIX = "application/vnd.google-apps."
#: One ranged GET; large enough that request overhead is small, small enough for memory.
DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024

_DOC_LOCK = threading.Lock()
_DOC_TEXT: Optional[str] = None


def _discovery_doc(api_root: Optional[str]) -> dict:
    """The Drive v2 discovery document, pointed at ``api_root`` when given."""
    global _DOC_TEXT
    with _DOC_LOCK:
        if _DOC_TEXT is None:
            from googleapiclient.discovery_cache import get_static_doc

            _DOC_TEXT = get_static_doc("drive", "v2")
            if _DOC_TEXT is None:  # pragma: no cover - ships with googleapiclient
                raise RemoteError("the Drive v2 discovery document is missing from "
                                  "google-api-python-client; reinstall it")
    doc = json.loads(_DOC_TEXT)
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
    return DriveStore(gauth, GoogleDrive(gauth), api_root=root, timeout=timeout)


def parse_time(stamp: Optional[str]) -> float:
    """RFC 3339 (``2024-01-02T03:04:05.678Z``) to seconds since the epoch; 0 when absent."""
    if not stamp:
        return 0.0
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _join(where: str, name: str) -> str:
    """``drive:a`` + ``b`` -> ``drive:a/b`` (``drive:`` + ``b`` -> ``drive:b``)."""
    return f"drive:{name}" if where == "drive:" else f"{where.rstrip('/')}/{name}"


def _escape(name: str) -> str:
    """A name inside a ``q`` string literal."""
    return name.replace("\\", "\\\\").replace("'", "\\'")


class DriveStore:
    """Google Drive (My Drive, or one shared drive) behind the :class:`RemoteStore` protocol.

    Store paths are ``a/b/c`` from the store's root or ``id:<ID>[/a/b]``. Folder ids found
    while resolving are cached for the life of the store (one run).
    """

    def __init__(self, gauth: Any, drive: Any, *, api_root: Optional[str] = None,
                 root_id: str = "root", drive_id: Optional[str] = None,
                 label: str = "drive:", timeout: Optional[float] = None):
        self.gauth, self.drive, self.service = gauth, drive, gauth.service
        self.api_root = api_root
        self.root_id = root_id
        self.drive_id = drive_id      # set for a shared drive
        self.label = label            # "drive:" or "drive:shared/<name>/"
        self.timeout = timeout
        self.attempts: Optional[int] = None  # per-call retry attempts; None: the env default
        self._local = threading.local()
        self._folder_ids: dict[tuple[str, ...], str] = {(): root_id}
        self._names: dict[str, str] = {root_id: label}
        self._media_uri: dict[str, str] = {}
        self._native: set[str] = set()  # Google Docs/Sheets/...: no bytes to download

    def is_native(self, entry: RemoteEntry) -> bool:
        """True for a Google Docs/Sheets/Slides item (it has no binary content)."""
        return entry.id in self._native or (not entry.is_dir and entry.md5 is None)

    def __repr__(self) -> str:
        return f"<DriveStore {self.label} at {self.api_root or 'googleapis.com'}>"

    # ----------------------------------------------------------------- plumbing

    @property
    def credentials(self) -> auth.DriveCredentials:
        return self.gauth.credentials

    def http(self) -> Any:
        """This thread's authorized ``httplib2.Http`` for raw byte requests."""
        http = getattr(self._local, "http", None)
        if http is None:
            http = self._local.http = self.credentials.authorize(auth.build_http(self.timeout))
        return http

    def drop_connections(self) -> None:
        """Forget this thread's connections (ours and PyDrive2's) after a lost connection."""
        self._local.http = None
        self.gauth.thread_local.http = None

    def retrying(self, what: str, *, uploading: bool = False,
                 attempts: Optional[int] = None) -> retry.DriveRetrying:
        """The retry policy, dropping this thread's connection after a connection loss."""
        def on_retry(exc: BaseException, info: retry.Retryable) -> None:
            if info.connection_lost:
                self.drop_connections()

        return retry.retrying(what, attempts if attempts is not None else self.attempts,
                              on_retry=on_retry, uploading=uploading)

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` under :meth:`retrying`."""
        return self.retrying(what)(fn, *args, **kwargs)

    def _list_params(self) -> dict:
        params: dict[str, Any] = {"maxResults": 1000, "supportsAllDrives": True,
                                  "includeItemsFromAllDrives": True}
        if self.drive_id:
            params.update(corpora="drive", driveId=self.drive_id)
        return params

    # ----------------------------------------------------------------- entries

    def entry_from_resource(self, res: dict) -> RemoteEntry:
        """A Drive v2 File resource as a :class:`RemoteEntry`."""
        parents = res.get("parents") or []
        mime = res.get("mimeType") or ""
        if mime.startswith(GOOGLE_APPS_PREFIX) and mime != FOLDER_MIME:
            self._native.add(res["id"])
        return RemoteEntry(
            id=res["id"], name=res.get("title", ""),
            is_dir=res.get("mimeType") == FOLDER_MIME,
            size=int(res.get("fileSize") or 0), md5=res.get("md5Checksum"),
            modified=parse_time(res.get("modifiedDate")),
            parent_id=(parents[0].get("id") if parents else None))

    def describe(self, entry: RemoteEntry) -> str:
        """``drive:a/b/c.zip`` when we know the path, else ``drive:id:<ID>``."""
        return self._names.get(entry.id) or f"drive:id:{entry.id}"

    def _remember(self, entry: RemoteEntry, where: str) -> RemoteEntry:
        self._names[entry.id] = where
        return entry

    # ----------------------------------------------------------------- metadata

    def _get(self, file_id: str, where: str) -> dict:
        f = self.drive.CreateFile({"id": file_id})
        self.call(f"stat {where}", f.FetchMetadata)
        return dict(f)

    def stat(self, entry: RemoteEntry) -> RemoteEntry:
        """Fresh metadata for ``entry`` (one files.get)."""
        where = self.describe(entry)
        res = self._get(entry.id, where)
        if (res.get("labels") or {}).get("trashed"):
            raise NotFoundError(f"{where} is in the trash; restore it first")
        return self._remember(self.entry_from_resource(res), where)

    def stat_resource(self, file_id: str) -> dict:
        """The raw File resource (labels, parents, mimeType...) in one call."""
        return self._get(file_id, f"drive:id:{file_id}")

    def _children(self, parent_id: str, where: str, name: Optional[str] = None) -> list[dict]:
        q = f"'{parent_id}' in parents and trashed=false"
        if name is not None:
            q += f" and title='{_escape(name)}'"
        params = dict(self._list_params(), q=q)

        # PyDrive2's GetList() stops after one page when maxResults is set; walk the pages
        # ourselves, retrying each page on its own.
        listing = self.drive.ListFile(params)

        def page() -> Optional[list]:
            try:
                return next(listing)
            except StopIteration:
                return None

        items: list[dict] = []
        while True:
            got = self.call(f"list {where}", page)
            if got is None:
                break
            items.extend(dict(f) for f in got)
        if name is not None:  # Drive's title match ignores case: keep exact names only
            items = [it for it in items if it.get("title") == name]
        return [it for it in items if not (it.get("labels") or {}).get("trashed")]

    def _child(self, parent_id: str, name: str, parent_where: str,
               where: str) -> Optional[dict]:
        found = self._children(parent_id, parent_where, name)
        if len(found) > 1:
            ids = [it["id"] for it in found]
            raise DuplicateNameError(
                f"{where} matches {len(ids)} items with that exact name (ids "
                f"{', '.join(ids)}); Drive allows duplicates. Address one by id, e.g. "
                f"drive:id:{ids[0]}, or rename/delete the others.", ids=ids)
        return found[0] if found else None

    def resolve(self, path: str) -> RemoteEntry:
        """The entry at ``path`` (``a/b/c`` or ``id:<ID>[/a/b]``), exact names."""
        start, names = paths.split_store_path(path)
        if start is not None:
            base_where = f"drive:id:{start}"
            res = self._get(start, base_where)
            if (res.get("labels") or {}).get("trashed"):
                raise NotFoundError(f"{base_where} is in the trash; restore it first")
            cur = self.entry_from_resource(res)
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
                res = self._child(cur.id, name, parent_where, where)
                if res is None:
                    raise NotFoundError(f"{where} not found (no item named {name!r} in "
                                        f"{self.describe(cur)}; names are case-sensitive)")
                cur = self.entry_from_resource(res)
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
            entry = self.entry_from_resource(res)
            out.append(self._remember(entry, _join(where, entry.name)))
        return out

    def make_folders(self, path: str) -> RemoteEntry:
        """``mkdir -p``; a retried create first looks again, so no duplicate folders."""
        start, names = paths.split_store_path(path)
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
        for attempt in self.retrying(f"create folder {where}"):
            with attempt:
                existing = self._child(parent.id, name, parent_where, where)
                if existing is not None:
                    if existing.get("mimeType") != FOLDER_MIME:
                        raise UsageError(f"{where} exists and is a file, not a folder")
                    return self.entry_from_resource(existing)
                f = self.drive.CreateFile({"title": name, "mimeType": FOLDER_MIME,
                                           "parents": [{"id": parent.id}]})
                f.Upload()
                log.info("created folder %s", where)
                return self.entry_from_resource(dict(f))
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
                failure = retry.http_failure(exc)
                if failure is not None and failure.status == 404 and len(tried) > 1:
                    return  # an earlier attempt went through before its answer was lost
                raise

        self.call(f"{'trash' if trash else 'delete'} {where}", once)
        self._names.pop(entry.id, None)
        self._folder_ids = {k: v for k, v in self._folder_ids.items() if v != entry.id}

    def quota(self) -> Quota:
        """Used / total / trash bytes of the account (``total`` None when unlimited)."""
        about = self.call("read the Drive quota", self.drive.GetAbout)
        total = int(about.get("quotaBytesTotal") or 0)
        return Quota(total=total if total > 0 and about.get("quotaType") != "UNLIMITED"
                     else None,
                     used=int(about.get("quotaBytesUsed") or 0),
                     trash=int(about.get("quotaBytesUsedInTrash") or 0))

    def find_shared_drive(self, name: str) -> str:
        """The id of the shared drive called exactly ``name``."""
        items: list[dict] = []

        def fetch() -> None:
            items.clear()
            token = None
            while True:
                kwargs: dict[str, Any] = {"maxResults": 100}
                if token:
                    kwargs["pageToken"] = token
                page = self.service.drives().list(**kwargs).execute(http=self.http())
                items.extend(page.get("items") or [])
                token = page.get("nextPageToken")
                if not token:
                    return

        self.call(f"list shared drives (looking for {name!r})", fetch)
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
        return found[0]["id"]

    def in_shared_drive(self, name: str) -> "DriveStore":
        """A store on the same connection, rooted at the shared drive ``name``."""
        drive_id = self.find_shared_drive(name)
        store = DriveStore(self.gauth, self.drive, api_root=self.api_root, root_id=drive_id,
                           drive_id=drive_id, label=f"drive:shared/{name}/",
                           timeout=self.timeout)
        store.attempts = self.attempts
        return store

    # ----------------------------------------------------------------- bytes

    def _media_uri_for(self, file_id: str) -> str:
        uri = self._media_uri.get(file_id)
        if uri is None:
            request = self.service.files().get_media(fileId=file_id, supportsAllDrives=True)
            uri = self._media_uri[file_id] = request.uri
        return uri

    def fetch_range(self, entry: RemoteEntry, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of ``entry`` in one ranged GET, retried as a whole."""
        where = f"download {self.describe(entry)} bytes {start}-{end - 1}"
        return self.retrying(where)(self._fetch_once, entry, start, end)

    def _fetch_once(self, entry: RemoteEntry, start: int, end: int) -> bytes:
        uri = self._media_uri_for(entry.id)
        resp, content = self.http().request(uri, "GET",
                                            headers={"range": f"bytes={start}-{end - 1}"})
        retry.raise_for_http(resp.status, content, resp, uri=uri)
        want = end - start
        if resp.status == 206:
            got = _content_range(resp.get("content-range"))
            if got is None or got[0] != start:
                raise retry.TransientError(f"unexpected Content-Range "
                                           f"{resp.get('content-range')!r}")
            if got[2] is not None and got[2] != entry.size:
                raise RemoteError(f"{self.describe(entry)} changed on Drive while downloading "
                                  f"(size {entry.size} became {got[2]}); run again")
        elif resp.status == 200:
            # The server ignored Range and sent the whole file: keep our slice of it.
            if len(content) != entry.size:
                raise retry.TransientError(f"full body of {len(content)} bytes for a "
                                           f"{entry.size}-byte file")
            content = content[start:end]
        else:
            raise RemoteError(f"download {self.describe(entry)}: unexpected HTTP {resp.status}")
        if len(content) != want:
            raise retry.TransientError(f"short body: {len(content)} of {want} bytes")
        return content

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
               chunk_size: Optional[int] = None) -> RemoteEntry:
        """Resumable, md5-verified upload (see :mod:`drivestage.drive.upload`)."""
        from drivestage.drive.upload import upload_file

        return upload_file(self, local_path, folder, name, replace=replace,
                           chunk_size=chunk_size, progress=progress)


def _content_range(value: Optional[str]) -> Optional[tuple[int, int, Optional[int]]]:
    """``bytes a-b/N`` -> ``(a, b, N)`` (N None for ``*``)."""
    if not value:
        return None
    m = re.match(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", value)
    if not m:
        return None
    total = None if m.group(3) == "*" else int(m.group(3))
    return int(m.group(1)), int(m.group(2)), total


def open_drive(spec: str, *, api_root: Optional[str] = None,
               credentials: Optional[str] = None,
               token: Optional[str] = None) -> tuple[DriveStore, str]:
    """``drive:...`` -> (store rooted where the spec starts, store-relative path)."""
    parsed = paths.parse(spec)
    store = connect(api_root=api_root, credentials=credentials, token=token)
    if parsed.anchor == "shared":
        assert parsed.shared_drive is not None
        store = store.in_shared_drive(parsed.shared_drive)
    return store, parsed.store_path
