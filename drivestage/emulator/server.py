"""The HTTP side of the emulator: a threaded HTTP/1.1 server speaking the Drive
API v2 subset that PyDrive2 and googleapiclient use, plus the control API under
``/_emulator/`` and the :class:`Emulator` Python API.

Bodies stream: uploads go to disk in 1 MiB pieces while md5 is computed,
downloads leave through ``sendfile``. Every error is Google's JSON envelope.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import socket
import struct
import tempfile
import threading
import time
from collections import defaultdict, deque
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional, Union
from urllib.parse import parse_qs, unquote, urlsplit

from drivestage.emulator.faults import Bucket, Faults, Plan
from drivestage.emulator.query import QueryError, compile_query, parent_hint
from drivestage.emulator.store import (
    FOLDER_MIME,
    SERVICE_ACCOUNT_MESSAGE,
    EmulatorStore,
    hash_file,
    iter_file,
    not_found,
)
from drivestage.errors import EmulatorApiError

log = logging.getLogger(__name__)

CHUNK_GRANULARITY = 256 * 1024      # Drive keeps resumable bytes in multiples of this
_IO_CHUNK = 1 << 20
REQUEST_LOG_LIMIT = 100_000     # newest records kept in emu.requests
_MAX_JSON_BODY = 1 << 20
_LOGGED_HEADERS = ("Range", "Content-Range", "Content-Length", "Content-Type", "Authorization",
                   "X-Upload-Content-Length", "X-Upload-Content-Type")


@dataclass
class RequestRecord:
    """One API request as the emulator saw it (``emu.requests``)."""

    method: str
    path: str
    query: dict
    headers: dict
    status: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    time: float = 0.0          # when it arrived (epoch seconds)
    duration: float = 0.0
    error: Optional[str] = None  # "reset" when the connection was dropped on purpose


class _Reset(Exception):
    """Reset the client's connection now (a fault)."""


class _ClientGone(Exception):
    """The client went away in the middle of a request body."""


def fmt_time(t: float) -> str:
    """RFC 3339 with milliseconds and ``Z``, as Drive writes dates."""
    dt = datetime.fromtimestamp(t, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def error_envelope(status: int, reason: str, message: str, *, domain: str = "global",
                   location: Optional[str] = None, location_type: Optional[str] = None) -> dict:
    """Google's JSON error body."""
    err = {"domain": domain, "reason": reason, "message": message}
    if location:
        err["locationType"] = location_type or "parameter"
        err["location"] = location
    return {"error": {"errors": [err], "code": status, "message": message}}


def parse_fields(spec: str) -> dict:
    """Parse a partial-response ``fields`` string (``items(id,title),nextPageToken``)."""
    tokens = re.findall(r"[^,()/\s]+|[,()/]", spec)
    pos = 0

    def item() -> dict:
        nonlocal pos
        if pos >= len(tokens) or tokens[pos] in ",()/":
            raise EmulatorApiError(400, "invalidParameter", f"Invalid field selection {spec}",
                                   location="fields")
        name = tokens[pos]
        pos += 1
        if pos < len(tokens) and tokens[pos] == "/":
            pos += 1
            return {name: item()}
        if pos < len(tokens) and tokens[pos] == "(":
            pos += 1
            sub = group()
            if pos >= len(tokens) or tokens[pos] != ")":
                raise EmulatorApiError(400, "invalidParameter", f"Invalid field selection {spec}",
                                       location="fields")
            pos += 1
            return {name: sub}
        return {name: None}

    def group() -> dict:
        nonlocal pos
        out: dict = {}
        while True:
            for k, v in item().items():
                out[k] = v if k not in out or out[k] is None or v is None else {**out[k], **v}
            if pos < len(tokens) and tokens[pos] == ",":
                pos += 1
                continue
            return out

    tree = group()
    if pos != len(tokens):
        raise EmulatorApiError(400, "invalidParameter", f"Invalid field selection {spec}", location="fields")
    return tree


def apply_fields(obj: Any, tree: Optional[dict]) -> Any:
    """Keep only the selected fields of a resource (lists are filtered item by item)."""
    if tree is None or "*" in tree:
        return obj
    if isinstance(obj, list):
        return [apply_fields(o, tree) for o in obj]
    if not isinstance(obj, dict):
        return obj
    return {k: apply_fields(obj[k], sub) for k, sub in tree.items() if k in obj}


class _Body:
    """A request body reader: Content-Length or chunked, counted, honouring a drop fault."""

    def __init__(self, rfile, length: Optional[int], chunked: bool, pace: Callable[[int], None]):
        self.rfile, self.length, self.chunked, self.pace = rfile, length, chunked, pace
        self.count = 0
        self.drop_after: Optional[int] = None
        self.done = (not chunked) and not length
        self._chunk_left = 0

    def read(self, n: int = _IO_CHUNK) -> bytes:
        """Up to ``n`` bytes; ``b""`` at the end of the body."""
        if self.done:
            return b""
        if self.drop_after is not None:
            if self.count >= self.drop_after:
                raise _Reset()
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
            raise _ClientGone()
        if self.count + len(data) >= self.length:
            self.done = True
        return data

    def _read_chunked(self, n: int) -> bytes:
        if self._chunk_left == 0:
            line = self.rfile.readline(1024)
            if not line:
                raise _ClientGone()
            try:
                size = int(line.split(b";")[0].strip() or b"0", 16)
            except ValueError:
                raise EmulatorApiError(400, "badRequest", "Malformed chunked request body.")
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                self.done = True
                return b""
            self._chunk_left = size
        data = self.rfile.read(min(n, self._chunk_left))
        if not data:
            raise _ClientGone()
        self._chunk_left -= len(data)
        if self._chunk_left == 0:
            self.rfile.readline(8)
        return data

    def read_all(self, limit: int = _MAX_JSON_BODY) -> bytes:
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

    def drain(self) -> None:
        """Read and discard the rest, so the connection can be reused."""
        self.drop_after = None
        while not self.done:
            if not self.read():
                break


class _Multipart:
    """Streams a ``multipart/related`` upload: a JSON part, then the media part."""

    def __init__(self, body: _Body, boundary: bytes):
        self.body = body
        self.delim = b"\n--" + boundary
        self.buf = bytearray(b"\n")  # so the first boundary also follows a line break
        self.eof = False

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
                if part.endswith(b"\r"):
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
        out = bytes(self.buf[:i]).rstrip(b"\r")
        del self.buf[: i + 1]
        return out

    def headers(self) -> dict:
        out = {}
        while True:
            line = self.line()
            if not line:
                return out
            k, _, v = line.decode("latin-1").partition(":")
            out[k.strip().lower()] = v.strip()


class _Sink:
    """Writes upload bytes to a file while computing md5; can flip the first byte."""

    def __init__(self, path: str, offset: int = 0, md5=None, corrupt: bool = False):
        self.f = open(path, "r+b" if offset else "wb")
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


def _parse_content_range(value: str) -> tuple[Optional[int], Optional[int], Optional[int]]:
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


def _parse_range(value: str, size: int) -> Optional[tuple[int, int]]:
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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, handler, emu: "Emulator"):
        self.emu = emu
        self.open_sockets: set = set()
        self.sockets_lock = threading.Lock()
        super().__init__(addr, handler)

    def process_request(self, request, client_address):
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        log.debug("connection error from %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY every JSON answer
    # waits ~40 ms for the client's delayed ACK (Nagle).
    disable_nagle_algorithm = True
    server_version = "DriveEmulator/1.0"
    sys_version = ""

    # ------------------------------------------------------------------ plumbing
    def setup(self) -> None:
        super().setup()
        # One handler serves one connection (keep-alive included): its per-connection budget.
        self._link = Bucket()

    def pace(self, nbytes: int) -> None:
        """Hold a body to the emulator's bandwidth limits."""
        self.emu.faults.pace(nbytes, self._link)

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        log.debug("%s %s", self.address_string(), format % args)

    def send_error(self, code, message=None, explain=None):
        """Even malformed requests get Google's JSON envelope, never an HTML page."""
        self.close_connection = True
        reason = {400: "badRequest", 414: "uriTooLong", 501: "notImplemented"}.get(code, "badRequest")
        text = message or self.responses.get(code, ("Error",))[0]
        body = json.dumps(error_envelope(code, reason, text)).encode("utf-8")
        self.send_response(code, text)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)

    def do_GET(self):
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    @property
    def emu(self) -> "Emulator":
        return self.server.emu

    @property
    def store(self) -> EmulatorStore:
        return self.server.emu.store

    def _base(self) -> str:
        host = self.headers.get("Host") or f"{self.emu.host}:{self.emu.port}"
        return f"http://{host}/"

    def _handle(self) -> None:
        started = time.time()
        url = urlsplit(self.path)
        path = unquote(url.path)
        self.query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        self._headers_sent = False
        self._status = 0
        self._bytes_out = 0
        self._drop_response_after: Optional[int] = None
        self._token: Optional[str] = None
        length = self.headers.get("Content-Length")
        chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        try:
            length_i = int(length) if length else None
        except ValueError:
            length_i = None
        faults = self.emu.faults
        self.body = _Body(self.rfile, length_i, chunked, self.pace)
        control = path.startswith("/_emulator/") or path == "/_emulator"
        error = None
        # The record enters the log when the request arrives and is completed as the answer
        # goes out, so a client that has its answer always finds its request in the log.
        headers = {}
        for name in _LOGGED_HEADERS:
            value = self.headers.get(name)
            if value is not None:
                headers[name] = "Bearer <redacted>" if name == "Authorization" else value
        self._rec = RequestRecord(self.command, path, dict(self.query), headers, 0, 0, 0, started)
        if not control:
            self.emu._record(self._rec)
        try:
            if control:
                self._control(path)
                return
            plan: Plan = faults.plan(self.command, self.path)
            if plan.latency:
                time.sleep(plan.latency)  # the latency fault itself
            if plan.reset:
                raise _Reset()
            self.body.drop_after = plan.drop_request_after
            if plan.drop_request_after is not None and self.body.done:
                raise _Reset()   # no body to wait for: "after 0 bytes" is now
            self._drop_response_after = plan.drop_response_after
            if plan.answer is not None:
                self.body.drain()
                a = plan.answer
                if a.body is None:
                    self._send_json(a.status, error_envelope(a.status, a.reason, a.message), a.headers)
                else:
                    self._send_bytes(a.status, a.body, a.content_type or "text/html; charset=UTF-8",
                                     a.headers)
                return
            self._authorize()
            self._route(path)
        except EmulatorApiError as exc:
            self._fail(exc)
        except _Reset:
            error = self._rec.error = "reset"
            self._reset()
        except _ClientGone:
            error = "client gone"
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            error = "client gone"
            self.close_connection = True
        except Exception as exc:  # a bug in the emulator: answer 500 and say so in the log
            log.exception("emulator failed on %s %s", self.command, self.path)
            self._fail(EmulatorApiError(500, "backendError", f"Emulator error: {exc}"))
        finally:
            rec = self._rec
            rec.status, rec.bytes_in, rec.bytes_out = self._status, self.body.count, self._bytes_out
            rec.duration, rec.error = time.time() - started, error

    def _fail(self, exc: EmulatorApiError) -> None:
        if self._headers_sent:
            self.close_connection = True
            return
        try:
            self.body.drain()
        except (_ClientGone, EmulatorApiError, OSError):
            self.close_connection = True
        body = error_envelope(exc.status, exc.reason, exc.message, domain=exc.domain,
                              location=exc.location, location_type=exc.location_type)
        self._send_json(exc.status, body, exc.headers)

    def _reset(self) -> None:
        """Abort the connection with a TCP reset, as a crashing front end would."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def _start(self, status: int, headers: dict, length: Optional[int],
               content_type: Optional[str] = None) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for k, v in headers.items():
            self.send_header(k, str(v))
        if length is not None:
            self.send_header("Content-Length", str(length))
        # Filled in before the client can see the answer (see _handle).
        self._rec.status, self._rec.bytes_in = status, self.body.count
        self._rec.bytes_out = length if length is not None and self.command != "HEAD" else 0
        self.end_headers()
        self._headers_sent = True
        self._status = status

    def _write(self, data: bytes) -> None:
        if self._drop_response_after is not None:
            room = self._drop_response_after - self._bytes_out
            if room < len(data):
                if room > 0:
                    self.wfile.write(data[:room])
                    self._bytes_out += room
                raise _Reset()
        self.pace(len(data))
        self.wfile.write(data)
        self._bytes_out += len(data)

    def _send_bytes(self, status: int, data: bytes, content_type: Optional[str],
                    headers: Optional[dict] = None) -> None:
        if status in (204, 304) or self.command == "HEAD":
            self._start(status, headers or {}, None if status == 204 else len(data), content_type)
            return
        self._start(status, headers or {}, len(data), content_type)
        self._write(data)

    def _send_json(self, status: int, obj, headers: Optional[dict] = None) -> None:
        self._send_bytes(status, json.dumps(obj).encode("utf-8"), "application/json; charset=UTF-8",
                         headers)

    def _send_resource(self, status: int, obj: dict) -> None:
        fields = self.query.get("fields")
        if fields:
            obj = apply_fields(obj, parse_fields(fields))
        self._send_json(status, obj)

    def _read_json(self) -> dict:
        raw = self.body.read_all()
        if not raw.strip():
            return {}
        try:
            obj = json.loads(raw)
        except ValueError:
            raise EmulatorApiError(400, "parseError", "Parse Error")
        if not isinstance(obj, dict):
            raise EmulatorApiError(400, "parseError", "Parse Error: expected a JSON object")
        return obj

    def _authorize(self) -> None:
        header = self.headers.get("Authorization") or ""
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        token = token or self.query.get("access_token", "")
        challenge = {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'}
        if not token:
            raise EmulatorApiError(401, "required", "Login Required.", location="Authorization",
                                   location_type="header", headers=challenge)
        if self.emu.token is not None and token != self.emu.token:
            raise EmulatorApiError(401, "authError", "Invalid Credentials", location="Authorization",
                                   location_type="header",
                                   headers={"WWW-Authenticate": challenge["WWW-Authenticate"]
                                            + ', error="invalid_token"'})
        self._token = token

    # ------------------------------------------------------------------ routing
    _ROUTES = [
        (re.compile(r"/drive/v2/about"), {"GET": "_about"}),
        (re.compile(r"/drive/v2/drives"), {"GET": "_drives_list"}),
        (re.compile(r"/drive/v2/drives/([^/]+)"), {"GET": "_drives_get"}),
        (re.compile(r"/drive/v2/files"), {"GET": "_files_list", "POST": "_files_insert"}),
        (re.compile(r"/drive/v2/files/trash"), {"DELETE": "_files_empty_trash"}),
        (re.compile(r"/drive/v2/files/([^/]+)"), {"GET": "_files_get", "HEAD": "_files_get",
                                                  "PUT": "_files_update", "PATCH": "_files_update",
                                                  "DELETE": "_files_delete"}),
        (re.compile(r"/drive/v2/files/([^/]+)/trash"), {"POST": "_files_trash"}),
        (re.compile(r"/drive/v2/files/([^/]+)/untrash"), {"POST": "_files_untrash"}),
        (re.compile(r"/drive/v2/files/([^/]+)/copy"), {"POST": "_files_copy"}),
        (re.compile(r"/drive/v2/files/([^/]+)/touch"), {"POST": "_files_touch"}),
        (re.compile(r"(?:/resumable)?/upload/drive/v2/files"), {"POST": "_upload", "PUT": "_upload"}),
        (re.compile(r"(?:/resumable)?/upload/drive/v2/files/([^/]+)"), {"PUT": "_upload", "POST": "_upload"}),
    ]

    def _route(self, path: str) -> None:
        for pattern, methods in self._ROUTES:
            m = pattern.fullmatch(path)
            if m:
                name = methods.get(self.command)
                if name is None:
                    break
                getattr(self, name)(*m.groups())
                return
        raise EmulatorApiError(404, "notFound", f"Not Found: {self.command} {path}")

    def _flag(self, name: str, default: bool = False) -> bool:
        v = self.query.get(name)
        return default if v is None else v.lower() in ("1", "true", "yes")

    # ------------------------------------------------------------------ about / drives
    def _about(self) -> None:
        self._send_resource(200, self.emu.about(self._base()))

    def _drives_list(self) -> None:
        items = [self.emu._render_drive(d) for d in sorted(self.store.drives.values(),
                                                           key=lambda d: d["created"])]
        self._send_resource(200, {"kind": "drive#driveList", "items": items})

    def _drives_get(self, drive_id: str) -> None:
        d = self.store.drives.get(drive_id)
        if d is None:
            raise EmulatorApiError(404, "notFound", f"Shared drive not found: {drive_id}",
                                   location="driveId")
        self._send_resource(200, self.emu._render_drive(d))

    # ------------------------------------------------------------------ files metadata
    def _files_list(self) -> None:
        q = self.query
        try:
            pred = compile_query(q.get("q"), self.store.resolve)
        except QueryError as exc:
            raise EmulatorApiError(400, "invalid", str(exc), location="q")
        try:
            max_results = int(q.get("maxResults", "100"))
            offset = int(q.get("pageToken") or "0", 36) if q.get("pageToken") else 0
        except ValueError:
            raise EmulatorApiError(400, "invalid", "Invalid value for maxResults or pageToken.",
                                   location="pageToken")
        max_results = min(max(max_results, 1), 1000)
        corpora = (q.get("corpora") or "default").lower()
        drive_id = q.get("driveId") or q.get("teamDriveId")
        if corpora == "drive" and not drive_id:
            raise EmulatorApiError(400, "invalid", "The driveId parameter is required with corpora=drive.",
                                   location="driveId")
        if drive_id and drive_id not in self.store.drives:
            raise EmulatorApiError(404, "notFound", f"Shared drive not found: {drive_id}",
                                   location="driveId")
        all_drives = self._flag("includeItemsFromAllDrives") or self._flag("includeTeamDriveItems")
        hint = parent_hint(pred)
        with self.store.lock:
            recs = []
            if hint is None:
                candidates = self.store.all_files()
            else:
                candidates = {r["id"]: r for p in hint for r in self.store.children(p)}.values()
            for r in candidates:
                if drive_id:
                    if r.get("driveId") != drive_id:
                        continue
                elif r.get("driveId") is not None and not (all_drives or corpora == "alldrives"):
                    continue
                if pred(r):
                    recs.append(r)
        recs.sort(key=self._order_key())
        page = recs[offset: offset + max_results]
        base = self._base()
        out = {"kind": "drive#fileList", "etag": '"emulator"', "selfLink": f"{base}drive/v2/files",
               "incompleteSearch": False, "items": [self.emu.render(r, base) for r in page]}
        if offset + max_results < len(recs):
            token = _b36(offset + max_results)
            out["nextPageToken"] = token
            out["nextLink"] = f"{base}drive/v2/files?pageToken={token}"
        self._send_resource(200, out)

    def _order_key(self):
        spec = (self.query.get("orderBy") or "").strip()
        if not spec:
            return lambda r: (r["created"], r["id"])
        keys = []
        for part in spec.split(","):
            words = part.split()
            if not words:
                continue
            name, desc = words[0], len(words) > 1 and words[1].lower() == "desc"
            getter = {"title": lambda r: r["title"].casefold(), "modifiedDate": lambda r: r["modified"],
                      "createdDate": lambda r: r["created"],
                      "folder": lambda r: r["mimeType"] != FOLDER_MIME,
                      "quotaBytesUsed": lambda r: r["size"] or 0}.get(name)
            if getter is None:
                raise EmulatorApiError(400, "invalid", f"Invalid orderBy key {name!r}.", location="orderBy")
            keys.append((getter, desc))

        class _Key:
            __slots__ = ("r",)

            def __init__(self, r):
                self.r = r

            def __lt__(self, other):
                for getter, desc in keys:
                    a, b = getter(self.r), getter(other.r)
                    if a != b:
                        return (a > b) if desc else (a < b)
                return self.r["id"] < other.r["id"]

        return _Key

    def _files_get(self, file_id: str) -> None:
        rec = self.store.get(file_id)
        if self.query.get("alt") == "media":
            self._download(rec)
            return
        self._send_resource(200, self.emu.render(rec, self._base()))

    def _files_insert(self) -> None:
        meta = self._read_json()
        parents = [p["id"] if isinstance(p, dict) else p for p in meta.get("parents") or []]
        mime = meta.get("mimeType") or "application/octet-stream"
        rec = self.store.create(meta.get("title") or "Untitled", mime, parents, meta=meta)
        self._send_resource(200, self.emu.render(rec, self._base()))

    def _files_update(self, file_id: str) -> None:
        meta = self._read_json()
        add = [p for p in (self.query.get("addParents") or "").split(",") if p]
        remove = [p for p in (self.query.get("removeParents") or "").split(",") if p]
        rec = self.store.update_meta(file_id, meta, add_parents=add, remove_parents=remove,
                                     set_modified=self._flag("setModifiedDate"))
        self._send_resource(200, self.emu.render(rec, self._base()))

    def _files_touch(self, file_id: str) -> None:
        self.body.drain()
        rec = self.store.update_meta(file_id, {})
        self._send_resource(200, self.emu.render(rec, self._base()))

    def _files_delete(self, file_id: str) -> None:
        self.body.drain()
        self.store.delete(file_id)
        self._send_bytes(204, b"", None)

    def _files_empty_trash(self) -> None:
        self.body.drain()
        self.store.empty_trash()
        self._send_bytes(204, b"", None)

    def _files_trash(self, file_id: str) -> None:
        self.body.drain()
        rec = self.store.set_trashed(file_id, True)
        self._send_resource(200, self.emu.render(rec, self._base()))

    def _files_untrash(self, file_id: str) -> None:
        self.body.drain()
        rec = self.store.set_trashed(file_id, False)
        self._send_resource(200, self.emu.render(rec, self._base()))

    def _files_copy(self, file_id: str) -> None:
        meta = self._read_json()
        src = self.store.get(file_id)
        if src["mimeType"] == FOLDER_MIME:
            raise EmulatorApiError(400, "badRequest", "Folders cannot be copied.")
        parents = [p["id"] if isinstance(p, dict) else p for p in meta.get("parents") or []] \
            or list(src["parents"])
        _, drive_id = self.store.check_parents(parents)
        self._check_can_store(drive_id, src["size"] or 0)
        tmp = self.store.copy_blob_to_temp(src["id"])
        rec = self.store.create(meta.get("title") or src["title"], meta.get("mimeType") or src["mimeType"],
                                parents, blob=tmp, size=src["size"], md5=src["md5"],
                                meta={k: v for k, v in meta.items() if k not in ("parents",)})
        self._send_resource(200, self.emu.render(rec, self._base()))

    # ------------------------------------------------------------------ download
    def _download(self, rec: dict) -> None:
        if rec["mimeType"] == FOLDER_MIME or rec["size"] is None:
            raise EmulatorApiError(403, "fileNotDownloadable",
                                   "Only files with binary content can be downloaded. "
                                   "Use Export with Docs Editors files.", location="alt")
        self.body.drain()
        path = self.store.blob_path(rec["id"])
        try:
            f = open(path, "rb")   # opened now: a concurrent replace keeps this inode
        except FileNotFoundError:
            raise not_found(rec["id"])
        with f:
            size = os.fstat(f.fileno()).st_size
            headers = {"Accept-Ranges": "bytes", "X-Goog-Hash": "md5=" + _b64_md5(rec["md5"]),
                       "Content-Disposition": f'attachment; filename="{_header_safe(rec["title"])}"'}
            rng = _parse_range(self.headers.get("Range"), size) if self.headers.get("Range") else None
            if rng == (-1, -1):
                body = error_envelope(416, "requestedRangeNotSatisfiable", "Request range not satisfiable")
                self._send_json(416, body, {"Content-Range": f"bytes */{size}"})
                return
            if rng is None:
                start, count, status = 0, size, 200
            else:
                start, count, status = rng[0], rng[1] - rng[0] + 1, 206
                headers["Content-Range"] = f"bytes {rng[0]}-{rng[1]}/{size}"
            self._start(status, headers, count, rec["mimeType"])
            if self.command == "HEAD" or count == 0:
                return
            flip = self.emu.faults.corrupt_offset(rec["id"], size)
            if flip is None and self._drop_response_after is None and not self.emu.faults.throttled:
                sent = self.connection.sendfile(f, start, count)
                self._bytes_out += sent
                if sent < count:
                    raise _ClientGone()
                return
            pos = start
            for data in iter_file(path, start, count, 256 * 1024):
                if flip is not None and pos <= flip < pos + len(data):
                    data = bytearray(data)
                    data[flip - pos] ^= 0xFF
                    data = bytes(data)
                self._write(data)
                pos += len(data)

    # ------------------------------------------------------------------ uploads
    def _check_can_store(self, drive_id: Optional[str], size: int, replacing: int = 0) -> None:
        if drive_id is None and self.emu.is_service_account(self._token):
            raise EmulatorApiError(403, "storageQuotaExceeded", SERVICE_ACCOUNT_MESSAGE)
        self.store.check_quota(size, drive_id, replacing=replacing)

    def _upload(self, file_id: Optional[str] = None) -> None:
        upload_id = self.query.get("upload_id")
        if upload_id:
            self._resumable_chunk(upload_id)
            return
        if (file_id is None) != (self.command == "POST"):
            raise EmulatorApiError(404, "notFound", f"Not Found: {self.command} {self.path}")
        kind = self.query.get("uploadType") or "media"
        if kind == "resumable":
            self._resumable_start(file_id)
        elif kind == "multipart":
            self._simple_upload(file_id, multipart=True)
        elif kind == "media":
            self._simple_upload(file_id, multipart=False)
        else:
            raise EmulatorApiError(400, "invalid", f"Invalid value for uploadType: {kind}",
                                   location="uploadType")

    def _target(self, file_id: Optional[str], meta: dict) -> tuple[Optional[dict], Optional[str], int]:
        """(existing record or None, shared drive id, bytes it replaces)."""
        if file_id is not None:
            rec = self.store.get(file_id)
            if rec["mimeType"] == FOLDER_MIME:
                raise EmulatorApiError(400, "badRequest", "A folder cannot have content.")
            if meta.get("parents"):
                self.store.check_parents([p["id"] if isinstance(p, dict) else p for p in meta["parents"]])
            return rec, rec.get("driveId"), rec["size"] or 0
        parents = [p["id"] if isinstance(p, dict) else p for p in meta.get("parents") or []]
        if meta.get("mimeType") == FOLDER_MIME:
            raise EmulatorApiError(400, "badRequest", "A folder cannot have content.")
        _, drive_id = self.store.check_parents(parents)
        return None, drive_id, 0

    def _finish(self, existing: Optional[dict], meta: dict, blob: str, size: int, md5: str,
                content_type: Optional[str], drive_id: Optional[str], *, keep_on_error: bool = False) -> dict:
        """Turn a complete temp file into a Drive file (new, or new content for ``existing``).

        ``keep_on_error`` leaves a resumable session's bytes in place when it is refused
        (e.g. quota), so the same session can complete once space has been freed."""
        ok = False
        try:
            self._check_can_store(drive_id, size, replacing=existing["size"] or 0 if existing else 0)
            if existing is not None:
                rec = self.store.replace_content(existing["id"], blob, size, md5, meta)
            else:
                parents = [p["id"] if isinstance(p, dict) else p for p in meta.get("parents") or []]
                mime = meta.get("mimeType") or content_type or "application/octet-stream"
                rec = self.store.create(meta.get("title") or "Untitled", mime, parents, blob=blob,
                                        size=size, md5=md5, meta=meta)
            ok = True
            return rec
        finally:
            if (ok or not keep_on_error) and os.path.exists(blob):
                os.unlink(blob)

    def _simple_upload(self, file_id: Optional[str], multipart: bool) -> None:
        ctype = self.headers.get("Content-Type") or ""
        meta: dict = {}
        media_type = None if multipart else (ctype.split(";")[0].strip() or None)
        if not multipart:
            existing, drive_id, replacing = self._target(file_id, meta)
            # Content-Length is the content size here: refuse before reading it.
            self._check_can_store(drive_id, self.body.length or 0, replacing)
        tmp = self.store.upload_path("simple-" + os.urandom(8).hex())
        sink = _Sink(tmp, corrupt=self.emu.faults.take_corrupt_upload())
        try:
            if multipart:
                m = re.search(r'boundary="?([^";]+)"?', ctype)
                if not ctype.lower().startswith("multipart/") or not m:
                    raise EmulatorApiError(400, "badContent",
                                           "Multipart upload needs Content-Type multipart/related with a boundary.")
                mp = _Multipart(self.body, m.group(1).encode("latin-1"))
                mp.until_boundary(lambda b: None)
                mp.line()
                mp.headers()
                parts: list[bytes] = []
                mp.until_boundary(parts.append)
                raw = b"".join(parts)
                if len(raw) > _MAX_JSON_BODY:
                    raise EmulatorApiError(400, "badContent", "Multipart metadata part too large.")
                try:
                    meta = json.loads(raw) if raw.strip() else {}
                except ValueError:
                    raise EmulatorApiError(400, "parseError", "Parse Error in the metadata part.")
                if mp.line().startswith(b"--"):
                    raise EmulatorApiError(400, "badContent", "Multipart upload has no media part.")
                media_type = mp.headers().get("content-type")
                existing, drive_id, replacing = self._target(file_id, meta)
                mp.until_boundary(sink.write)
                mp.line()
                self.body.drain()
            else:
                while True:
                    data = self.body.read()
                    if not data:
                        break
                    sink.write(data)
        except BaseException:
            sink.close()
            os.unlink(tmp)
            raise
        sink.close()
        rec = self._finish(existing, meta, tmp, sink.offset, sink.md5.hexdigest(), media_type, drive_id)
        self._send_resource(200, self.emu.render(rec, self._base()))

    def _resumable_start(self, file_id: Optional[str]) -> None:
        meta = self._read_json()
        existing, drive_id, replacing = self._target(file_id, meta)
        total = self.headers.get("X-Upload-Content-Length")
        try:
            total_i = int(total) if total not in (None, "") else None
        except ValueError:
            raise EmulatorApiError(400, "badRequest", f"Invalid X-Upload-Content-Length: {total!r}",
                                   location="X-Upload-Content-Length", location_type="header")
        self._check_can_store(drive_id, total_i or 0, replacing)
        sess = self.store.new_session(
            file_id=existing["id"] if existing else None, meta=meta, total=total_i, drive_id=drive_id,
            content_type=self.headers.get("X-Upload-Content-Type"),
            corrupt=self.emu.faults.take_corrupt_upload(), token=self._token)
        where = f"upload/drive/v2/files{'/' + existing['id'] if existing else ''}"
        location = f"{self._base()}{where}?uploadType=resumable&upload_id={sess['id']}"
        self._send_bytes(200, b"", None, {"Location": location, "X-GUploader-UploadID": sess["id"]})

    def _range_header(self, received: int) -> dict:
        return {"Range": f"bytes=0-{received - 1}"} if received else {}

    def _resumable_chunk(self, session_id: str) -> None:
        sess = self.store.get_session(session_id)
        if sess is None:
            raise EmulatorApiError(404, "notFound", f"Upload session not found: {session_id}",
                                   location="upload_id")
        with self.emu._session_lock(session_id):
            if sess.get("done_file_id"):
                self.body.drain()
                rec = self.store.get(sess["done_file_id"])
                self._send_resource(200, self.emu.render(rec, self._base()))
                return
            cr = self.headers.get("Content-Range")
            if cr is None:
                # No Content-Range: the body is the whole content.
                if self.body.length is None:
                    raise EmulatorApiError(400, "badRequest", "Content-Range or Content-Length required.",
                                           location="Content-Range", location_type="header")
                a, b, total = 0, self.body.length - 1, self.body.length
                if self.body.length == 0:
                    a = b = None
            else:
                a, b, total = _parse_content_range(cr)
            if total is not None and sess["total"] is not None and total != sess["total"]:
                raise EmulatorApiError(400, "badRequest",
                                       f"Content-Range total {total} does not match the declared "
                                       f"upload size {sess['total']}.", location="Content-Range",
                                       location_type="header")
            if total is not None and sess["total"] is None:
                sess["total"] = total
            received = sess["received"]
            if a is None:
                # A status query, or the empty final request of an empty upload.
                self.body.drain()
                if sess["total"] is not None and received == sess["total"]:
                    self._resumable_done(sess)
                else:
                    self._send_bytes(308, b"", None, self._range_header(received))
                return
            length = b - a + 1
            if self.body.length is not None and self.body.length != length:
                raise EmulatorApiError(400, "badRequest",
                                       f"Content-Range {cr} says {length} bytes, Content-Length says "
                                       f"{self.body.length}.", location="Content-Range", location_type="header")
            if a > received:
                raise EmulatorApiError(400, "badRequest",
                                       f"Invalid request. According to the Content-Range header, the upload "
                                       f"offset is {a} byte(s), which exceeds already uploaded size of "
                                       f"{received} byte(s).", location="Content-Range", location_type="header")
            if sess["total"] is not None and b >= sess["total"]:
                raise EmulatorApiError(400, "badRequest", f"Content-Range {cr} goes past the upload size.",
                                       location="Content-Range", location_type="header")
            existing = self.store.files.get(sess["file_id"]) if sess["file_id"] else None
            if sess["file_id"] and existing is None:
                raise not_found(sess["file_id"])
            self._check_can_store(sess["drive_id"], max(b + 1, sess["total"] or 0),
                                  (existing or {}).get("size") or 0)
            self._receive(sess, a, length)
            if sess["total"] is not None and sess["received"] == sess["total"]:
                self._resumable_done(sess)
            else:
                self._send_bytes(308, b"", None, self._range_header(sess["received"]))

    def _receive(self, sess: dict, a: int, length: int) -> None:
        """Append the chunk's new bytes to the session; keep 256 KiB multiples if it breaks off."""
        path = self.store.upload_path(sess["id"])
        received = sess["received"]
        md5 = sess.get("_md5")
        if md5 is None or sess.get("_hashed") != received:
            md5 = hash_file(path, received)  # after a restart or a truncation
        sink = _Sink(path, offset=received, md5=md5, corrupt=sess.get("corrupt", False))
        skip = received - a
        ok = False
        try:
            got = 0
            while got < length:
                data = self.body.read(min(_IO_CHUNK, length - got))
                if not data:
                    break
                got += len(data)
                if skip >= len(data):
                    skip -= len(data)
                    continue
                sink.write(data[skip:] if skip else data)
                skip = 0
            ok = got == length
        finally:
            sink.close()
            end = sink.offset
            final = ok and sess["total"] is not None and end == sess["total"]
            keep = end if final else end - end % CHUNK_GRANULARITY
            keep = max(keep, received)   # what was committed before stays committed
            if keep != end:
                with open(path, "r+b") as f:
                    f.truncate(keep)
                sess["_md5"], sess["_hashed"] = None, None
            else:
                sess["_md5"], sess["_hashed"] = sink.md5, end
            sess["received"] = keep
            self.store.save_session(sess)

    def _resumable_done(self, sess: dict) -> None:
        path = self.store.upload_path(sess["id"])
        md5 = sess.get("_md5") if sess.get("_hashed") == sess["received"] else None
        md5 = md5 or hash_file(path, sess["received"])
        existing = None
        if sess["file_id"]:
            existing = self.store.files.get(sess["file_id"])
            if existing is None:
                raise not_found(sess["file_id"])
        rec = self._finish(existing, sess["meta"], path, sess["received"], md5.hexdigest(),
                           sess.get("content_type"), sess["drive_id"], keep_on_error=True)
        sess["done_file_id"] = rec["id"]
        sess["_md5"] = None
        self.store.save_session(sess)
        self._send_resource(200, self.emu.render(rec, self._base()))

    # ------------------------------------------------------------------ control API
    def _control(self, path: str) -> None:
        if self.emu.token is not None:
            self._authorize()
        emu, cmd = self.emu, self.command
        route = path[len("/_emulator"):].rstrip("/") or "/"
        try:
            if route == "/health" and cmd == "GET":
                self._send_json(200, {"ok": True, "url": emu.url})
            elif route == "/faults" and cmd == "GET":
                self._send_json(200, emu.faults.describe())
            elif route == "/faults" and cmd == "POST":
                emu.faults.apply(self._read_json())
                self._send_json(200, emu.faults.describe())
            elif route == "/faults" and cmd == "DELETE":
                self.body.drain()
                emu.faults.clear()
                self._send_json(200, emu.faults.describe())
            elif route == "/requests" and cmd == "GET":
                self._send_json(200, [asdict(r) for r in emu.requests])
            elif route == "/requests" and cmd == "DELETE":
                self.body.drain()
                emu.clear_requests()
                self._send_json(200, [])
            elif route == "/files" and cmd == "GET":
                self._send_json(200, emu.files())
            elif route == "/files" and cmd == "POST":
                if not self.query.get("path"):
                    raise EmulatorApiError(400, "required", "POST /_emulator/files needs ?path=a/b/name",
                                           location="path")
                file_id = emu._add_stream(self.query["path"], self.body.read,
                                          drive_id=self.query.get("drive_id"),
                                          mime_type=self.headers.get("Content-Type"))
                self._send_json(200, emu.render(emu.store.get(file_id)))
            elif route == "/drives" and cmd == "GET":
                self._send_json(200, [emu._render_drive(d) for d in emu.store.drives.values()])
            elif route == "/drives" and cmd == "POST":
                name = self._read_json().get("name") or "Shared drive"
                self._send_json(200, {"id": emu.add_shared_drive(name)})
            elif route == "/service_account" and cmd == "POST":
                spec = self._read_json()
                emu.set_service_account(bool(spec.get("enabled", True)), token=spec.get("token"))
                self._send_json(200, {"ok": True})
            else:
                raise EmulatorApiError(404, "notFound", f"No control endpoint {cmd} {path}")
        except (ValueError, TypeError) as exc:
            raise EmulatorApiError(400, "badRequest", str(exc))


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def _b64_md5(hexdigest: Optional[str]) -> str:
    import base64
    return base64.b64encode(bytes.fromhex(hexdigest or hashlib.md5(b"").hexdigest())).decode()


def _header_safe(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1").replace('"', "'")


class Emulator:
    """A local Drive API v2 server with a Python API for tests, demos and users.

    ``Emulator(...).start()`` (or ``with Emulator(...) as emu``) serves on
    ``emu.url``. Without ``data_dir`` the state lives in a temporary folder
    removed on :meth:`stop`. ``service_account=True`` makes every token behave
    like a service account (no storage in My Drive; shared drives work).
    """

    def __init__(self, data_dir: Optional[str] = None, quota_bytes: Optional[int] = None,
                 token: Optional[str] = None, host: str = "127.0.0.1", port: int = 0,
                 service_account: bool = False):
        self.data_dir = data_dir
        self.quota_bytes = quota_bytes
        self.token = token
        self.host = host
        self.port = port
        self.faults = Faults()
        self.service_account = service_account
        self._sa_tokens: set[str] = set()
        # Bounded so a long-running emulator does not grow without limit.
        self._requests: deque[RequestRecord] = deque(maxlen=REQUEST_LOG_LIMIT)
        self._requests_lock = threading.Lock()
        self._session_locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self._locks_lock = threading.Lock()
        self._tmp_dir: Optional[str] = None
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        self.store: Optional[EmulatorStore] = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "Emulator":
        """Open the state and start serving in a background thread."""
        if self._server is not None:
            return self
        if self.data_dir is None:
            self._tmp_dir = tempfile.mkdtemp(prefix="drive-emulator-")
        self.store = EmulatorStore(self.data_dir or self._tmp_dir, self.quota_bytes)
        self._server = _Server((self.host, self.port), _Handler, self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="drive-emulator", daemon=True)
        self._thread.start()
        log.info("Drive API emulator at %s (data in %s)", self.url, self.store.data_dir)
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and the state (keeps ``data_dir``)."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._server.sockets_lock:
            for sock in list(self._server.open_sockets):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._thread.join(timeout=5)
        self._server = None
        self.store.close()
        if self._tmp_dir:
            shutil.rmtree(self._tmp_dir, ignore_errors=True)
            self._tmp_dir = None

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://HOST:PORT/`` (the rootUrl clients are pointed at)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    # ------------------------------------------------------------------ request log
    def _record(self, rec: RequestRecord) -> None:
        with self._requests_lock:
            self._requests.append(rec)

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the request log (oldest first)."""
        with self._requests_lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._requests_lock:
            self._requests.clear()

    def _session_lock(self, session_id: str) -> threading.Lock:
        with self._locks_lock:
            return self._session_locks[session_id]

    # ------------------------------------------------------------------ accounts
    def set_service_account(self, enabled: bool = True, token: Optional[str] = None) -> None:
        """Make all tokens (or just ``token``) behave like a service account."""
        if token is None:
            self.service_account = enabled
        elif enabled:
            self._sa_tokens.add(token)
        else:
            self._sa_tokens.discard(token)

    def is_service_account(self, token: Optional[str]) -> bool:
        return self.service_account or (token is not None and token in self._sa_tokens)

    def about(self, base: Optional[str] = None) -> dict:
        """The about resource (quota numbers as strings, like Drive)."""
        base = base or self.url
        used, trash = self.store.usage()
        out = {
            "kind": "drive#about", "etag": '"emulator"', "selfLink": f"{base}drive/v2/about",
            "name": "Emulator User",
            "user": {"kind": "drive#user", "displayName": "Emulator User", "isAuthenticatedUser": True,
                     "permissionId": "00000000000000000000", "emailAddress": "user@example.com"},
            "quotaBytesUsed": str(used), "quotaBytesUsedAggregate": str(used),
            "quotaBytesUsedInTrash": str(trash),
            "quotaType": "UNLIMITED" if self.quota_bytes is None else "LIMITED",
            "quotaBytesByService": [{"serviceName": "DRIVE", "bytesUsed": str(used)}],
            "rootFolderId": self.store.root_id, "largestChangeId": "1", "remainingChangeIds": "0",
            "permissionId": "00000000000000000000", "languageCode": "en",
            "domainSharingPolicy": "allowedWithWarning", "isCurrentAppInstalled": False,
        }
        if self.quota_bytes is not None:
            out["quotaBytesTotal"] = str(self.quota_bytes)
        return out

    # ------------------------------------------------------------------ rendering
    def render(self, rec: dict, base: Optional[str] = None) -> dict:
        """A record as a Drive v2 File resource."""
        base = base or self.url
        fid = rec["id"]
        folder = rec["mimeType"] == FOLDER_MIME
        root = self.store.root_id
        res = {
            "kind": "drive#file", "id": fid, "etag": f'"{fid}/{rec["version"]}"',
            "selfLink": f"{base}drive/v2/files/{fid}",
            "alternateLink": f"{base}file/d/{fid}/view",
            "title": rec["title"], "mimeType": rec["mimeType"],
            "labels": {"starred": rec["starred"], "hidden": rec["hidden"], "trashed": rec["trashed"],
                       "restricted": False, "viewed": True, "modified": True},
            "createdDate": fmt_time(rec["created"]), "modifiedDate": fmt_time(rec["modified"]),
            "modifiedByMeDate": fmt_time(rec["modified"]), "markedViewedByMeDate": fmt_time(rec["created"]),
            "version": str(rec["version"]),
            "parents": [{"kind": "drive#parentReference", "id": p, "isRoot": p == root,
                         "selfLink": f"{base}drive/v2/files/{fid}/parents/{p}",
                         "parentLink": f"{base}drive/v2/files/{p}"} for p in rec["parents"]],
            "explicitlyTrashed": rec["explicitlyTrashed"],
            "quotaBytesUsed": str(rec["size"] or 0),
            "ownerNames": ["Emulator User"], "lastModifyingUserName": "Emulator User",
            "editable": True, "copyable": not folder, "writersCanShare": True, "shared": False,
            "appDataContents": False, "spaces": ["drive"],
            "capabilities": {"canCopy": not folder, "canEdit": True, "canDelete": True, "canTrash": True,
                             "canDownload": not folder, "canAddChildren": folder},
        }
        if rec.get("description"):
            res["description"] = rec["description"]
        if rec.get("driveId"):
            res["driveId"] = res["teamDriveId"] = rec["driveId"]
        if not folder:
            ext = rec["title"].rsplit(".", 1)[1] if "." in rec["title"] else ""
            res.update({
                "fileSize": str(rec["size"] or 0), "md5Checksum": rec["md5"],
                "downloadUrl": f"{base}drive/v2/files/{fid}?alt=media&source=downloadUrl",
                "webContentLink": f"{base}uc?id={fid}&export=download",
                "originalFilename": rec["title"], "fileExtension": ext,
                "fullFileExtension": rec["title"].split(".", 1)[1] if "." in rec["title"] else "",
                "headRevisionId": f"{fid}-{rec['version']}",
            })
        return res

    def _render_drive(self, d: dict) -> dict:
        return {"kind": "drive#drive", "id": d["id"], "name": d["name"],
                "createdDate": fmt_time(d["created"]), "hidden": False}

    # ------------------------------------------------------------------ seeding and inspection
    def add_shared_drive(self, name: str) -> str:
        """Create a shared drive and return its id (also the id of its root folder)."""
        return self.store.add_drive(name)["id"]

    def _walk(self, parts: list[str], drive_id: Optional[str], create: bool) -> Optional[str]:
        parent = drive_id or self.store.root_id
        for name in parts:
            with self.store.lock:
                hits = sorted((r for r in self.store.children(parent)
                               if r["title"] == name and not r["trashed"] and r["mimeType"] == FOLDER_MIME),
                              key=lambda r: (r["created"], r["id"]))
                if hits:
                    parent = hits[0]["id"]
                elif create:
                    parent = self.store.create(name, FOLDER_MIME, [parent])["id"]
                else:
                    return None
        return parent

    @staticmethod
    def _split(path: str) -> list[str]:
        parts = [p for p in path.strip("/").split("/") if p]
        if not parts:
            raise ValueError(f"empty Drive path {path!r}")
        return parts

    def add_folder(self, path: str, drive_id: Optional[str] = None) -> str:
        """``mkdir -p`` under My Drive (or a shared drive); returns the deepest folder's id."""
        return self._walk(self._split(path), drive_id, create=True)

    def add_file(self, path: str, data: Union[bytes, str, os.PathLike], *, drive_id: Optional[str] = None,
                 mime_type: Optional[str] = None) -> str:
        """Create ``path`` (folders included) with ``data`` (bytes, or a local file path); returns its id.

        A new file is always created: Drive allows duplicate names in a folder."""
        if isinstance(data, (bytes, bytearray, memoryview)):
            view = memoryview(bytes(data))
            pos = 0

            def read(n: int = _IO_CHUNK) -> bytes:
                nonlocal pos
                out = bytes(view[pos: pos + n])
                pos += len(out)
                return out
            return self._add_stream(path, read, drive_id=drive_id, mime_type=mime_type)
        with open(os.fspath(data), "rb") as f:
            return self._add_stream(path, lambda n=_IO_CHUNK: f.read(n), drive_id=drive_id,
                                    mime_type=mime_type)

    def _add_stream(self, path: str, read: Callable[..., bytes], *, drive_id: Optional[str] = None,
                    mime_type: Optional[str] = None) -> str:
        parts = self._split(path)
        if drive_id is not None and drive_id not in self.store.drives:
            raise ValueError(f"unknown shared drive id {drive_id!r}; create it with add_shared_drive()")
        tmp = self.store.upload_path("seed-" + os.urandom(8).hex())
        sink = _Sink(tmp)
        try:
            while True:
                data = read(_IO_CHUNK)
                if not data:
                    break
                sink.write(data)
        finally:
            sink.close()
        parent = self._walk(parts[:-1], drive_id, create=True)
        rec = self.store.create(parts[-1], mime_type or "application/octet-stream", [parent], blob=tmp,
                                size=sink.offset, md5=sink.md5.hexdigest())
        return rec["id"]

    def find(self, path: str, drive_id: Optional[str] = None) -> Optional[dict]:
        """The File resource at ``path`` (exact titles, trashed items skipped), or None."""
        parts = self._split(path)
        parent = self._walk(parts[:-1], drive_id, create=False)
        if parent is None:
            return None
        with self.store.lock:
            hits = sorted((r for r in self.store.children(parent)
                           if r["title"] == parts[-1] and not r["trashed"]),
                          key=lambda r: (r["created"], r["id"]))
        return self.render(hits[0]) if hits else None

    def files(self) -> list[dict]:
        """Every File resource (folders and trashed items too), oldest first."""
        recs = sorted(self.store.all_files(), key=lambda r: (r["created"], r["id"]))
        return [self.render(r) for r in recs]

    def read_bytes(self, file_id: str) -> bytes:
        """The stored content of a file (what a client should have received)."""
        rec = self.store.get(file_id)
        with open(self.store.blob_path(rec["id"]), "rb") as f:
            return f.read()

    def root_id(self) -> str:
        """The real id behind the ``root`` alias."""
        return self.store.root_id
