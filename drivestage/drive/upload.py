"""Resumable, chunked, md5-verified uploads that survive the death of the process.

One upload = one Drive resumable session. The session URI is written to a small
JSON file under the state dir *before the first byte is sent*, so a process killed
mid-upload resumes the same session on the next run: it asks the server how much it kept
(``PUT`` with ``Content-Range: bytes */N``) and continues from there. Nothing is sent twice beyond the last committed chunk, and no duplicate file
appears on Drive (a session creates its file only when it completes, with the id
:mod:`drivestage.drive.ids` chose for it: sent again, Drive refuses it with 409). An upload
holds its record while it runs (:meth:`UploadSessions.claimed`): another upload of the
same file to the same place at once gets a record, and a session, of its own. A session
address on another origin than the upload URL's (saved, answered, or moved to by a chunk's
answer) is never sent a byte.

The bytes go through googleapiclient (``files().insert/update`` with a resumable
``MediaUpload``); we drive ``next_chunk()`` ourselves, one chunk at a time, with the project's
one retry policy around each chunk. The local md5 is computed from the bytes as they are read
for sending (each byte hashed once, even when a chunk is re-sent), then compared with Drive's
``md5Checksum``.

The session URIs and the md5 cache are local state (:mod:`drivestage.state`).
"""
from __future__ import annotations

import logging
import mimetypes
import os
import time
from typing import Any, Callable, Optional, TypeVar

from drivestage import pool, sources, temps
from drivestage.drive import answers, provenance, server_clock, upload_ends
from drivestage.drive.media import HashingMedia
from drivestage.drive.resources import entry_from_resource, is_trashed
from drivestage.drive.made_mark import MADE_PROPERTY
from drivestage.drive.sessions import CheckedHttp, file_resource, json_body, kept, origin_of, \
    same_origin, shown_origin, stalled
from drivestage.drive.transport import Transport
from drivestage.errors import (
    ArrivedInTrashError,
    BecameOtherError,
    ChecksumMismatchError,
    DailyUploadCapError,
    DriveStageError,
    ForeignSessionError,
    QuotaExceededError,
    RemoteError,
    SourceChangedError,
    TrashedAwayError,
    UsageError,
)
from drivestage.state import UploadSessions, stat_key
from drivestage.store import Md5Source, ProgressFn, RemoteEntry, RemoteStore

log = logging.getLogger(__name__)

T = TypeVar("T")

KiB = 1024
MiB = 1024 * KiB
#: Drive wants every non-final chunk to be a multiple of this.
CHUNK_UNIT = 256 * KiB
#: Chosen with bench/push.py: fewer, larger chunks mean fewer round trips (each one a
#: request Drive must answer); memory does not grow with it (chunks are streamed).
DEFAULT_CHUNK_SIZE = 64 * MiB
#: How many times a file that keeps changing while we send it is sent again.
MAX_CHANGED_ATTEMPTS = 3
#: Chunk answers in a row that move the upload forward by less than a chunk unit (a server
#: that answers "resume incomplete" and keeps nothing) before the upload is given up.
MAX_STALLED_CHUNKS = 5


class _SessionGone(Exception):
    """The server no longer knows the session (expired, or completed and forgotten)."""


def check_chunk_size(chunk: int) -> int:
    """``chunk`` if Drive accepts it as an upload chunk size, else a UsageError saying why."""
    if chunk <= 0 or chunk % CHUNK_UNIT:
        raise UsageError(f"chunk size {chunk} is not a positive multiple of 256 KiB "
                         f"({CHUNK_UNIT} bytes); try {max(1, chunk // CHUNK_UNIT) * CHUNK_UNIT}")
    return chunk


def upload_file(transport: Transport, store: RemoteStore, local_path: str, folder: RemoteEntry,
                name: str, *,
                replace: Optional[RemoteEntry] = None, chunk_size: Optional[int] = None,
                progress: Optional[ProgressFn] = None,
                md5_cache: Optional[Md5Source] = None,
                sessions: Optional[UploadSessions] = None,
                file_id: Optional[str] = None, follow: bool = False,
                real: str = "") -> RemoteEntry:
    """Upload ``local_path`` as ``folder/name`` (in place of ``replace``) and verify it.
    ``file_id``: the id a new file is made with (Drive's generateIds; see
    :mod:`drivestage.drive.ids`, which reads the 409 a second create of it gets).
    ``follow``: read through a link at ``local_path`` (one a push's walk let through); else a
    link there is refused, whenever it came (:func:`upload_ends.open_source`); ``real``:
    where a push's walk found it, the only place it is read from.

    The bytes go through ``transport``; ``store`` (the Drive store) removes a bad copy and
    reads the quota for a quota error. Resumes a session a previous process left for the same
    file and destination. Returns the entry whose ``md5`` equals the local md5. A file
    that changed on disk while it was sent is sent again (then
    :class:`SourceChangedError`); a server md5 that differs from the local one
    gets the upload done once more (a new file's bad copy removed first), then, after a
    second mismatch, the remote copy removed - ``replace`` too, which the update in place
    left holding neither its old bytes nor the new - and :class:`ChecksumMismatchError`.
    """
    chunk = check_chunk_size(int(chunk_size or DEFAULT_CHUNK_SIZE))
    sessions = sessions or UploadSessions()
    target = replace
    mismatches = 0
    # (its folder so too: attack46; a push's as its walk found it: one swapped for a link
    # between the push's look and this upload's start was read through, pushlefts47)
    home = os.path.dirname(real) if real else os.path.realpath(os.path.dirname(local_path))
    for _ in range(MAX_CHANGED_ATTEMPTS):
        st = os.stat(local_path, follow_symlinks=follow)
        began = time.time_ns()  # the md5 is of bytes read from here on (Md5Cache.put's tick)
        try:
            entry, local_md5, changed = _Session(transport, store, local_path, st, folder,
                                                 name, target, chunk, sessions,
                                                 file_id, follow, home).send(progress)
        except (QuotaExceededError, DailyUploadCapError, BecameOtherError):
            raise
        except DriveStageError:
            # A file that shrank or grew mid-upload makes the server refuse the last chunk.
            if stat_key(os.stat(local_path, follow_symlinks=follow)) == stat_key(st):
                raise
            log.warning("%s changed while it was uploaded; uploading it again",
                        temps.shown(local_path))
            continue
        target = entry  # any further attempt updates this file in place
        file_id = None  # (taken: a new file after a bad copy's removal gets another)
        if changed:
            log.warning("%s changed while it was uploaded; uploading it again",
                        temps.shown(local_path))
            continue
        if entry.md5 != local_md5:
            # The answer may be stale (a cache on the way; Drive's own lag): what Drive holds
            # now decides, before the file is sent again or a copy deleted. Deleting on an
            # answer alone removed a sidecar Drive held intact: no checkpoint verified.
            entry = upload_ends.as_now(store, entry)
        if entry.md5 != local_md5:
            mismatches += 1
            log.warning("md5 mismatch after uploading %s: Drive has %s, local %s",
                        temps.shown(local_path), entry.md5, local_md5)
            if mismatches >= 2 and replace is not None and entry.md5 == replace.md5:
                # The update never took: the file holds its old bytes, whole. Deleted, a
                # sidecar would take the checkpoint it vouches for with it.
                raise ChecksumMismatchError(
                    f"Drive kept the old version of {name} ({entry.md5}) after two updates "
                    f"from {temps.shown(local_path)} ({local_md5}); it was left as it was. "
                    "Check the network path to Drive and run the push again.",
                    expected=local_md5, got=entry.md5)
            if mismatches >= 2:
                upload_ends.delete_quietly(store, entry)
                raise ChecksumMismatchError(
                    f"Drive's md5 of {name} ({entry.md5}) does not match the local file "
                    f"{temps.shown(local_path)} ({local_md5}) after two uploads; the remote copy "
                    "was deleted. Check the network path to Drive and run the push again.",
                    expected=local_md5, got=entry.md5)
            if replace is None:
                # A new file: remove the bad copy rather than leave it under the name.
                upload_ends.delete_quietly(store, entry)
                target = None
            continue
        if md5_cache is not None:
            md5_cache.put(local_path, st, local_md5, began_ns=began)
        return entry
    if replace is None:
        # Only a file this call created is removed; ``replace`` is the caller's file, which
        # a change mid-upload never deletes (push replaces checkpoints by a new file for
        # that reason).
        upload_ends.delete_quietly(store, target)
        done = "the half-written remote copy was removed"
    else:
        done = f"{name} on Drive holds a copy taken while it changed; the next push sends it again"
    raise SourceChangedError(
        f"{temps.shown(local_path)} kept changing while it was uploaded "
        f"({MAX_CHANGED_ATTEMPTS} tries); {done}. Upload it once the writer is done "
        "(write checkpoints to a temporary name and rename them into place).")


class _Session:
    """One pass of a file through a (new or resumed) resumable session."""

    media: HashingMedia  # the file as it is sent, while :meth:`send` runs
    slot: Optional[str]  # the name of its session record, while :meth:`send` runs

    def __init__(self, transport: Transport, store: RemoteStore, local_path: str,
                 st: os.stat_result, folder: RemoteEntry, name: str,
                 replace: Optional[RemoteEntry], chunk: int, sessions: UploadSessions,
                 file_id: Optional[str] = None, follow: bool = False,
                 home: Optional[str] = None):
        self.transport, self.local_path, self.st, self.chunk = transport, local_path, st, chunk
        self.follow = follow   # through a link (one the caller chose to follow)
        self.home = home       # where its folder led as the upload began
        self.size = st.st_size
        self.sessions = sessions
        self.key = sessions.key(local_path, folder, name, replace)
        self.where = f"{temps.shown(local_path)} -> {name}"
        self.write = answers.Write(self.size, self.where, store.quota)
        self.mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        self.folder, self.name, self.replace = folder, name, replace
        self.file_id = file_id

    def send(self, progress: Optional[ProgressFn]) -> tuple[RemoteEntry, str, bool]:
        """Send the file; returns (entry, local md5, whether the file changed while sent)."""
        # Opened by ``with``, whose exit closes it on every way out: a Ctrl-C can land at
        # the start of any function, so a close() (or a finally that calls anything before
        # it) could be skipped, and the file stayed open as long as the failure's traceback
        # was kept (a push keeps its uploads' failures; IPython, the last one).
        # The session record is this upload's alone while it runs (another upload of the
        # same file to the same place, in a thread or a process, gets another): neither
        # sends into the other's session, nor drops the other's record as it ends.
        with self.sessions.claimed(self.key, self._fits) as slot, \
                upload_ends.open_source(self.local_path, self.follow, self.home) as fh:
            self.slot = slot
            self.media = HashingMedia(fh, self.size, self.mimetype, self.chunk)
            try:
                return self._send(progress)
            finally:
                self.media.close()

    def _fits(self, saved: dict[str, Any]) -> bool:
        """Whether ``saved`` is a session of this very file (its size and mtime)."""
        return saved.get("size") == self.size and saved.get("mtime_ns") == self.st.st_mtime_ns

    def _forget(self) -> None:
        """Drop this upload's session record (it has none when others held them all)."""
        if self.slot is not None:
            self.sessions.drop(self.slot)

    def _request(self) -> Any:
        files = self.transport.files()
        if self.replace is None:
            body = {"title": self.name, "parents": [{"id": self.folder.id}],
                    "mimeType": self.media.mimetype(), "properties": [MADE_PROPERTY]}
            if self.file_id is not None:
                body["id"] = self.file_id
            return files.insert(body=body, media_body=self.media, supportsAllDrives=True)
        # An in-place update keeps no old revision: Drive would keep it (and bill its bytes
        # to the quota) for 30 days, and nothing of ours ever reads one.
        return files.update(fileId=self.replace.id, body={"title": self.name},
                            media_body=self.media, newRevision=False, supportsAllDrives=True)

    def _send(self, progress: Optional[ProgressFn]) -> tuple[RemoteEntry, str, bool]:
        request = self._request()
        result: Optional[dict[str, Any]] = None
        persisted = False
        saved = self.sessions.get(self.slot) if self.slot is not None else None
        if saved and not same_origin(str(saved.get("uri")), request.uri):
            # Saved while the push talked to another server (or a moved one): resuming it
            # would send the file's bytes there. The upload URL is built from the API root
            # in use (Drive's sessions are on its origin, https://www.googleapis.com).
            log.info("the saved upload session for %s is not on %s; starting a new one",
                     self.local_path, origin_of(request.uri))
            self._forget()
            saved = None
        broken = False  # the saved session failed through every retry (see below)
        if saved and self._fits(saved):
            self.transport.resource_keys.for_session(str(saved["uri"]), self.folder.id)
            try:
                try:
                    offset, done = self._retry_call(
                        f"resuming {self.where}", lambda: self._query_status(saved["uri"]))
                except RemoteError as exc:
                    # A session Drive answers 5xx for ever (one it broke) would fail this
                    # file at every push until its record aged out (a week). A new session
                    # is opened instead; the record goes only once that one is: with Drive
                    # down for every upload it is kept, and the push after the outage
                    # resumes it.
                    log.warning("the saved upload session for %s keeps failing (%s); "
                                "starting a new one", self.local_path, exc)
                    broken = True
                    raise _SessionGone("its status query kept failing") from None
                self._check_within(offset)
                if done is not None and not self._in_place(done):
                    # Completed by a process killed before it verified the copy, which was
                    # trashed, moved or renamed on Drive since: no copy in the folder.
                    raise _SessionGone("its completed file was trashed, moved or renamed since")
                result = done
                request.resumable_uri = saved["uri"]
                request.resumable_progress = offset
                persisted = True
                log.info("resuming upload of %s at byte %d of %d",
                         temps.shown(self.local_path), offset, self.size)
            except _SessionGone as gone:
                if not broken:
                    log.info("the saved upload session for %s is of no use (%s); starting "
                             "a new one", temps.shown(self.local_path), gone)
                    self._forget()
        elif saved:
            self._forget()  # the file changed since: that session holds other bytes
        restarted = False
        # ``high``: the most the server ever said it kept. Only a step past it by half a chunk
        # (at least a chunk unit; or the end) is progress: a server that keeps nothing,
        # creeps, falls back and repeats, or keeps a sliver of every chunk (each 64 MiB sent
        # for 256 KiB kept: 256 times the file's bytes) stops the upload after
        # MAX_STALLED_CHUNKS answers.
        stalls, high = 0, request.resumable_progress
        while result is None:
            pool.check()  # the push was interrupted: stop here, the session kept for the next
            if request.resumable_uri is None:
                persisted = self._new_session(request)
                if broken and not persisted:
                    self._forget()  # not overwritten by the new session's record
                broken = False
            try:
                result = self._send_chunk(request)
            except _SessionGone:
                # Sessions expire (about a week on Drive); start over once.
                self._forget()
                if restarted:
                    raise RemoteError(f"the upload session for {self.where} vanished twice; "
                                      "run the push again") from None
                log.warning("upload session for %s vanished; starting a new one", self.where)
                restarted = True
                request.resumable_uri, request.resumable_progress = None, 0
                high = 0
                continue
            now = self.size if result is not None else request.resumable_progress
            self._check_within(now)
            if progress and now > high:
                progress(now - high)
            stalls = 0 if result is not None or now - high >= self._enough(high) else stalls + 1
            high = max(high, now)
            if stalls >= MAX_STALLED_CHUNKS:
                raise stalled(self.where, stalls, request.resumable_progress, self.size)
        # Before the answer is believed: a push deletes the old copies of a file on it.
        provenance.check_uploaded(result, self.folder.id, self.name,
                                  self.replace.id if self.replace is not None else None,
                                  self.where)
        if persisted:
            self._forget()
        if is_trashed(result) and result.get("explicitlyTrashed"):
            raise TrashedAwayError(f"{self.where}: trashed on Drive while it was updated in "
                                   "place (no sign of its folder); push again: a new copy goes")
        if is_trashed(result):
            # Its folder is in the trash (Drive takes the file there without an error; v2
            # once answered false so: the push still checks its folders at its end).
            arrived = ArrivedInTrashError(f"{self.where} arrived in Drive's trash: the "
                                          "folder it was sent into is in the trash")
            arrived.where = self.where
            raise arrived
        entry = entry_from_resource(result, f"uploading {self.where}")
        # (Drive's own stamps: clock51; an update's createdDate is the file's, a client's
        # where one made it: attackc51)
        server_clock.wrote(entry.modified, entry.created if self.replace is None else 0.0)
        return entry, self.media.hexdigest(), self.media.changed_since(self.st)

    def _enough(self, high: int) -> int:
        """Bytes past ``high`` a chunk's answer must say were kept to count as progress: half
        of what the next chunk sends, at least a chunk unit, at most what is left; with
        nothing left, only the file itself is (a server answering "all kept" for ever)."""
        left = self.size - high
        return max(1, min(max(CHUNK_UNIT, min(self.chunk, left) // 2), left))

    def _in_place(self, res: dict[str, Any]) -> bool:
        """Whether the file a completed session made is this upload's copy: ``name`` in
        ``folder``, not in the trash (and ``replace`` itself when it replaces one)."""
        parents = res.get("parents")
        labels = res.get("labels")
        return (res.get("title") == self.name
                and not (isinstance(labels, dict) and labels.get("trashed"))
                and isinstance(parents, list)
                and provenance.is_in(res, self.folder.id) is True
                and (self.replace is None or res.get("id") == self.replace.id))

    def _check_within(self, kept: int) -> None:
        """A server that says it kept more than the file holds is broken (no chunk would ever
        complete the upload): stop, and forget the session."""
        if kept > self.size:
            self._forget()
            raise RemoteError(
                f"uploading {self.where}: the server says it kept {kept} bytes of a "
                f"{self.size}-byte file, past the end; stopped. Drive never answers that: "
                "check --api-root / DRIVESTAGE_API_ROOT and any proxy between you and Drive")

    def _new_session(self, request: Any) -> bool:
        """Open a resumable session for ``request``; persist it when the file spans chunks."""
        uri = self._retry_call(f"starting upload of {self.where}",
                               lambda: self._start_session(request))
        if not same_origin(uri, request.uri):
            # Followed, it would get the file's bytes and the bearer token. Drive answers on
            # the upload URL's own origin (https://www.googleapis.com), built from the API
            # root in use, as a saved session's address is checked against in _send.
            raise ForeignSessionError(
                f"starting upload of {self.where}: the server at {origin_of(request.uri)} "
                f"answered with a session address on {shown_origin(uri)}, another server; "
                "nothing was sent there. Drive never does that: check --api-root / "
                "DRIVESTAGE_API_ROOT and any proxy between you and Drive")
        request.resumable_uri = uri
        request.resumable_progress = 0
        self.transport.resource_keys.for_session(uri, self.folder.id)
        if self.size <= self.chunk or self.slot is None:
            # Not worth a state write: nothing of a one-chunk file is committed before it
            # completes, and a completed one is found by the next listing. (No slot: other
            # uploads of this file to this place hold every record.)
            return False
        # Persisted before the first byte goes out.
        return self.sessions.put(self.slot, {"uri": uri, "size": self.size,
                                            "mtime_ns": self.st.st_mtime_ns,
                                            "chunk": self.chunk, "created": time.time()})

    def _start_session(self, request: Any) -> str:
        """POST the metadata and get the session URI (googleapiclient's first step)."""
        headers = dict(request.headers)
        headers["X-Upload-Content-Type"] = request.resumable.mimetype()
        headers["X-Upload-Content-Length"] = str(request.resumable.size())
        headers["content-length"] = str(request.body_size)
        resp, content = self.transport.request(request.uri, request.method, body=request.body,
                                               headers=headers)
        if resp.status == 200 and "location" in resp:
            return str(resp["location"])
        raise RemoteError(f"starting upload of {self.where}: Drive answered HTTP "
                          f"{resp.status} without a session address")

    def _query_status(self, uri: str) -> tuple[int, Optional[dict[str, Any]]]:
        """Ask the server how much of the session it kept: ``(offset, file or None)``."""
        gone: Optional[answers.HttpFailure] = None
        try:
            resp, content = self.transport.request(
                uri, "PUT", body=b"", headers={"Content-Range": f"bytes */{self.size}",
                                               "Content-Length": "0"})
        except Exception as exc:
            gone = answers.failure_of(exc)
            if gone is None or not gone.gone:
                raise
        if gone is not None:
            # Raised outside the handler: the 404 must not be read as this error's cause.
            raise _SessionGone(f"session answered {gone.status}")
        if resp.status in (200, 201):
            return self.size, json_body(content)
        return kept(resp, self.where) or 0, None  # 308: resume incomplete

    def _retry_call(self, what: str, call: Callable[[], T]) -> T:
        """``call()`` under the retry policy, with a fresh connection after any failure."""
        for attempt in self.transport.retrying(what, uploading=True, write=self.write):
            with attempt:
                try:
                    return call()
                except _SessionGone:
                    raise
                except Exception:
                    self.transport.drop()
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _send_chunk(self, request: Any) -> Optional[dict[str, Any]]:
        """Send the next chunk; on failure resync with the server and retry.

        Returns the File resource when the upload is complete, else None. Raises
        _SessionGone when the server no longer knows the session."""
        resync = False
        gone = False
        moved: Optional[str] = None
        for attempt in self.transport.retrying(f"uploading {self.where}", uploading=True,
                                               write=self.write):
            with attempt:
                try:
                    if resync:
                        offset, done = self._query_status(request.resumable_uri)
                        resync = False
                        request.resumable_progress = offset
                        if done is not None:
                            return done
                    request._in_error_state = False  # we resync ourselves
                    _, body = request.next_chunk(
                        http=CheckedHttp(self.transport.http(), self.where))
                    # googleapiclient follows a Location in a "308 Resume Incomplete": the
                    # rest of the file (and the token) would go wherever it says.
                    if body is None and not same_origin(str(request.resumable_uri),
                                                        request.uri):
                        moved = str(request.resumable_uri)
                    else:
                        return body if body is None else file_resource(body, f"uploading "
                            f"{self.where}: the server answered the upload's last chunk with")
                except _SessionGone:
                    raise
                except Exception as exc:
                    failure = answers.failure_of(exc)
                    if failure is None or not failure.gone:
                        resync = True
                        self.transport.drop()
                        raise
                    # Not raised in here: the retry policy would make it NotFoundError.
                    gone = True
            if gone:
                raise _SessionGone(f"the upload session of {self.where} is gone")
            if moved is not None:
                raise ForeignSessionError(
                    f"uploading {self.where}: the server at {origin_of(request.uri)} moved "
                    f"the upload session to {shown_origin(moved)}, another server; nothing "
                    "more was sent. Drive never does that: check --api-root / "
                    "DRIVESTAGE_API_ROOT and any proxy between you and Drive")
        raise AssertionError("unreachable")  # pragma: no cover
