"""Resumable, chunked, md5-verified uploads that survive the death of the process.

One upload = one Drive resumable session. The session URI is written to a small
JSON file under the state dir *before the first byte is sent*, so a process
killed mid-upload resumes the same session on the next run: it asks the server
how much it kept (``PUT`` with ``Content-Range: bytes */N``) and continues from
there. Nothing is sent twice beyond the last committed chunk, and no duplicate
file appears on Drive (a session creates its file only when it completes).

The bytes go through googleapiclient (``files().insert/update`` with a
resumable ``MediaUpload``); we drive ``next_chunk()`` ourselves, one chunk at a
time, with the project's one retry policy around each chunk. The local md5 is
computed from the bytes as they are read for sending (each byte hashed once,
even when a chunk is re-sent), then compared with Drive's ``md5Checksum``.

The session URIs and the md5 cache are local state (:mod:`drivestage.state`).
"""
from __future__ import annotations

import hashlib
import json
import logging
import mimetypes
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Callable, Optional

from googleapiclient.http import MediaUpload

from drivestage.drive import retry
from drivestage.localfs import file_md5  # noqa: F401 (re-exported)
from drivestage.state import Md5Cache, UploadSessions, _stat_key, state_dir  # noqa: F401
from drivestage.errors import (
    ChecksumMismatchError,
    DailyUploadCapError,
    DriveStageError,
    QuotaExceededError,
    RemoteError,
    ServiceAccountStorageError,
    SourceChangedError,
)
from drivestage.store import ProgressFn, Quota, RemoteEntry
from drivestage.store import quota_error as store_quota_error

log = logging.getLogger(__name__)

KiB = 1024
MiB = 1024 * KiB
#: Drive wants every non-final chunk to be a multiple of this.
CHUNK_UNIT = 256 * KiB
#: Chosen with bench/push.py: fewer, larger chunks mean fewer round trips (each one a
#: request Drive must answer); memory does not grow with it (chunks are streamed).
DEFAULT_CHUNK_SIZE = 64 * MiB
#: How many times a file that keeps changing while we send it is sent again.
MAX_CHANGED_ATTEMPTS = 3

FOLDER_MIME = "application/vnd.google-apps.folder"


# --------------------------------------------------------------------------- media

class _HashingMedia(MediaUpload):
    """A resumable ``MediaUpload`` over a local file that hashes bytes in file order.

    ``getbytes`` hands googleapiclient a :class:`_ChunkBody`, which http.client
    streams from the file in blocks: memory stays at a few blocks whatever the
    chunk size, and the body can be sent again (httplib2 re-sends a request on a
    stale keep-alive connection; the client re-sends after a token refresh),
    which a one-shot stream cannot. Bytes are hashed the first time their offset
    is read; a jump forward (resuming at the server's offset) hashes the skipped
    range from the file first, so the digest is of the whole file, front to back.
    """

    def __init__(self, path: str, size: int, mimetype: str, chunksize: int):
        self._fh = open(path, "rb")
        self.opened = os.fstat(self._fh.fileno())
        self._size = size
        self._mimetype = mimetype
        self._chunksize = chunksize
        self._md5 = hashlib.md5()
        self._hashed = 0
        self._pending: list = []
        self._pool: Optional[ThreadPoolExecutor] = None

    # googleapiclient's MediaUpload interface
    def chunksize(self) -> int:
        return self._chunksize

    def mimetype(self) -> str:
        return self._mimetype

    def size(self) -> int:
        return self._size

    def resumable(self) -> bool:
        return True

    def has_stream(self) -> bool:
        return False

    def stream(self):  # pragma: no cover - has_stream() is False
        raise NotImplementedError

    def getbytes(self, begin: int, length: int) -> "_ChunkBody":
        self._hash_until(begin)
        # Never past the size announced to the server (the file may be growing).
        return _ChunkBody(self, begin, max(0, min(length, self._size - begin)))

    def to_json(self) -> str:  # pragma: no cover - never serialised
        raise NotImplementedError

    # ours
    def _read_at(self, offset: int, n: int) -> bytes:
        """``n`` bytes at ``offset``, hashed if this is their first reading."""
        self._fh.seek(offset)
        data = self._fh.read(n)
        end = offset + len(data)
        if offset <= self._hashed < end:
            fresh = memoryview(data)[self._hashed - offset:]
            if self._size <= _BODY_BLOCK:
                self._md5.update(fresh)  # a small file: a thread would cost more than it saves
            else:
                # Hashed in a helper thread while the block is on the wire (hashlib releases
                # the GIL); one worker keeps the updates in file order; few blocks wait.
                while len(self._pending) >= 2:
                    self._pending.pop(0).result()
                self._pending.append(self._hasher().submit(self._md5.update, fresh))
            self._hashed = end
        return data

    def _hasher(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drivestage-md5")
        return self._pool

    def _drain(self) -> None:
        for fut in self._pending:
            fut.result()
        self._pending.clear()

    def _hash_until(self, offset: int) -> None:
        if offset <= self._hashed:
            return
        self._drain()
        self._fh.seek(self._hashed)
        while self._hashed < offset:
            buf = self._fh.read(min(4 * MiB, offset - self._hashed))
            if not buf:
                break
            self._md5.update(buf)
            self._hashed += len(buf)

    def hexdigest(self) -> str:
        """md5 of the whole file (hashing whatever was not read for sending)."""
        self._hash_until(self._size)
        self._drain()
        # Bytes beyond the size we announced (the file grew) are not part of it.
        return self._md5.hexdigest()

    def changed_since(self, st: os.stat_result) -> bool:
        """Whether the file being sent is not (or no longer) the one ``st`` describes.

        It asks the open file, not the path: a writer that replaced the path atomically
        (temporary file + rename) left these bytes whole, and the next push sends the new
        file; one that writes in place changes this very file."""
        return (_stat_key(self.opened) != _stat_key(st)
                or _stat_key(os.fstat(self._fh.fileno())) != _stat_key(st))

    def close(self) -> None:
        self._drain()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._fh.close()


class _ShortRead(DriveStageError):
    """The file ended before the chunk did: it shrank while being sent."""


class _ChunkBody:
    """One chunk of the file as a request body: ``len()`` for googleapiclient, ``read()``
    for http.client, ``seek(0)`` for a re-send. A read after the end starts a new pass,
    so a re-send by httplib2 (which neither seeks nor asks) sends the chunk again."""

    def __init__(self, media: _HashingMedia, begin: int, length: int):
        self._media, self._begin, self._length = media, begin, length
        self._pos = begin
        self._ended = False

    def __len__(self) -> int:
        return self._length

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos, self._ended = self._begin + offset, False
        return offset

    def tell(self) -> int:
        return self._pos - self._begin

    def read(self, n: int = -1) -> bytes:
        # http.client asks for 8 KiB blocks; larger blocks cost far fewer calls.
        if self._ended:
            self._pos, self._ended = self._begin, False
        left = self._begin + self._length - self._pos
        if left <= 0:
            self._ended = True
            return b""
        data = self._media._read_at(self._pos, min(left, _BODY_BLOCK))
        if not data:
            raise _ShortRead(f"the file ended at byte {self._pos} while it was uploaded")
        self._pos += len(data)
        return data


_BODY_BLOCK = MiB


# --------------------------------------------------------------------------- transport

_local = threading.local()


def _http_for(store: Any):
    """This thread's authorized ``httplib2.Http`` (httplib2 is not thread-safe)."""
    per_thread = getattr(store, "http", None)
    if callable(per_thread):
        http = per_thread()
    else:  # a store without its own per-thread connections
        cache = getattr(_local, "https", None)
        if cache is None:
            cache = _local.https = {}
        http = cache.get(id(store))
        if http is None:
            gauth = getattr(store, "gauth", None)
            http = cache[id(store)] = (gauth.Get_Http_Object() if gauth is not None
                                       else store.service._http)
    if 308 in getattr(http, "redirect_codes", ()):
        # 308 is "resume incomplete" here, never a redirect.
        http.redirect_codes = set(http.redirect_codes) - {308}
    return http


def _reset_http(store: Any) -> None:
    """Forget this thread's connection (a reset mid-response poisons keep-alive)."""
    drop = getattr(store, "drop_connections", None)
    if callable(drop):
        drop()
        return
    cache = getattr(_local, "https", None)
    if cache:
        cache.pop(id(store), None)


class _SessionGone(Exception):
    """The server no longer knows the session (expired, or completed and forgotten)."""


class _Interrupted(Exception):
    """A chunk failed in a retryable way; resync the offset before the next try."""


def _entry_from_file(res: dict) -> RemoteEntry:
    """A Drive v2 File resource as a RemoteEntry."""
    modified = 0.0
    stamp = res.get("modifiedDate")
    if stamp:
        try:
            modified = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    parents = res.get("parents") or []
    return RemoteEntry(
        id=res["id"], name=res.get("title", ""),
        is_dir=res.get("mimeType") == FOLDER_MIME,
        size=int(res.get("fileSize") or 0), md5=res.get("md5Checksum"),
        modified=modified, parent_id=parents[0].get("id") if parents else None,
    )


def _to_entry(store: Any, res: dict) -> RemoteEntry:
    convert = getattr(store, "entry_from_resource", None)
    return convert(res) if callable(convert) else _entry_from_file(res)


def _json_body(content: Any) -> dict:
    if isinstance(content, (bytes, bytearray)):
        content = content.decode("utf-8", "replace")
    try:
        data = json.loads(content) if content else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _query_status(http, uri: str, size: int) -> tuple[int, Optional[dict]]:
    """Ask the server how much of the session it kept: ``(offset, file_or_None)``."""
    resp, content = http.request(uri, "PUT", body=b"",
                                 headers={"Content-Range": f"bytes */{size}",
                                          "Content-Length": "0"})
    if resp.status in (200, 201):
        return size, _json_body(content)
    if resp.status == 308:
        rng = resp.get("range")
        return (int(rng.rsplit("-", 1)[1]) + 1 if rng else 0), None
    if resp.status in (404, 410):
        raise _SessionGone(f"session answered {resp.status}")
    retry.raise_for_http(resp.status, content, resp, uri=uri)
    raise AssertionError("unreachable")  # pragma: no cover


# --------------------------------------------------------------------------- retry glue

def _retrying(store: Any, describe: str):
    """The project's one retry policy; a lost connection is dropped before the next try."""
    def on_retry(exc: BaseException, info: Any) -> None:
        if getattr(info, "connection_lost", False):
            _reset_http(store)

    return retry.retrying(describe, uploading=True, on_retry=on_retry)


def quota_error(store: Any, needed: int, where: str = "") -> QuotaExceededError:
    """The quota error with needed / free / trash bytes (the quota read best-effort)."""
    try:
        q: Optional[Quota] = store.quota()
    except Exception as exc:  # the error is about quota; don't hide it behind another
        log.debug("could not read the quota: %s", exc)
        q = None
    return store_quota_error(needed, where, q)


def _map_upload_error(store: Any, exc: BaseException, where: str, size: int
                      ) -> BaseException:
    """A final failure as a typed error; quota errors get needed / free / trash bytes."""
    if isinstance(exc, ServiceAccountStorageError):
        return exc
    if isinstance(exc, QuotaExceededError):
        return quota_error(store, size, where)
    if isinstance(exc, DriveStageError):
        return exc
    failure = retry.http_failure(exc)
    if failure is not None and failure.reason in retry.QUOTA_REASONS:
        return retry.translate(exc, f"uploading {where}", uploading=True)
    return retry.translate(exc, f"uploading {where}", uploading=True)


# --------------------------------------------------------------------------- upload

def upload_file(store: Any, local_path: str, folder: RemoteEntry, name: str, *,
                replace: Optional[RemoteEntry] = None, chunk_size: Optional[int] = None,
                progress: Optional[ProgressFn] = None,
                md5_cache: Optional[Md5Cache] = None,
                sessions: Optional[UploadSessions] = None) -> RemoteEntry:
    """Upload ``local_path`` as ``folder/name`` (in place of ``replace``) and verify it.

    Resumes a session a previous process left for the same file and
    destination. Returns the entry whose ``md5`` equals the local md5. A file
    that changed on disk while it was sent is sent again (then
    :class:`SourceChangedError`); a server md5 that differs from the local one
    gets the remote copy removed and the upload done once more, then
    :class:`ChecksumMismatchError`.
    """
    chunk = int(chunk_size or DEFAULT_CHUNK_SIZE)
    if chunk <= 0 or chunk % CHUNK_UNIT:
        from drivestage.errors import UsageError
        raise UsageError(f"chunk size {chunk} is not a positive multiple of 256 KiB "
                         f"({CHUNK_UNIT} bytes); try {max(1, chunk // CHUNK_UNIT) * CHUNK_UNIT}")
    sessions = sessions or UploadSessions()
    target = replace
    mismatches = 0
    for _ in range(MAX_CHANGED_ATTEMPTS):
        st = os.stat(local_path)
        try:
            entry, local_md5, changed = _upload_once(store, local_path, st, folder, name,
                                                     target, chunk, progress, sessions)
        except (QuotaExceededError, DailyUploadCapError):
            raise
        except DriveStageError:
            # A file that shrank or grew mid-upload makes the server refuse the last chunk.
            if _stat_key(os.stat(local_path)) == _stat_key(st):
                raise
            log.warning("%s changed while it was uploaded; uploading it again", local_path)
            continue
        target = entry  # any further attempt updates this file in place
        if changed:
            log.warning("%s changed while it was uploaded; uploading it again", local_path)
            continue
        if entry.md5 != local_md5:
            mismatches += 1
            log.warning("md5 mismatch after uploading %s: Drive has %s, local %s",
                        local_path, entry.md5, local_md5)
            if mismatches >= 2:
                _delete_quietly(store, entry)
                raise ChecksumMismatchError(
                    f"Drive's md5 of {name} ({entry.md5}) does not match the local file "
                    f"{local_path} ({local_md5}) after two uploads; the remote copy was "
                    "deleted. Check the network path to Drive and run the push again.",
                    expected=local_md5, got=entry.md5)
            if replace is None:
                # A new file: remove the bad copy rather than leave it under the name.
                _delete_quietly(store, entry)
                target = None
            continue
        if md5_cache is not None:
            md5_cache.put(local_path, st, local_md5)
        return entry
    _delete_quietly(store, target)
    raise SourceChangedError(
        f"{local_path} kept changing while it was uploaded ({MAX_CHANGED_ATTEMPTS} tries); "
        "the half-written remote copy was removed. Upload it once the writer is done "
        "(write checkpoints to a temporary name and rename them into place).")


def _delete_quietly(store: Any, entry: Optional[RemoteEntry]) -> None:
    if entry is None:
        return
    try:
        store.delete(entry, trash=False)
    except Exception as exc:
        log.warning("could not remove %s (id %s): %s", entry.name, entry.id, exc)


def _files(store: Any):
    """``service.files()``, built once per thread and store: building it renders every
    method's documentation (milliseconds, which small files would pay each time)."""
    cache = getattr(_local, "files", None)
    if cache is None:
        cache = _local.files = {}
    entry = cache.get(id(store))
    if entry is None or entry[0] is not store.service:
        entry = cache[id(store)] = (store.service, store.service.files())
    return entry[1]


def _build_request(store: Any, folder: RemoteEntry, name: str,
                   replace: Optional[RemoteEntry], media: _HashingMedia):
    files = _files(store)
    if replace is None:
        body = {"title": name, "parents": [{"id": folder.id}], "mimeType": media.mimetype()}
        return files.insert(body=body, media_body=media, supportsAllDrives=True)
    return files.update(fileId=replace.id, body={"title": name}, media_body=media,
                        supportsAllDrives=True)


def _start_session(http, request) -> str:
    """POST the metadata and get the session URI (mirrors googleapiclient's first step)."""
    from googleapiclient.errors import HttpError

    headers = dict(request.headers)
    headers["X-Upload-Content-Type"] = request.resumable.mimetype()
    headers["X-Upload-Content-Length"] = str(request.resumable.size())
    headers["content-length"] = str(request.body_size)
    resp, content = http.request(request.uri, method=request.method, body=request.body,
                                 headers=headers)
    if resp.status == 200 and "location" in resp:
        return resp["location"]
    raise HttpError(resp, content, uri=request.uri)


def _upload_once(store: Any, local_path: str, st: os.stat_result, folder: RemoteEntry,
                 name: str, replace: Optional[RemoteEntry], chunk: int,
                 progress: Optional[ProgressFn], sessions: UploadSessions
                 ) -> tuple[RemoteEntry, str, bool]:
    """Send the file once through a (new or resumed) session.

    Returns (entry, local md5, whether the file changed while it was sent)."""
    size = st.st_size
    mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    key = sessions.key(local_path, folder, name, replace)
    media = _HashingMedia(local_path, size, mimetype, chunk)
    where = f"{local_path} -> {name}"
    try:
        request = _build_request(store, folder, name, replace, media)
        result: Optional[dict] = None
        persisted = False
        saved = sessions.get(key)
        if saved and saved.get("size") == size and saved.get("mtime_ns") == st.st_mtime_ns:
            try:
                offset, result = _retry_call(store, f"resuming {where}",
                                             lambda http: _query_status(http, saved["uri"], size))
                request.resumable_uri = saved["uri"]
                request.resumable_progress = offset
                persisted = True
                log.info("resuming upload of %s at byte %d of %d", local_path, offset, size)
            except _SessionGone:
                log.info("upload session for %s expired; starting a new one", local_path)
                sessions.drop(key)
            except Exception as exc:
                raise _map_upload_error(store, exc, where, size) from exc
        elif saved:
            sessions.drop(key)  # the file changed since: that session holds other bytes
        restarted = False
        while result is None:
            if request.resumable_uri is None:
                persisted = _new_session(store, request, sessions, key, st, chunk, where)
            before = request.resumable_progress
            try:
                result = _send_chunk(store, request, size, where)
            except _SessionGone:
                # Sessions expire (about a week on Drive); start over once.
                sessions.drop(key)
                if restarted:
                    raise RemoteError(f"the upload session for {where} vanished twice; "
                                      "run the push again") from None
                log.warning("upload session for %s vanished; starting a new one", where)
                restarted = True
                request.resumable_uri, request.resumable_progress = None, 0
                continue
            except Exception as exc:
                raise _map_upload_error(store, exc, where, size) from exc
            moved = (size if result is not None else request.resumable_progress) - before
            if progress and moved > 0:
                progress(moved)
        if persisted:
            sessions.drop(key)
        return _to_entry(store, result), media.hexdigest(), media.changed_since(st)
    finally:
        media.close()


def _new_session(store: Any, request, sessions: UploadSessions, key: str,
                 st: os.stat_result, chunk: int, where: str) -> bool:
    """Open a resumable session for ``request``; persist it when the file spans chunks."""
    try:
        uri = _retry_call(store, f"starting upload of {where}",
                          lambda http: _start_session(http, request))
    except Exception as exc:
        raise _map_upload_error(store, exc, where, st.st_size) from exc
    request.resumable_uri = uri
    request.resumable_progress = 0
    if st.st_size <= chunk:
        # Not worth a state write: nothing of a one-chunk file is committed before it
        # completes, and a completed one is found by the next listing.
        return False
    # Persisted before the first byte goes out.
    sessions.put(key, {"uri": uri, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                       "chunk": chunk, "created": time.time()})
    return True


def _retry_call(store: Any, describe: str, call: Callable):
    """Run ``call(http)`` under the retry policy, with a fresh connection after a failure."""
    for attempt in _retrying(store, describe):
        with attempt:
            try:
                return call(_http_for(store))
            except _SessionGone:
                raise
            except Exception:
                _reset_http(store)
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _send_chunk(store: Any, request, size: int, where: str) -> Optional[dict]:
    """Send the next chunk; on failure resync with the server and retry.

    Returns the File resource when the upload is complete, else None. Raises
    _SessionGone when the server no longer knows the session."""
    result = _send_chunk_once(store, request, size, where)
    if result is _GONE:
        raise _SessionGone(f"the upload session of {where} is gone")
    return result


_GONE = object()


def _send_chunk_once(store: Any, request, size: int, where: str) -> Any:
    resync = False
    for attempt in _retrying(store, f"uploading {where}"):
        with attempt:
            http = _http_for(store)
            try:
                if resync:
                    offset, done = _query_status(http, request.resumable_uri, size)
                    resync = False
                    request.resumable_progress = offset
                    if done is not None:
                        return done
                request._in_error_state = False  # we resync ourselves
                _, body = request.next_chunk(http=http)
                return body
            except _SessionGone:
                raise
            except Exception as exc:
                failure = retry.http_failure(exc)
                if failure is not None and failure.status in (404, 410):
                    # Not raised in here: the retry policy would turn it into NotFoundError.
                    return _GONE
                resync = True
                _reset_http(store)
                raise
    raise AssertionError("unreachable")  # pragma: no cover
