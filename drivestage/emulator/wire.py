"""HTTP plumbing of the emulator: request bodies (plain, chunked, multipart), the upload
sink, ``Range`` / ``Content-Range`` parsing and Drive's date format (partial-response
``fields``: :mod:`fields`). Nothing here knows about Drive files.
"""
from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import socket
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Optional

from drivestage.emulator.errors import EmulatorApiError

IO_CHUNK = 1 << 20
MAX_JSON_BODY = 1 << 20
MAX_PART_HEADERS = 100


def open_private(path: str, mode: str = "wb"):
    """Open a file the emulator writes, created 0600 (only its owner may read state)."""
    flags = {"wb": os.O_WRONLY | os.O_CREAT | os.O_TRUNC, "r+b": os.O_RDWR,
             "ab": os.O_WRONLY | os.O_CREAT | os.O_APPEND}[mode]
    return os.fdopen(os.open(path, flags, 0o600), mode)


class Deadlined(io.RawIOBase):
    """A connection's reads (the raw stream under a handler's ``rfile``), each given only
    the time left to :attr:`deadline` (None: as the socket's timeout says): the request line
    and headers must arrive within the idle timeout as a whole. A timeout bounded each wait
    for a byte only, so a client trickling a header byte at a time held a thread, and one of
    the ``max_connections``, for as long as it went on (slowloris: attack47)."""

    def __init__(self, raw: Any, sock: socket.socket):
        super().__init__()
        self.raw, self.sock = raw, sock
        self.deadline: Optional[float] = None

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        # (The socket is closed for good only once this last file over it is.)
        try:
            self.raw.close()
        finally:
            super().close()

    def readinto(self, b: Any) -> Any:
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the request line and headers took longer than the idle "
                                   "timeout")
            self.sock.settimeout(left)
        return self.raw.readinto(b)


class Reset(Exception):
    """Reset the client's connection now (a fault)."""


class ClientGone(Exception):
    """The client went away in the middle of a request body."""


def fmt_time(t: float) -> str:
    """RFC 3339 with milliseconds and ``Z``, as Drive writes dates."""
    dt = datetime.fromtimestamp(t, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


class Body:
    """A request body reader: Content-Length or chunked, counted, honouring a drop fault."""

    def __init__(self, rfile, length: Optional[int], chunked: bool, pace: Callable[[int], None]):
        self.rfile, self.length, self.chunked, self.pace = rfile, length, chunked, pace
        self.count = 0
        self.drop_after: Optional[int] = None
        self.done = (not chunked) and not length
        self._chunk_left = 0
        #: :meth:`drain`'s bounds (the handler's: :attr:`Emulator.refusal_drain_bytes`, ...)
        #: and the client's socket, shut for reading when the time is out.
        self.drain_bytes: Optional[int] = None
        self.drain_seconds: Optional[float] = None
        self.sock: Optional[socket.socket] = None
        #: Whether :meth:`drain` gave up before the body ended: the connection must close.
        self.cut = False

    def read(self, n: int = IO_CHUNK) -> bytes:
        """Up to ``n`` bytes; ``b""`` at the end of the body."""
        if self.done:
            return b""
        if self.drop_after is not None:
            if self.count >= self.drop_after:
                raise Reset()
            n = min(n, self.drop_after - self.count)
        data = self._read_chunked(n) if self.chunked else self._read_plain(n)
        self.count += len(data)
        if data:
            self.pace(len(data))
        return data

    def _read_plain(self, n: int) -> bytes:
        left = self.length - self.count
        data = self.rfile.read(min(n, left))
        if not data:
            raise ClientGone()
        if self.count + len(data) >= self.length:
            self.done = True
        return data

    def _read_chunked(self, n: int) -> bytes:
        if self._chunk_left == 0:
            line = self.rfile.readline(1024)
            if not line:
                raise ClientGone()
            try:
                size = int(line.split(b";")[0].strip() or b"0", 16)
            except ValueError:
                raise EmulatorApiError(400, "badRequest", "Malformed chunked request body.")
            if size == 0:
                # The trailer: bounded in lines (endless ones held the thread: emulefts46).
                for _ in range(MAX_PART_HEADERS + 1):
                    if self.rfile.readline(1024) in (b"\r\n", b"\n", b""):
                        self.done = True
                        return b""
                raise EmulatorApiError(400, "badRequest", "Malformed chunked request body: "
                                                          "too many trailer lines.")
            self._chunk_left = size
        data = self.rfile.read(min(n, self._chunk_left))
        if not data:
            raise ClientGone()
        self._chunk_left -= len(data)
        if self._chunk_left == 0:
            self.rfile.readline(8)
        return data

    def read_all(self, limit: int = MAX_JSON_BODY) -> bytes:
        """The whole (small) body; 413 when larger than ``limit``."""
        parts, size = [], 0
        while True:
            data = self.read()
            if not data:
                return b"".join(parts)
            size += len(data)
            if size > limit:
                raise EmulatorApiError(413, "uploadTooLarge", "Request body too large for metadata.")
            parts.append(data)

    def drain(self) -> bool:
        """Read and discard the rest, so the connection can be reused; whether the body
        ended. Within :attr:`drain_bytes` and :attr:`drain_seconds` (an answer that ignores
        the body, a fault's or a completed upload's, read an endless one for ever:
        emulefts46): past them :attr:`cut` is set, and the answer closes the connection."""
        try:
            ended = self.drain_within(self.drain_bytes, self.drain_seconds, self.sock)
        except EmulatorApiError:   # (a malformed chunked body: where it ends is unknown)
            ended = False
        self.cut = self.cut or not ended
        return ended

    def drain_within(self, max_bytes: Optional[int], seconds: Optional[float],
                     sock: Optional[socket.socket]) -> bool:
        """:meth:`drain`, giving up after ``max_bytes`` more or ``seconds`` (a body that never
        ends, or trickles: a refused upload drained one for ever, emulefts45); whether the
        body ended. Past ``seconds`` the socket is shut for reading (``sock``: the client's),
        which ends a read blocked on a client that sends nothing."""
        self.drop_after = None
        if self.done:
            return True
        start = self.count
        timer = None
        if sock is not None and seconds is not None:
            timer = threading.Timer(seconds, _shut_reading, (sock,))
            timer.daemon = True
            timer.start()
        try:
            while not self.done and (max_bytes is None or self.count - start < max_bytes):
                if not self.read():
                    break
        except (ClientGone, OSError, ValueError):
            return False   # (ValueError: the reader of a socket shut under it)
        finally:
            if timer is not None:
                timer.cancel()
        return self.done


def _shut_reading(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RD)
    except OSError:   # (closed already)
        pass


class Multipart:
    """Streams a ``multipart/related`` upload: a JSON part, then the media part."""

    def __init__(self, body: Body, boundary: bytes):
        self.body = body
        self.delim = b"\n--" + boundary
        self.buf = bytearray(b"\n")  # so the first boundary also follows a line break
        self.eof = False
        #: Whether the client ends its lines in CRLF, as its first boundary line ends (None:
        #: not read yet). Only then is a '\r' before a boundary the boundary's: a client of
        #: bare LFs (googleapiclient's email generator) sends a part's last '\r' as data,
        #: and a media part that happened to end in one was stored a byte short.
        self.crlf: Optional[bool] = None

    def _fill(self) -> None:
        data = self.body.read()
        if data:
            self.buf += data
        else:
            self.eof = True

    def until_boundary(self, emit: Callable[[bytes], None]) -> None:
        keep = len(self.delim) + 1     # +1: a '\r' before the boundary belongs to it
        while True:
            i = self.buf.find(self.delim)
            if i >= 0:
                part = self.buf[:i]
                if part.endswith(b"\r") and self.crlf is not False:
                    part = part[:-1]
                if part:
                    emit(bytes(part))
                del self.buf[: i + len(self.delim)]
                return
            if len(self.buf) > keep:
                emit(bytes(self.buf[:-keep]))
                del self.buf[:-keep]
            if self.eof:
                raise EmulatorApiError(400, "badRequest", "Malformed multipart body: a boundary is missing.")
            self._fill()

    def preamble(self) -> None:
        """Skip what comes before the first boundary; 400 past :data:`MAX_JSON_BODY` (a body
        that never gave one was read for as long as it came: emulefts46)."""
        seen = [0]

        def skip(data: bytes) -> None:
            seen[0] += len(data)
            if seen[0] > MAX_JSON_BODY:
                raise EmulatorApiError(400, "badContent", "Malformed multipart body: no boundary "
                                                          "in its first 1 MiB.")
        self.until_boundary(skip)

    def line(self) -> bytes:
        while b"\n" not in self.buf:
            if self.eof:   # the closing boundary may end the body without a line break
                out = bytes(self.buf).rstrip(b"\r")
                self.buf.clear()
                return out
            if len(self.buf) > 16384:
                raise EmulatorApiError(400, "badRequest", "Malformed multipart body: bad part header.")
            self._fill()
        i = self.buf.index(b"\n")
        if self.crlf is None:
            self.crlf = self.buf[:i].endswith(b"\r")
        out = bytes(self.buf[:i]).rstrip(b"\r")
        del self.buf[: i + 1]
        return out

    def headers(self) -> dict:
        out = {}
        for _ in range(MAX_PART_HEADERS + 1):   # (endless header lines: a dict without end)
            line = self.line()
            if not line:
                return out
            k, _, v = line.decode("latin-1").partition(":")
            out[k.strip().lower()] = v.strip()
        raise EmulatorApiError(400, "badRequest", "Malformed multipart body: too many part headers.")


class Sink:
    """Writes upload bytes to a file while computing md5; can flip the first byte."""

    def __init__(self, path: str, offset: int = 0, md5=None, corrupt: bool = False):
        self.f = open_private(path, "r+b" if offset else "wb")
        self.f.seek(offset)
        self.offset = offset
        self.md5 = md5 if md5 is not None else hashlib.md5()
        self.corrupt = corrupt

    def write(self, data: bytes) -> None:
        if self.corrupt and self.offset == 0 and data:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        self.f.write(data)
        self.md5.update(data)
        self.offset += len(data)

    def close(self) -> None:
        self.f.close()


def parse_content_range(value: str) -> tuple[Optional[int], Optional[int], Optional[int]]:
    """``bytes a-b/N``, ``bytes a-b/*``, ``bytes */N`` → (a, b, N); None for ``*``."""
    m = re.fullmatch(r"\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\s*", value or "")
    if not m:
        raise EmulatorApiError(400, "badRequest", f"Invalid Content-Range header: {value!r}.",
                               location="Content-Range", location_type="header")
    a = int(m.group(1)) if m.group(1) is not None else None
    b = int(m.group(2)) if m.group(2) is not None else None
    total = None if m.group(3) == "*" else int(m.group(3))
    if a is not None and b < a:
        raise EmulatorApiError(400, "badRequest", f"Invalid Content-Range header: {value!r}.",
                               location="Content-Range", location_type="header")
    return a, b, total


def parse_range(value: str, size: int) -> Optional[tuple[int, int]]:
    """A single ``bytes=`` range → inclusive (a, b); None to serve everything; 416 via (-1, -1)."""
    m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", value or "")
    if not m or (not m.group(1) and not m.group(2)):
        return None
    if not m.group(1):
        n = int(m.group(2))
        if n == 0 or size == 0:
            return (-1, -1)
        return (max(size - n, 0), size - 1)
    a = int(m.group(1))
    b = int(m.group(2)) if m.group(2) else size - 1
    if a >= size or b < a:
        return (-1, -1)
    return (a, min(b, size - 1))



def b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def b64_md5(hexdigest: Optional[str]) -> Optional[str]:
    """The ``X-Goog-Hash`` form of an md5; None for a record whose md5 is not one (a test
    that edited the store by hand): the answer then carries no hash, as Drive's does for a
    file it keeps none for, instead of failing with a 500 the client retries for minutes."""
    try:
        raw = bytes.fromhex(hexdigest or hashlib.md5(b"").hexdigest())
    except ValueError:
        return None
    return base64.b64encode(raw).decode() if len(raw) == 16 else None


def header_safe(text: str) -> str:
    """``text`` as a quoted header value may hold it: Latin-1, no quote, and no control
    character (a title with a line break ended the header there, and the lines after it
    were read as headers of their own: its download lost its ``Content-Range``)."""
    return re.sub(r"[\x00-\x1f\x7f]", "_", text.encode("latin-1", "replace").decode(
        "latin-1").replace('"', "'"))


def hash_file(path: str, upto: Optional[int] = None) -> "hashlib._Hash":
    """md5 of the first ``upto`` bytes of ``path`` (all of it when None), streamed."""
    h = hashlib.md5()
    remaining = upto
    with open(path, "rb") as f:
        while remaining is None or remaining > 0:
            chunk = f.read(IO_CHUNK * 4 if remaining is None else min(IO_CHUNK * 4, remaining))
            if not chunk:
                break
            h.update(chunk)
            if remaining is not None:
                remaining -= len(chunk)
    return h


def blob_checksums(path: str) -> dict[str, str]:
    """The SHA-1 and SHA-256 Drive reports for stored bytes (``sha1``, ``sha256``), read in one
    pass. Drive keeps them beside the md5 for every file stored since 2022; a record without
    them (an emulator of before, :meth:`set_checksums`) stands for an older file."""
    hashes = {"sha1": hashlib.sha1(), "sha256": hashlib.sha256()}
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(IO_CHUNK * 4), b""):
            for h in hashes.values():
                h.update(chunk)
    return {name: h.hexdigest() for name, h in hashes.items()}


def iter_file(path: str, offset: int, count: int, chunk: int = 1 << 20) -> Iterator[bytes]:
    """Stream ``count`` bytes of ``path`` from ``offset``."""
    with open(path, "rb") as f:
        f.seek(offset)
        while count > 0:
            data = f.read(min(chunk, count))
            if not data:
                break
            count -= len(data)
            yield data
