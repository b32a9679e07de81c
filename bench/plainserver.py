"""A small, independent Drive-API-v2 look-alike that serves one file, for benchmarks.

``bench/pull.py`` measures drivestage against this server beside the project's own emulator,
so that no ratio rests on the emulator's own serving code (``sendfile``, its request
handling). It is written from the HTTP and Drive v2 documents only, on Python's
``http.server`` (``ThreadingHTTPServer``, HTTP/1.1 keep-alive), and answers:

* ``GET /drive/v2/files/<ID>`` (``alt=json`` or no ``alt``): the File resource - ``id``,
  ``title``, ``mimeType``, ``fileSize`` (a string, as Drive sends it), ``md5Checksum``,
  ``sha1Checksum``, ``sha256Checksum``, ``modifiedDate``, ``parents``, ``downloadUrl``, ``labels.trashed`` and a few more;
* ``GET /drive/v2/files/<ID>?alt=media``: the bytes, read with plain ``read()`` and sent
  with ``write()`` (no ``sendfile``). One ``Range: bytes=a-b`` / ``a-`` / ``-n`` gets ``206``
  with ``Content-Range``; an unsatisfiable one ``416`` with ``Content-Range: bytes */N``; a
  header that is not one valid range is ignored (``200``, the whole file), as RFC 9110 allows.
* ``HEAD`` of both. Other query parameters (``supportsAllDrives``, ``fields``,
  ``acknowledgeAbuse``...) are accepted and ignored. Any ``Authorization: Bearer ...`` is
  accepted; none is ``401``. Errors are Drive's JSON envelope.

Drive's way of answering is modelled by two knobs, changeable between runs: ``ttfb``
(seconds every request waits before its answer starts: Drive's time to first byte) and
``link`` (bytes per second each connection's body is held to). The server counts what it
was asked (:meth:`PlainDrive.counts`: metadata and media requests, body bytes).

Use it from Python (``with PlainDrive("/tmp/x.zip") as srv: srv.url, srv.file_id``) or
serve a file by hand, then point drivestage or curl at it::

    python bench/plainserver.py /tmp/x.zip --port 8766 --ttfb 0.2 --link 100
    DRIVESTAGE_API_ROOT=http://127.0.0.1:8766/ DRIVESTAGE_TOKEN=x \\
        drivestage pull drive:id:<ID> /tmp/out --extract
"""
from __future__ import annotations

import argparse
import hashlib
import json
import mimetypes
import os
import re
import socket
import threading
import time
from collections import deque
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional
from urllib.parse import parse_qs, urlsplit

_BLOCK = 256 * 1024          # one read() + one write() per block
_PACED_BLOCK = 64 * 1024     # finer steps when a link rate holds the body back
_FILES_RE = re.compile(r"^/drive/v2/files/([^/]+)$")
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(value: str, size: int) -> Optional[tuple[int, int]]:
    """One ``bytes=`` range of a ``size``-byte body: ``(first, last)`` inclusive; ``None`` to
    ignore the header (not one valid range: serve everything); ``(-1, -1)`` when it is valid
    but unsatisfiable (416)."""
    m = _RANGE_RE.match(value.strip().replace(" ", ""))
    if not m or not (m.group(1) or m.group(2)):
        return None
    if not m.group(1):                       # bytes=-n: the last n bytes
        n = int(m.group(2))
        return (-1, -1) if n == 0 or size == 0 else (max(size - n, 0), size - 1)
    first = int(m.group(1))
    if m.group(2) and int(m.group(2)) < first:
        return None                          # invalid: ignored (RFC 9110 14.1.1)
    if first >= size:
        return (-1, -1)
    last = int(m.group(2)) if m.group(2) else size - 1
    return first, min(last, size - 1)


def _rfc3339(seconds: float) -> str:
    stamp = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def _checksums_of(path: str) -> dict[str, str]:
    """md5, sha1 and sha256 of the file, in one pass."""
    digests = {name: hashlib.new(name) for name in ("md5", "sha1", "sha256")}
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(4 << 20), b""):
            for digest in digests.values():
                digest.update(block)
    return {name: digest.hexdigest() for name, digest in digests.items()}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, addr: tuple[str, int], owner: "PlainDrive"):
        super().__init__(addr, _Handler)
        self.owner = owner


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "plain-drive/1"
    timeout = 120                # an idle keep-alive connection is closed after this

    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.owner._opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._closed(self.connection)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base's name
        pass                     # quiet: a benchmark prints its own numbers

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_GET(self) -> None:
        self._answer(head=False)

    # ------------------------------------------------------------------ routing

    def _answer(self, head: bool) -> None:
        owner = self.server.owner
        if owner.ttfb > 0:
            time.sleep(owner.ttfb)
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        m = _FILES_RE.match(url.path)
        if not (self.headers.get("Authorization") or "").lower().startswith("bearer "):
            owner._count("other")
            self._error(401, "required", "Login Required.", head)
            return
        if m is None:
            owner._count("other")
            self._error(404, "notFound", f"Not Found: {url.path}", head)
            return
        if m.group(1) != owner.file_id:
            owner._count("other")
            self._error(404, "notFound", f"File not found: {m.group(1)}.", head)
            return
        alt = query.get("alt", "json")
        if alt == "media":
            owner._count("media")
            self._media(head)
        elif alt == "json":
            owner._count("metadata")
            body = json.dumps(owner.resource()).encode()
            self._send(200, body, "application/json; charset=UTF-8", {}, head)
        else:
            owner._count("other")
            self._error(400, "invalidParameter", f"Invalid value for alt: {alt}", head)

    # ------------------------------------------------------------------ answers

    def send_response(self, code: int, message: Optional[str] = None) -> None:
        self.server.owner._note(self.command, self.path, self.headers.get("Range"), code)
        super().send_response(code, message)

    def _send(self, status: int, body: bytes, ctype: str, headers: dict, head: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _error(self, status: int, reason: str, message: str, head: bool,
               headers: Optional[dict] = None) -> None:
        body = json.dumps({"error": {"errors": [{"domain": "global", "reason": reason,
                                                 "message": message}],
                                     "code": status, "message": message}}).encode()
        self._send(status, body, "application/json; charset=UTF-8", headers or {}, head)

    def _media(self, head: bool) -> None:
        owner = self.server.owner
        with open(owner.path, "rb") as fh:       # opened now: one version per answer
            size = os.fstat(fh.fileno()).st_size
            first, last, status = 0, size - 1, 200
            headers = {"Accept-Ranges": "bytes"}
            value = self.headers.get("Range")
            if value is not None:
                rng = parse_range(value, size)
                if rng == (-1, -1):
                    self._error(416, "requestedRangeNotSatisfiable",
                                "Request range not satisfiable", head,
                                {"Content-Range": f"bytes */{size}"})
                    return
                if rng is not None:
                    first, last, status = rng[0], rng[1], 206
                    headers["Content-Range"] = f"bytes {first}-{last}/{size}"
            count = last - first + 1
            self.send_response(status)
            self.send_header("Content-Type", owner.mime_type)
            self.send_header("Content-Length", str(count))
            for key, val in headers.items():
                self.send_header(key, val)
            self.end_headers()
            if head or count == 0:
                return
            fh.seek(first)
            began, sent = time.monotonic(), 0
            while sent < count:
                data = fh.read(min(_PACED_BLOCK if owner.link else _BLOCK, count - sent))
                if not data:      # the file shrank under us: end the connection short
                    self.close_connection = True
                    return
                rate = owner.link
                if rate:          # each connection held to ``link`` bytes per second:
                    # a block leaves when the link would have carried it to its last byte.
                    wait = began + (sent + len(data)) / rate - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True
                    return
                sent += len(data)
                owner._count("bytes", len(data))


class PlainDrive:
    """Serve the file at ``path`` as one Drive v2 file (see the module docstring).

    ``ttfb`` (seconds before every answer) and ``link`` (bytes per second per connection,
    None for unlimited) may be changed at any time; they apply to requests that start after.
    """

    def __init__(self, path: str, *, file_id: str = "plainfile0001", title: Optional[str] = None,
                 md5: Optional[str] = None, mime_type: Optional[str] = None,
                 parent_id: str = "root", ttfb: float = 0.0, link: Optional[float] = None,
                 host: str = "127.0.0.1", port: int = 0):
        self.path = os.path.abspath(path)
        self.file_id = file_id
        self.title = title or os.path.basename(path)
        sums = _checksums_of(self.path)
        if md5 is not None:  # the caller's (a server that lies): no other checksum then
            sums = {"md5": md5}
        self.md5, self.sha1, self.sha256 = sums["md5"], sums.get("sha1"), sums.get("sha256")
        self.mime_type = mime_type or mimetypes.guess_type(self.title)[0] or \
            "application/octet-stream"
        self.parent_id = parent_id
        self.ttfb, self.link = float(ttfb), (float(link) if link else None)
        self.host, self.port = host, port
        self._lock = threading.Lock()
        self._counts = {"metadata": 0, "media": 0, "other": 0, "bytes": 0}
        self._log: deque[tuple[str, str, Optional[str], int]] = deque(maxlen=10_000)
        self._sockets: set[socket.socket] = set()
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "PlainDrive":
        """Serve in a background thread (``self.url``)."""
        if self._server is None:
            self._server = _Server((self.host, self.port), self)
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(target=self._server.serve_forever,
                                            kwargs={"poll_interval": 0.05},
                                            name="plain-drive", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        assert self._thread is not None
        self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> "PlainDrive":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://HOST:PORT/``: the API root (``DRIVESTAGE_API_ROOT``)."""
        return f"http://{self.host}:{self.port}/"

    @property
    def media_url(self) -> str:
        """The URL curl fetches the bytes from."""
        return f"{self.url}drive/v2/files/{self.file_id}?alt=media"

    # ------------------------------------------------------------------ bookkeeping

    def counts(self) -> dict:
        """Requests served so far: ``metadata``, ``media``, ``other``, and body ``bytes``."""
        with self._lock:
            return dict(self._counts)

    def requests(self) -> list[tuple[str, str, Optional[str], int]]:
        """The last 10,000 requests as ``(method, path?query, Range header, status)``."""
        with self._lock:
            return list(self._log)

    def _note(self, method: str, path: str, rng: Optional[str], status: int) -> None:
        with self._lock:
            self._log.append((method, path, rng, status))

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] += n

    def _opened(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _closed(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def resource(self) -> dict:
        """The file as a Drive v2 File resource."""
        st = os.stat(self.path)
        base = self.url
        ext = self.title.rsplit(".", 1)[1] if "." in self.title else ""
        return {
            "kind": "drive#file", "id": self.file_id, "etag": f'"{self.file_id}/1"',
            "selfLink": f"{base}drive/v2/files/{self.file_id}",
            "title": self.title, "originalFilename": self.title, "fileExtension": ext,
            "mimeType": self.mime_type, "fileSize": str(st.st_size),
            "quotaBytesUsed": str(st.st_size), "md5Checksum": self.md5,
            **({"sha1Checksum": self.sha1, "sha256Checksum": self.sha256}
               if self.sha256 else {}),
            "createdDate": _rfc3339(st.st_mtime), "modifiedDate": _rfc3339(st.st_mtime),
            "parents": [{"kind": "drive#parentReference", "id": self.parent_id,
                         "isRoot": self.parent_id == "root"}],
            "downloadUrl": f"{base}drive/v2/files/{self.file_id}?alt=media&source=downloadUrl",
            "labels": {"starred": False, "hidden": False, "trashed": False,
                       "restricted": False, "viewed": True},
            "explicitlyTrashed": False, "editable": False, "copyable": True,
            "capabilities": {"canDownload": True, "canCopy": True},
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", help="the file to serve")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8766)
    ap.add_argument("--id", default="plainfile0001", help="its Drive id (default plainfile0001)")
    ap.add_argument("--ttfb", type=float, default=0.0,
                    help="seconds every request waits before its answer starts (default 0)")
    ap.add_argument("--link", type=float, default=0.0,
                    help="MB/s each connection is held to (default 0: unlimited)")
    args = ap.parse_args()
    srv = PlainDrive(args.file, file_id=args.id, ttfb=args.ttfb,
                     link=args.link * 1e6 if args.link else None, host=args.host,
                     port=args.port).start()
    print(f"serving {srv.path} as drive:id:{srv.file_id} at {srv.url} "
          f"(md5 {srv.md5}); Ctrl-C stops", flush=True)
    print(f"  DRIVESTAGE_API_ROOT={srv.url} DRIVESTAGE_TOKEN=x drivestage pull "
          f"drive:id:{srv.file_id} DEST", flush=True)
    print(f"  curl -H 'Authorization: Bearer x' -o FILE '{srv.media_url}'", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
