"""The bytes of Drive files: ranged reads, and the local file an upload streams from.

Downloads are raw ranged ``GET``s of ``files/<id>?alt=media`` on the thread's connection
(:class:`MediaReader`), each retried as a whole; the answer is checked (``206`` with the
asked ``Content-Range``, or a ``200`` carrying the whole file) and a short body is retried.
Uploads read the local file through :class:`HashingMedia`, which googleapiclient's resumable
request sends chunk by chunk (:mod:`drivestage.drive.upload` drives it).
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from functools import partial
from typing import Any, BinaryIO, Callable, Optional

from googleapiclient.http import MediaUpload

from drivestage.drive import answers, retry
from drivestage.drive.connections import refuse_page
from drivestage.drive.media_answers import check_encoding, refuse_page_of
from drivestage.drive.resources import editor_of, restricted_message, shared_drive_item
from drivestage.drive.transport import Streamed, Transport
from drivestage.errors import ChecksumMismatchError, DownloadRestrictedError, \
    DriveStageError, RemoteChangedError, RemoteError
from drivestage.pool import Serial
from drivestage.state import stat_key
from drivestage.store import ByteSink, RemoteEntry

log = logging.getLogger(__name__)

MiB = 1024 * 1024
#: One ranged GET of :meth:`MediaReader.read_range`; large enough that request overhead is
#: small, small enough for memory.
DEFAULT_CHUNK_SIZE = 16 * MiB
#: Blocks an upload body is read (and hashed) in: http.client asks for 8 KiB at a time,
#: larger blocks cost far fewer calls.
_BODY_BLOCK = MiB


#: A file id that every URI encoding leaves as it is (Drive's ids are of these characters).
_PLAIN_ID = re.compile(r"\A[A-Za-z0-9_-]{1,200}\Z")
_TEMPLATE_ID = "drivestageTEMPLATEid0"
#: URIs built the long way (ids of other characters) kept at most, per reader.
_URIS_KEPT = 256


class MediaReader:
    """Ranged reads of Drive files on a :class:`Transport`, streamed and bounded.

    A read is one ranged ``GET`` whose body is written to a sink as it arrives (never held
    whole), resumed with ``Range`` from where it stopped after a failure: Drive answers each
    request only after a delay (0.1-0.3 s) and charges quota units per request, so a stream
    pays them once per segment, not once per chunk. Every answer is bounded: the body is read
    only up to the length asked for (a longer one is refused), and a body that brings less
    than 64 KiB in ``DRIVESTAGE_HTTP_TIMEOUT`` seconds (default 120; also the longest wait
    for any byte) is given up and asked again. A failed attempt that had brought at least
    1 MiB does not count against the retries; the others do, and so does an answer for
    less than was asked that brought under 64 KiB (a server answering every range with a
    few bytes took a request per few bytes)."""

    def __init__(self, transport: Transport):
        self.transport = transport
        self._uri: dict[str, str] = {}
        self._template: Optional[tuple[str, str]] = None

    def _media_uri(self, file_id: str) -> str:
        if self._template is not None and _PLAIN_ID.match(file_id) is not None:
            # Not remembered: a store a mirror keeps for hours kept one entry per file it
            # ever read (a sidecar each period), for ever; the join costs nothing.
            return file_id.join(self._template)
        uri = self._uri.get(file_id)
        if uri is None:
            if len(self._uri) >= _URIS_KEPT:
                self._uri.clear()
            uri = self._uri[file_id] = self._build_uri(file_id)
        return uri

    def _build_uri(self, file_id: str) -> str:
        # googleapiclient builds a request object per call (a first pull of 1,500 small
        # files took 15.1 s instead of 11.2 s): an id of the characters Drive uses, which no
        # URI encoding changes, goes into the URI it built once; any other id is built the
        # long way.
        if _PLAIN_ID.match(file_id) is None:
            return self._request_uri(file_id)
        if self._template is None:
            uri = self._request_uri(_TEMPLATE_ID)
            if uri.count(_TEMPLATE_ID) != 1:
                return self._request_uri(file_id)
            before, after = uri.split(_TEMPLATE_ID)
            self._template = (before, after)
        return file_id.join(self._template)

    def _request_uri(self, file_id: str) -> str:
        ack = {"acknowledgeAbuse": True} if self.transport.acknowledge_abuse else {}
        request = self.transport.service.files().get_media(fileId=file_id,
                                                           supportsAllDrives=True, **ack)
        return str(request.uri)

    def mismatched(self, entry: RemoteEntry) -> None:
        """``entry``'s bytes as read did not verify: its next read asks Drive again, not the
        signed address it was redirected to (:meth:`Transport.forget_signed`)."""
        self.transport.forget_signed(self._media_uri(entry.id))

    def fetch_range(self, entry: RemoteEntry, start: int, end: int, where: str) -> bytes:
        """Bytes ``[start, end)`` of ``entry`` (one ranged GET, resumed after a failure)."""
        buf = _Buffer(start, end)
        self.read_into(entry, start, buf, where)
        return bytes(buf.data)

    def read_into(self, entry: RemoteEntry, start: int, sink: ByteSink, where: str) -> int:
        """Stream ``[start, sink.limit())`` of ``entry`` into ``sink``; returns where it
        stopped (``sink.limit()``, which may have moved down meanwhile)."""
        what = f"download {where} bytes {start}-{sink.limit() - 1}"
        try:
            return self._read_into(entry, start, sink, where, what)
        except DownloadRestrictedError as exc:
            raise self._refused(entry, what, exc) from None

    def _refused(self, entry: RemoteEntry, what: str,
                 exc: DownloadRestrictedError) -> DownloadRestrictedError:
        """``exc`` (Drive refused the bytes: 403 cannotDownloadFile) worded for this account's
        role in the file, asked of Drive now: the answer says nothing of it, and an editor was
        told to ask to be made an editor (Drive's download restrictions refuse editors too)."""
        if exc.answer is None:
            return exc
        try:
            res = self.transport.call(f"look up {what}", lambda: self.transport.files().get(
                fileId=entry.id, supportsAllDrives=True,
                fields="id,editable,capabilities,driveId,teamDriveId").execute())
        except DriveStageError:
            return exc      # the refusal stands as Drive worded it
        if not isinstance(res, dict):
            return exc
        return DownloadRestrictedError(restricted_message(
            what, exc.answer, editor=editor_of(res), shared_drive=shared_drive_item(res)),
            answer=exc.answer)

    def _read_into(self, entry: RemoteEntry, start: int, sink: ByteSink, where: str,
                   what: str) -> int:
        at = _Position(start)
        for attempt in self.transport.retrying(what):
            with attempt:
                while at.pos < sink.limit():
                    before = at.pos
                    try:
                        self._stream_once(entry, at, sink, where)
                    except Exception as exc:
                        if at.pos - before < _PROGRESS or retry.classify(exc) is None:
                            raise
                        log.info("%s: %s after %d bytes; asking for the rest", what, exc,
                                 at.pos - before)
                        self.transport.drop()
                        continue
                    if at.pos < sink.limit() and at.pos - before < _MIN_BYTES:
                        # An answer for less than was asked (206, its Content-Range saying
                        # so) that brought little: a failed attempt (see the class doc).
                        raise retry.TransientError(
                            f"the answer covered only {at.pos - before} of the "
                            f"{sink.limit() - before} bytes asked for")
        return at.pos

    def _stream_once(self, entry: RemoteEntry, at: "_Position", sink: ByteSink,
                     where: str) -> None:
        """One GET from ``at.pos``, which follows every byte written (a failure raises after
        writing what arrived, and the caller resumes from there)."""
        pos, stop = at.pos, sink.limit()
        try:
            self._stream_from(entry, at, sink, where, pos, stop)
        except Exception as exc:
            failure = answers.failure_of(exc)
            if failure is None or failure.status != 416:
                raise
            # Drive's answer to a range that starts past the end: the file got shorter
            # since it was listed (a new version), not a failure worth a retry. Drive's
            # listing says so; a 416 for a file it lists unchanged is a broken answer.
            now = _content_range("bytes 0-0/" + (failure.headers.get("content-range") or "")
                                 .rpartition("/")[2])
            size = self._size_now(entry, where)
            if size == entry.size:
                raise retry.TransientError(f"HTTP 416 for bytes {pos}-{stop - 1} of a file "
                                           f"Drive lists at {size} bytes") from None
            size = size if size is not None else now[2] if now else None
            became = f"size {entry.size} became {size}" if size is not None \
                else f"it ends before byte {pos} now"
            raise RemoteChangedError(f"{where} changed on Drive while downloading ({became}); "
                                     "run again") from None

    def _stream_from(self, entry: RemoteEntry, at: "_Position", sink: ByteSink, where: str,
                     pos: int, stop: int) -> None:
        with self.transport.stream(self._media_uri(entry.id),
                                   {"range": f"bytes={pos}-{stop - 1}"}) as body:
            check_encoding(body, where)
            if body.status == 206:
                got = _content_range(body.headers.get("content-range"))
                if got is None or got[0] != pos or got[1] < pos:
                    raise retry.TransientError(f"unexpected Content-Range "
                                               f"{body.headers.get('content-range')!r}")
                if got[2] is not None and got[2] != entry.size:
                    # A new version, when Drive lists that size; else a broken answer.
                    if self._size_now(entry, where) == entry.size:
                        raise retry.TransientError(f"Content-Range {got[2]} bytes of a file "
                                                   f"Drive lists at {entry.size}")
                    raise RemoteChangedError(f"{where} changed on Drive while downloading "
                                             f"(size {entry.size} became {got[2]}); run again")
                if got[1] >= stop:
                    raise _too_long(where, pos, stop, f"Content-Range bytes {got[0]}-{got[1]}")
                end, skip = got[1] + 1, 0
            elif body.status == 200:
                # The server ignored Range and sends the whole file: skip to our part. Of
                # another length, a new version when Drive lists that size now; else not the
                # file at all: a web page (a filter's), or one of other bytes (told below).
                if body.left is not None and body.left != entry.size:
                    if self._size_now(entry, where) == body.left:
                        raise RemoteChangedError(f"{where} changed on Drive while downloading "
                                                 f"(size {entry.size} became {body.left}); "
                                                 "run again")
                    refuse_page(body.headers.get("content-type", ""), lambda: body.read1(65536))
                refuse_page_of(body, entry)     # of no length: told by its type
                end, skip = entry.size, pos
                if pos > 0 or stop < entry.size:
                    sink.whole_answer()
            else:
                raise RemoteError(f"download {where}: unexpected HTTP {body.status}")
            if body.left is not None and body.left != end - pos + skip:
                if body.left > end - pos + skip:
                    raise _too_long(where, pos, stop, f"{body.left} bytes announced")
                raise retry.TransientError(f"short body: {body.left} of {end - pos + skip} "
                                           "bytes announced")
            self._read_body(body, at, end, skip, sink, where, stop)

    def _size_now(self, entry: RemoteEntry, where: str) -> Optional[int]:
        """The size Drive lists for ``entry`` now (None when it cannot be read)."""
        try:
            res = self.transport.call(f"look up {where}", lambda: self.transport.files().get(
                fileId=entry.id, supportsAllDrives=True, fields="fileSize").execute())
            return int(res["fileSize"])
        except (DriveStageError, ValueError, TypeError, KeyError):
            return None

    def _read_body(self, body: Streamed, at: "_Position", end: int, skip: int,
                   sink: ByteSink, where: str, stop: int) -> None:
        window = float(self.transport.http().timeout or 120)
        first, began, got = at.pos, time.monotonic(), 0
        while at.pos < min(end, sink.limit()):
            want = min(_BLOCK, skip) if skip else min(_BLOCK, min(end, sink.limit()) - at.pos)
            data = body.read1(want)
            if not data:
                raise retry.TransientError(f"short body: ended at byte {at.pos} of {end}")
            got += len(data)
            if skip:
                skip -= len(data)
            else:
                sink.write(at.pos, memoryview(data))
                at.pos += len(data)
            now = time.monotonic()
            if now - began >= window:
                if got < _MIN_BYTES:
                    raise retry.TransientError(f"the answer is too slow ({got} bytes in "
                                               f"{now - began:.0f}s)")
                began, got = now, 0
        if at.pos >= end and body.left is None and body.read1(1):
            raise _too_long(where, first, stop, "it kept sending")


def checked_whole(data: bytes, entry: RemoteEntry, where: str, again: Callable[[], bytes],
                  now: Callable[[], RemoteEntry]) -> bytes:
    """``data``, a file read whole in one ranged GET (a sidecar), if its md5 is the one Drive
    lists for ``entry`` (as every download is verified: a sidecar served with other bytes
    decided a prune, which deleted the best checkpoint on a metric its md5 does not name).
    Else Drive is asked again (``now()``): a new version since the listing is
    :class:`RemoteChangedError` (list again); the same version is read once more
    (``again()``), and a second mismatch is :class:`ChecksumMismatchError`."""
    want = (entry.md5 or "").lower()
    got = hashlib.md5(data).hexdigest()
    if not want or got == want:
        return data
    fresh = now()
    if (fresh.md5 or "").lower() != want or fresh.size != entry.size:
        raise RemoteChangedError(f"{where} changed on Drive since it was listed (md5 {want} "
                                 f"became {fresh.md5}); list it again")
    log.warning("%s: checksum mismatch (expected md5 %s, got %s); reading it again", where,
                want, got)
    data = again()
    got = hashlib.md5(data).hexdigest()
    if got != want:
        raise ChecksumMismatchError(
            f"{where}: the downloaded bytes do not match Drive (expected md5 {want}, "
            f"{entry.size} bytes; got md5 {got}, {len(data)} bytes), twice; they were not "
            "used. Something between here and Drive alters data, or the server is not Drive: "
            "check --api-root / DRIVESTAGE_API_ROOT and any proxy", expected=want, got=got)
    return data


class _Position:
    """Where a read has got to (shared between the attempts of one read)."""

    def __init__(self, pos: int):
        self.pos = pos


#: Read blocks of a body (one socket read each, so that time is watched between them).
_BLOCK = MiB
#: A failed attempt that brought this much is not counted against the retries.
_PROGRESS = MiB
#: A body must bring this much in every ``DRIVESTAGE_HTTP_TIMEOUT`` seconds.
_MIN_BYTES = 64 * 1024


def _too_long(where: str, start: int, stop: int, got: str) -> RemoteError:
    return RemoteError(f"download {where}: the answer to a request for bytes {start}-{stop - 1}"
                       f" is longer than that ({got}); stopped reading it. Something between "
                       "here and Drive is broken (a proxy?); try again later")


class _Buffer:
    """A sink collecting ``[start, end)`` in memory (a bounded range)."""

    def __init__(self, start: int, end: int):
        self.start, self.end = start, end
        self.data = bytearray()

    def limit(self) -> int:
        return self.end

    def write(self, offset: int, data: memoryview) -> None:
        assert offset == self.start + len(self.data)
        self.data += data

    def whole_answer(self) -> None:
        pass  # the range is all it takes


def _content_range(value: Optional[str]) -> Optional[tuple[int, int, Optional[int]]]:
    """``bytes a-b/N`` -> ``(a, b, N)`` (N None for ``*``)."""
    if not value:
        return None
    m = re.match(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", value)
    if not m:
        return None
    total = None if m.group(3) == "*" else int(m.group(3))
    return int(m.group(1)), int(m.group(2)), total


class HashingMedia(MediaUpload):  # type: ignore[misc]  # untyped base
    """A resumable ``MediaUpload`` over a local file that hashes bytes in file order.

    ``getbytes`` hands googleapiclient a :class:`ChunkBody`, which http.client
    streams from the file in blocks: memory stays at a few blocks whatever the
    chunk size, and the body can be sent again (httplib2 re-sends a request on a
    stale keep-alive connection; the client re-sends after a token refresh),
    which a one-shot stream cannot. Bytes are hashed the first time their offset
    is read; a jump forward (resuming at the server's offset) hashes the skipped
    range from the file first, so the digest is of the whole file, front to back.

    It reads ``fh``, which its caller opened and closes (with ``with``: see
    :meth:`drivestage.drive.upload._Session.send`); :meth:`close` ends the hash thread.
    """

    def __init__(self, fh: BinaryIO, size: int, mimetype: str, chunksize: int):
        self._fh = fh
        self.opened = os.fstat(fh.fileno())
        self._size = size
        self._mimetype = mimetype
        self._chunksize = chunksize
        self._md5 = hashlib.md5()
        self._hashed = 0
        # Blocks hashed in order by one thread while the next is on the wire (hashlib releases
        # the GIL), at most two waiting: a Serial, whose waits a Ctrl-C cannot leave a lock
        # held in (a Future's could, and the hash thread then waited for good).
        self._hasher = Serial("drivestage-md5", depth=2)

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

    def stream(self) -> Any:  # pragma: no cover - has_stream() is False
        raise NotImplementedError

    def getbytes(self, begin: int, length: int) -> "ChunkBody":
        self._hash_until(begin)
        # Never past the size announced to the server (the file may be growing).
        return ChunkBody(self, begin, max(0, min(length, self._size - begin)))

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
                self._hasher.submit(partial(self._md5.update, fresh))
            self._hashed = end
        return data

    def _hash_until(self, offset: int) -> None:
        if offset <= self._hashed:
            return
        self._hasher.drain()
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
        self._hasher.drain()
        # Bytes beyond the size we announced (the file grew) are not part of it.
        return self._md5.hexdigest()

    def changed_since(self, st: os.stat_result) -> bool:
        """Whether the file being sent is not (or no longer) the one ``st`` describes.

        It asks the open file, not the path: a writer that replaced the path atomically
        (temporary file + rename) left these bytes whole, and the next push sends the new
        file; one that writes in place changes this very file."""
        return (stat_key(self.opened) != stat_key(st)
                or stat_key(os.fstat(self._fh.fileno())) != stat_key(st))

    def close(self) -> None:
        """End the hash thread (the file is its opener's to close)."""
        try:
            self._hasher.drain()
        finally:
            self._hasher.close()


class _ShortRead(DriveStageError):
    """The file ended before the chunk did: it shrank while being sent."""


class ChunkBody:
    """One chunk of the file as a request body: ``len()`` for googleapiclient, ``read()``
    for http.client, ``seek(0)`` for a re-send. A read after the end starts a new pass,
    so a re-send by httplib2 (which neither seeks nor asks) sends the chunk again."""

    def __init__(self, media: HashingMedia, begin: int, length: int):
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

