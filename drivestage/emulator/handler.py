"""One HTTP connection of the emulator: parsing, faults, authorization, routing and sending.

The Drive endpoints themselves live in mixins (:mod:`routes_meta`, :mod:`routes_media`,
:mod:`routes_resumable`, :mod:`control`), and so do the checks before a route
(:mod:`admission`: host, origin, token, scopes, quotas); this module holds what every
request goes through. Bodies stream: uploads go to disk in 1 MiB pieces, downloads leave
through ``sendfile``. Every error is Google's JSON envelope.
"""
from __future__ import annotations

import gzip
import io
import json
import logging
import re
import socket
import struct
import time
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Optional
from urllib.parse import parse_qs, unquote, urlsplit

from drivestage.emulator.access import GOD, Access, Caller
from drivestage.emulator.accounting import request_kind
from drivestage.emulator.admission import Admission
from drivestage.emulator.batch import BATCH_PATH, BatchRoutes
from drivestage.emulator.control import ControlRoutes
from drivestage.emulator.disk_room import release_room
from drivestage.emulator.errors import EmulatorApiError, error_envelope
from drivestage.emulator.faults import Plan
from drivestage.emulator.fields import apply_fields, check_fields, parse_fields
from drivestage.emulator.json_body import TOO_DEEP, parse_json
from drivestage.emulator.log import RequestRecord, logged_headers, redact_target
from drivestage.emulator.render import render_file
from drivestage.emulator.routes_media import MediaRoutes
from drivestage.emulator.routes_meta import MetadataRoutes
from drivestage.emulator.routes_resumable import ResumableRoutes
from drivestage.emulator.signed import SIGNED_PATH
from drivestage.emulator.store import EmulatorStore
from drivestage.emulator.throttle import Bucket
from drivestage.emulator.wire import Body, ClientGone, Deadlined, Reset

if TYPE_CHECKING:
    from drivestage.emulator.server import Emulator

log = logging.getLogger(__name__)

class _Handler(Admission, MetadataRoutes, MediaRoutes, ResumableRoutes, ControlRoutes, BatchRoutes,
               BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY every JSON answer
    # waits ~40 ms for the client's delayed ACK (Nagle).
    disable_nagle_algorithm = True
    server_version = "DriveEmulator/1.0"
    sys_version = ""
    #: A call served inside a batch (:mod:`batch`): no connection, socket or pacing of its own.
    _in_batch = False
    #: Inside a batch: the latency this call's faults asked for (the batch waits it out).
    _batch_wait = 0.0

    # ------------------------------------------------------------------ plumbing
    def setup(self) -> None:
        super().setup()
        self._raw = Deadlined(self.rfile.detach(), self.connection)   # (the headers' deadline)
        self.rfile = io.BufferedReader(self._raw)
        # One handler serves one connection (keep-alive included): its per-connection budget.
        self._link = Bucket()
        self._connection = self.server.emu._accepted(self.connection)
        self._idle()

    def pace(self, nbytes: int) -> None:
        """Hold a body to the emulator's bandwidth limits (a call in a batch: the batch's
        own body and answer are held, not each call's again)."""
        if self._in_batch:
            return
        self.emu.faults.pace(nbytes, self._link)

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        # The request line carries the query string: never log a token given as ?access_token=.
        log.debug("%s %s", self.address_string(), redact_target(format % args))

    def date_time_string(self, timestamp=None):
        """The ``Date`` of an answer: the emulator's clock, moved by ``Emulator.date_offset``
        and ``clock_offset`` (a Drive whose clock differs from the client machine's)."""
        at = time.time() + self.emu.date_offset + self.emu.clock_offset if timestamp is None \
            else timestamp
        return super().date_time_string(at)

    def send_header(self, keyword, value):
        """A header of the answer; no ``Date`` where ``Emulator.send_date`` is off."""
        if keyword == "Date" and not self.emu.send_date:
            return
        super().send_header(keyword, value)

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

    def _idle(self, waiting: bool = True) -> None:
        """Between requests (and while a request line and its headers arrive) the connection
        may wait :attr:`Emulator.idle_timeout` seconds, then it is closed, as Google's front
        end closes idle ones: each idle or never-finished connection held a thread for good
        (attackemu45). A request being served waits as long as it must (a slow upload)."""
        if self.connection is None:   # (a call in a batch)
            return
        wait = self.emu.idle_timeout if waiting else None
        self._raw.deadline = None if wait is None else time.monotonic() + wait   # (in all)
        try:
            self.connection.settimeout(wait)
        except OSError:   # (reset by a fault: closed already)
            pass

    def do_GET(self):
        self.emu._serving(1)
        self._idle(False)
        try:
            self._handle()
        finally:
            self._idle()
            release_room()   # (what its upload declared: written, or never will be)
            self.emu._serving(-1)

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
        self._ttfb = 0.0      # latency still to wait before the first byte of the answer
        self._drop_response_after: Optional[int] = None
        self._token: Optional[str] = None
        self.caller: Caller = GOD
        length = self.headers.get("Content-Length")
        chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        # (A negative length read the body to its end whole, in memory: attackemu45.)
        bad_length = length is not None and not chunked and not length.strip().isdigit()
        length_i = int(length) if length and not bad_length and not chunked else None
        faults = self.emu.faults
        self.body = Body(self.rfile, length_i, chunked, self.pace)
        self.body.drain_bytes, self.body.drain_seconds = self.emu.refusal_drain_bytes, \
            self.emu.refusal_drain_seconds
        self.body.sock = self.connection
        control = path.startswith("/_emulator/") or path == "/_emulator"
        error = None
        target = self.path
        try:
            if bad_length:
                self.close_connection = True   # (where its body ends is unknown)
                raise EmulatorApiError(400, "badRequest", f"Invalid Content-Length: {length!r}.",
                                       location="Content-Length", location_type="header")
            target = self._method_override(target)
        except EmulatorApiError as exc:
            self._rec = RequestRecord(self.command, path, {}, {}, 0, 0, 0, started)
            self._fail(exc)
            return
        # The record enters the log when the request arrives and is completed as the answer
        # goes out, so a client that has its answer always finds its request in the log.
        self._rec = RequestRecord(self.command, path, self.query, logged_headers(self.headers), 0, 0, 0,
                                  started)
        self._rec.connection = getattr(self, "_connection", 0)
        if not control:
            self._rec.kind = request_kind(self.command, path, self.query)
            self._rec.in_batch = self._in_batch
            self.emu._record(self._rec)
        try:
            self._check_host()
            self._check_origin()
            if control:
                self._control(path)
                return
            # (The keyword only for a call in a batch: tests wrap plan() with two arguments.)
            plan: Plan = faults.plan(self.command, target, call_in_batch=True) \
                if self._in_batch else faults.plan(self.command, target)
            # Latency is time to first byte: the request is read, the answer waits.
            self._ttfb = plan.latency
            if plan.reset:
                raise Reset()
            self.body.drop_after = plan.drop_request_after
            if plan.drop_request_after is not None and self.body.done:
                raise Reset()   # no body to wait for: "after 0 bytes" is now
            self._drop_response_after = plan.drop_response_after
            if plan.answer is not None:
                self.body.drain()
                a = plan.answer
                if a.body is None:
                    self._send_json(a.status, a.envelope(), a.headers)
                else:
                    self._send_bytes(a.status, a.body, a.content_type or "text/html; charset=UTF-8",
                                     a.headers)
                return
            if path == BATCH_PATH and self.command == "POST" and not self._in_batch:
                self._batch()  # each call is authorized and charged on its own
                return
            signed = SIGNED_PATH.fullmatch(path)
            if signed is not None and self.command in ("GET", "HEAD") and not self._in_batch:
                self._signed_download(signed.group(1))  # the link is the authorization
                return
            self._authorize()
            self._admit()
            self._route(path)
        except EmulatorApiError as exc:
            self._fail(exc)
        except Reset:
            error = self._rec.error = "reset"
            self._wait_first_byte()
            self._reset()
        except ClientGone:
            error = "client gone"
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            error = "client gone"
            self.close_connection = True
        except RecursionError:
            # A JSON body, ``fields`` or ``q`` nested past Python's stack is the request's
            # fault: it answered 500 backendError, which clients retry (attackemu45).
            self._fail(EmulatorApiError(400, "badRequest", TOO_DEEP))
        except Exception as exc:  # a bug in the emulator: answer 500 and say so in the log
            log.exception("emulator failed on %s %s", self.command, redact_target(self.path))
            self._fail(EmulatorApiError(500, "backendError", f"Emulator error: {exc}"))
        finally:
            rec = self._rec
            rec.status, rec.bytes_in, rec.bytes_out = self._status, self.body.count, self._bytes_out
            rec.duration, rec.error = time.time() - started, error

    def _fail(self, exc: EmulatorApiError) -> None:
        if self._headers_sent:
            self.close_connection = True
            return
        # Bounded: an endless body held the thread for good. Past the bound the answer goes
        # out and the connection is closed, as a front end does (a client still sending may
        # see its send fail, not the answer: hence a bound above any chunk clients send).
        self.body.drain()
        try:
            self._send_json(exc.status, exc.envelope(), exc.headers)
        except ClientGone:   # (it hung up while the answer waited out a latency)
            self.close_connection = True

    def _reset(self) -> None:
        """Abort the connection with a TCP reset, as a crashing front end would."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def _wait_first_byte(self) -> bool:
        """Wait out the answer's latency: False when the client hung up meanwhile."""
        if self._in_batch:  # the batch waits for its calls (the slowest), not each in turn
            self._batch_wait, self._ttfb = max(self._batch_wait, self._ttfb), 0.0
            return True
        waited = self._ttfb <= 0 or self.emu.faults.wait_latency(self._ttfb, self.connection)
        self._ttfb = 0.0
        return waited

    def _start(self, status: int, headers: dict, length: Optional[int],
               content_type: Optional[str] = None) -> None:
        if not self._wait_first_byte():
            raise ClientGone()   # (no one to answer)
        if self.body.cut:   # (a body left unread past the drain's bounds: Body.drain)
            self.close_connection = True
            headers = {**headers, "Connection": "close"}
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
        self._rec.duration = time.time() - self._rec.time    # time to first byte, until the end
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
                raise Reset()
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
        data, headers = self._maybe_gzipped(json.dumps(obj).encode("utf-8"), headers)
        self._send_bytes(status, data, "application/json; charset=UTF-8", headers)

    def _maybe_gzipped(self, data: bytes, headers: Optional[dict]) -> tuple[bytes, Optional[dict]]:
        """``data`` gzipped, with its Content-Encoding, where :attr:`Emulator.gzip_answers`
        is set and the request asks as Google's performance guide says (``Accept-Encoding:
        gzip`` and a User-Agent containing ``gzip``); else as it is."""
        accept = (self.headers.get("Accept-Encoding") or "").lower()
        agent = self.headers.get("User-Agent") or ""
        # A batch's parts never: the batch's answer is gzipped whole.
        if self._in_batch or not (self.emu.gzip_answers and "gzip" in accept
                                  and "gzip" in agent and data):
            return data, headers
        self._rec.encoding = "gzip"
        return gzip.compress(data, mtime=0), {**(headers or {}), "Content-Encoding": "gzip"}

    def _render(self, rec: dict, access: Optional[Access] = None) -> dict:
        """``rec`` as the File resource this request's caller gets."""
        return render_file(self.emu, rec, self._base(), self.caller, access)

    def _send_resource(self, status: int, obj: dict) -> None:
        fields = self.query.get("fields")
        if fields:
            tree = parse_fields(fields)
            check_fields(tree, obj.get("kind") if isinstance(obj, dict) else None)
            obj = apply_fields(obj, tree)
        self._send_json(status, obj)

    def _read_json(self) -> dict:
        raw = self.body.read_all()
        if not raw.strip():
            return {}
        obj = parse_json(raw)   # (its cost bounded first: :mod:`json_body`)
        if not isinstance(obj, dict):
            raise EmulatorApiError(400, "parseError", "Parse Error: expected a JSON object")
        return obj

    # ------------------------------------------------------------------ routing
    _ROUTES = [
        (re.compile(r"/drive/v2/about"), {"GET": "_about"}),
        (re.compile(r"/drive/v2/drives"), {"GET": "_drives_list"}),
        (re.compile(r"/drive/v2/drives/([^/]+)"), {"GET": "_drives_get"}),
        (re.compile(r"/drive/v2/files"), {"GET": "_files_list", "POST": "_files_insert"}),
        (re.compile(r"/drive/v2/files/trash"), {"DELETE": "_files_empty_trash"}),
        (re.compile(r"/drive/v2/files/generateIds"), {"GET": "_files_generate_ids"}),
        (re.compile(r"/drive/v2/files/([^/]+)"), {"GET": "_files_get", "HEAD": "_files_get",
                                                  "PUT": "_files_update", "PATCH": "_files_update",
                                                  "DELETE": "_files_delete"}),
        (re.compile(r"/drive/v2/files/([^/]+)/trash"), {"POST": "_files_trash"}),
        (re.compile(r"/drive/v2/files/([^/]+)/untrash"), {"POST": "_files_untrash"}),
        (re.compile(r"/drive/v2/files/([^/]+)/copy"), {"POST": "_files_copy"}),
        (re.compile(r"/drive/v2/files/([^/]+)/touch"), {"POST": "_files_touch"}),
        (re.compile(r"/drive/v2/files/([^/]+)/revisions"), {"GET": "_revisions_list"}),
        (re.compile(r"/drive/v2/files/([^/]+)/properties"), {"GET": "_properties_list",
                                                                "POST": "_properties_insert"}),
        (re.compile(r"/drive/v2/files/([^/]+)/properties/([^/]+)"), {"GET": "_properties_get",
                                                                    "DELETE": "_properties_delete"}),
        (re.compile(r"/drive/v2/files/([^/]+)/revisions/([^/]+)"), {"GET": "_revisions_get",
                                                                   "PUT": "_revisions_update",
                                                                   "PATCH": "_revisions_update",
                                                                   "DELETE": "_revisions_delete"}),
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
