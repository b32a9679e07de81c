"""Where and how drivestage connects: the API root and its discovery document, httplib2
with Drive's settings, and google-auth's transport for token refreshes on the same library.

Every connection leaves 308 (a resumable upload's "resume incomplete") alone, fails after
``$DRIVESTAGE_HTTP_TIMEOUT`` seconds without a byte, and never answers a 401 challenge itself
(drivestage sends the bearer token; httplib2's own parsing of ``WWW-Authenticate`` raises on a
bare ``Bearer``). Every answer but a download's bytes (``alt=media``, read by
:mod:`drivestage.drive.media`) is bounded (:func:`bounded_connection`): at most
:data:`MAX_ANSWER_BYTES`, read within ``$DRIVESTAGE_HTTP_TIMEOUT`` seconds in all, so a server
whose answer never ends, or trickles a byte at a time, fails the request (which is retried a
bounded number of times) instead of filling memory or holding the command forever.
"""
from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import re
import socket
import threading
import time
import urllib.parse
import zlib
from typing import Any, Callable, Iterator, Mapping, Optional

import google.auth.exceptions
import google.auth.transport
import httplib2

from drivestage.drive import server_clock
from drivestage.drive.sliced import SlicedHTTP, SlicedHTTPS, SlicedResponse
from drivestage.errors import RemoteError, UsageError


_DOC_LOCK = threading.Lock()
_DOC_TEXT: Optional[str] = None


def _unlocked_in_child() -> None:
    global _DOC_LOCK
    _DOC_LOCK = threading.Lock()   # (held by a thread of the parent: services' lock, too)


os.register_at_fork(after_in_child=_unlocked_in_child)


def discovery_doc(api_root: Optional[str]) -> dict[str, Any]:
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


def api_root(api_root: Optional[str]) -> Optional[str]:
    """The Drive API root to talk to: ``api_root``, else ``$DRIVESTAGE_API_ROOT``, else None
    (Google's); UsageError when it is not an http(s) URL."""
    root = api_root if api_root is not None else os.environ.get("DRIVESTAGE_API_ROOT")
    if not root:
        return None
    # Named where it came from (the CLI reads the variable into --api-root too): the
    # trainer has no --api-root to look for.
    source = ("DRIVESTAGE_API_ROOT" if root == os.environ.get("DRIVESTAGE_API_ROOT")
              else "--api-root")
    # (a space or newline pasted with the address: `GET / /drive/v2/files`, a 404 "not found
    # on Drive" that named no setting: ux35)
    root = root.strip()
    if not re.match(r"^https?://[^/]+", root):
        raise UsageError(f"{source} {root!r} is not an http(s) URL "
                         "(e.g. http://127.0.0.1:8765/)")
    try:
        # (`http://[::1` passed the check above and ended in "ValueError: Invalid IPv6 URL"
        # from the discovery document's urljoin, a traceback; a port past 65535 in
        # "connection refused", as if no server ran there: attackcli39)
        urllib.parse.urlsplit(root).port
    except ValueError as exc:
        raise UsageError(f"{source} {root!r} is not a valid URL ({exc}); give one like "
                         "http://127.0.0.1:8765/") from None
    api_path = re.search(r"/drive/v[23]/?$", root)
    if api_path is not None:  # the files API's address: every request went to /drive/v2/drive/v2
        raise UsageError(f"{source} {root!r} ends in the Drive API's own path "
                         f"({api_path.group(0)}); give the server's root: "
                         f"{root[:api_path.start()]}/")
    return root.rstrip("/") + "/"


#: Seconds without a byte from the server before a request fails (and is retried).
DEFAULT_HTTP_TIMEOUT = 120.0
#: The most it may be: a socket takes no timeout past about 9.2e9 seconds.
MAX_HTTP_TIMEOUT = 1e9


def http_timeout(env: Mapping[str, str] = os.environ) -> float:
    """``$DRIVESTAGE_HTTP_TIMEOUT`` (seconds, default 120); UsageError when not a positive
    number."""
    raw = env.get("DRIVESTAGE_HTTP_TIMEOUT")
    if raw is None or raw.strip() == "":
        return DEFAULT_HTTP_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    # (1e300 passed "not inf" and every request died in OverflowError from the socket's
    # timeout, a traceback; 1e9 s is 31 years: attackcli39)
    if not 0 < value <= MAX_HTTP_TIMEOUT:
        raise UsageError(f"DRIVESTAGE_HTTP_TIMEOUT={raw!r} is not a number of seconds above 0 "
                         f"and at most 1e9 (e.g. 120, the default)")
    return value


#: Set while httplib2 follows a redirect of a request on this thread (see :class:`_Http`).
_following = threading.local()
#: Set while a request whose every try is counted and guarded runs on this thread
#: (:func:`counted_tries`).
_counted = threading.local()


class HungUp(ConnectionResetError):
    """The server closed the connection without an answer to a request sent whole: it may
    have carried it out. Not an ``http.client.BadStatusLine``, which httplib2 answers by
    sending the request again at once, unseen (see :func:`counted_tries`)."""


@contextlib.contextmanager
def counted_tries() -> Iterator[None]:
    """Within it, a request the server hung up on without a status line fails
    (:class:`HungUp`, retried by the caller's loop) instead of being sent again by httplib2
    at once. httplib2 does so for a kept-alive connection gone stale, and cannot tell the
    server that closed it idle from one that carried the request out and then hung up: a
    removal sent again so went without the push's guard (a lease lost meanwhile: guards40
    asks it before each try), and a files.update counted one try where Drive had two
    (:mod:`drivestage.drive.reparent` reads the item again only after a retry's error:
    attackpush41). Only for those requests: a stale connection costs them one retry."""
    was = getattr(_counted, "on", False)
    _counted.on = True
    try:
        yield
    finally:
        _counted.on = was


class _Http(httplib2.Http):  # type: ignore[misc]  # (httplib2 has no types)
    """httplib2 that follows a redirect without the resource keys, as it drops the token:
    it sends the request's headers on to whatever address the server names (another
    origin), and a key with its id is the secret part of a file's sharing link. Drive's API
    redirects at most a download, to a signed address that needs neither."""

    def request(self, uri: str, method: str = "GET", body: Any = None,
                headers: Optional[dict[str, str]] = None,
                redirections: int = httplib2.DEFAULT_MAX_REDIRECTS,
                connection_type: Any = None) -> Any:
        outer = getattr(_following, "on", False)
        if outer and headers:  # httplib2's own call: a redirect
            headers = {k: v for k, v in headers.items()
                       if k.lower() != "x-goog-drive-resource-keys"}
        _following.on = True
        try:
            answer = super().request(uri, method, body, headers, redirections, connection_type)
        finally:
            _following.on = outer
        server_clock.heard(answer[0])   # (Drive's clock: drivestage.drive.server_clock)
        return answer

    def _conn_request(self, conn: Any, request_uri: str, method: str, body: Any,
                      headers: Any) -> Any:
        if not getattr(_counted, "on", False):
            return super()._conn_request(conn, request_uri, method, body, headers)
        getresponse = conn.getresponse

        def answered(*args: Any, **kwargs: Any) -> Any:
            try:
                return getresponse(*args, **kwargs)
            except (http.client.BadStatusLine, http.client.ResponseNotReady) as exc:
                # (httplib2 resends at once on these, on its first try: see counted_tries)
                raise HungUp(f"the server closed the connection without an answer "
                             f"({type(exc).__name__})") from exc
        conn.getresponse = answered
        try:
            return super()._conn_request(conn, request_uri, method, body, headers)
        finally:
            conn.__dict__.pop("getresponse", None)


class WebPageAnswer(Exception):
    """A request for Drive's JSON answered 2xx with a web page: a captive portal (a hotel's
    Wi-Fi login) or a filter answers in Drive's place. Its words are the message."""


class AnswerCutShort(http.client.HTTPException):
    """A 2xx JSON answer whose body ends before its object does, its length saying it is
    whole (a proxy's): read as a lost connection, retried on a new one."""


def check_answer(uri: str, resp: Any, content: Any) -> None:
    """Drive's answer to a request but a file's bytes, before it is read as its JSON: a web
    page in a 2xx answer (or in a redirect not followed) raises :class:`WebPageAnswer` (it was "not what Drive sends
    (TypeError: string indices...); is --api-root a Drive API?", on the default API root
    too), a JSON object cut short :class:`AnswerCutShort` (the same line, not retried).
    (Not for a token server's answers: their callers read those.)"""
    kind = str(resp.get("content-type", ""))
    if 300 <= resp.status < 400 and resp.status not in (304, 308) and content:
        # A redirect httplib2 left (a POST's, a PUT's: Drive sends none) with a page: a
        # captive portal's usual answer, sending to its login page. It was "Drive answered
        # HTTP 302: <html> ...". (308 is a resumable upload's "resume incomplete".)
        refuse_page(kind, lambda: content)
    if not 200 <= resp.status < 300 or "alt=media" in uri:
        return
    refuse_page(kind, lambda: content)
    if kind.split(";")[0].strip().lower() == "application/json" and \
            isinstance(content, (bytes, bytearray)) and content.strip() and \
            content.lstrip()[:1] == b"{" and content.rstrip()[-1:] != b"}":
        raise AnswerCutShort(f"the answer's JSON object is cut short ({len(content)} bytes)")


def is_page_type(content_type: str) -> bool:
    """Whether ``content_type`` (a header's, or a Drive file's mimeType) is a web page's."""
    return content_type.split(";")[0].strip().lower() in ("text/html", "application/xhtml+xml")


def refuse_page(content_type: str, read: Callable[[], Any]) -> None:
    """Raise :class:`WebPageAnswer`, with the page's first words (``read()``: its first
    bytes), when ``content_type`` is a web page's."""
    if is_page_type(content_type):
        from drivestage.drive.answers import page_excerpt

        content = read()
        text = bytes(content[:65536]).decode("utf-8", "replace") \
            if isinstance(content, (bytes, bytearray)) else str(content or "")
        words = page_excerpt(text)
        raise WebPageAnswer(words[:120] + ("..." if len(words) > 120 else ""))


def keys_stay_home(http: httplib2.Http) -> None:
    """Make ``http`` (a plain httplib2 one: PyDrive2 makes its own per thread) follow
    redirects without the resource keys (:class:`_Http`)."""
    if type(http) is httplib2.Http:
        http.__class__ = _Http


def build_http(timeout: Optional[float] = None) -> httplib2.Http:
    """A fresh ``httplib2.Http`` that leaves 308 (resumable upload) alone."""
    if timeout is None:
        timeout = http_timeout()
    http = _Http(timeout=timeout)
    http.redirect_codes = set(http.redirect_codes) - {308}
    no_httplib2_auth(http)
    return http


def _no_challenges(*args: Any, **kwargs: Any) -> Iterator[Any]:
    return iter(())


def no_httplib2_auth(http: httplib2.Http) -> None:
    """Switch off httplib2's own answer to a 401 challenge: drivestage sends the bearer token
    itself, and httplib2 parsing ``WWW-Authenticate`` raises MalformedHeader (a traceback) on
    a bare ``WWW-Authenticate: Bearer``."""
    http._auth_from_challenge = _no_challenges


class _TokenResponse(google.auth.transport.Response):
    def __init__(self, resp: httplib2.Response, data: bytes):
        self._resp, self._data = resp, data

    @property
    def status(self) -> int:
        return int(self._resp.status)

    @property
    def headers(self) -> Mapping[str, str]:
        return dict(self._resp)

    @property
    def data(self) -> bytes:
        return self._data


class TokenRequest(google.auth.transport.Request):
    """google-auth's transport for token refreshes, on httplib2 like the rest of drivestage.

    google-auth-httplib2's own ``Request`` logs a WARNING ("httplib2 transport does not support
    per-request timeout") for every request google-auth makes with a timeout: two lines in a
    Colab cell for each refresh. Here a timeout is honoured instead, by a connection built
    with it."""

    def __call__(self, url: str, method: str = "GET", body: Any = None,
                 headers: Optional[Mapping[str, str]] = None, timeout: Optional[float] = None,
                 **kwargs: Any) -> google.auth.transport.Response:
        conn = build_http(timeout)
        try:
            # Bounded, and read in pieces in the main thread, as Drive's answers are: a
            # main-thread call that refreshed first waited for a token server that held its
            # answer whatever Ctrl-C came (see SlicedResponse).
            resp, data = conn.request(url, method=method, body=body, headers=dict(headers or {}),
                                      connection_type=bounded_connection(url))
            if 200 <= resp.status < 300:   # (a filter's page: "not what Drive sends", it was)
                refuse_page(str(resp.get("content-type", "")), lambda: data)
        except RemoteError:
            raise   # (a proxy's refusal: its own line, not the token server's)
        except WebPageAnswer as exc:
            raise google.auth.exceptions.TransportError(
                f"its answer is a web page ('{exc}'), not a token: a network filter or a "
                "captive portal answers in its place") from None
        except (httplib2.HttpLib2Error, http.client.HTTPException, OSError) as exc:
            raise google.auth.exceptions.TransportError(exc) from exc
        finally:
            conn.close()
        return _TokenResponse(resp, data)


#: The most bytes of an answer other than a download's (metadata, a listing page of 1,000
#: items, an upload's last answer): a few MB at most from Drive.
MAX_ANSWER_BYTES = 64 << 20
_BLOCK = 64 << 10


class AnswerTooLargeError(http.client.HTTPException):
    """An answer longer than :data:`MAX_ANSWER_BYTES` (read as a lost connection: retried)."""


class _Bounded:
    """A response's file object that raises once more than ``limit`` bytes came, or when the
    answer (status line, headers and body) is not complete within ``seconds``. Reads return
    after each arrival from the socket, so a trickle meets the deadline too."""

    def __init__(self, fp: Any, limit: int, seconds: float):
        self._fp, self._left, self._seconds = fp, limit, seconds
        self._deadline = time.monotonic() + seconds

    def _check(self, got: int) -> None:
        if time.monotonic() > self._deadline:
            raise socket.timeout(f"the server took more than {self._seconds:g} s to answer")
        self._left -= got
        if self._left < 0:
            raise AnswerTooLargeError(f"the server's answer is larger than "
                                      f"{MAX_ANSWER_BYTES >> 20} MiB; Drive never sends that")

    def read1(self, n: int = -1) -> bytes:
        self._check(0)
        data: bytes = self._fp.read1(_BLOCK if n is None or n < 0 else min(n, _BLOCK))
        self._check(len(data))
        return data

    def read(self, n: Optional[int] = -1) -> bytes:
        out = bytearray()
        while n is None or n < 0 or len(out) < n:
            data = self.read1(-1 if n is None or n < 0 else n - len(out))
            if not data:
                break
            out += data
        return bytes(out)

    def readinto(self, buf: Any) -> int:
        data = self.read(len(buf))
        buf[:len(data)] = data
        return len(data)

    def peek(self, n: int = 0) -> bytes:
        self._check(0)
        data: bytes = self._fp.peek(n)
        return data

    def readline(self, limit: Optional[int] = -1) -> bytes:
        limit = self._left + 1 if limit is None or limit < 0 else limit
        out = bytearray()
        while len(out) < limit:
            ahead = self.peek(1)[:limit - len(out)]
            if not ahead:
                break
            end = ahead.find(b"\n")
            take = ahead if end < 0 else ahead[:end + 1]
            out += self.read1(len(take))
            if end >= 0:
                break
        return bytes(out)

    def __getattr__(self, name: str) -> Any:  # close, fileno, flush, closed
        return getattr(self._fp, name)


def _bounded_response(limit: int) -> type:
    class _Response(SlicedResponse):
        def __init__(self, sock: Any, *args: Any, **kwargs: Any):
            super().__init__(sock, *args, **kwargs)
            self.fp = _Bounded(self.fp, limit,  # type: ignore[assignment]
                               sock.gettimeout() or DEFAULT_HTTP_TIMEOUT)

        def begin(self) -> None:
            super().begin()
            _decompressed(self, limit)
    return _Response


#: The Content-Encodings httplib2 decompresses, with zlib's window bits for each (32 + 15:
#: a gzip or zlib header, whichever; deflate: a zlib stream, else a raw one).
_CODINGS = {"gzip": 47, "x-gzip": 47, "deflate": 15, "zlib": 15}


class AnswerUnreadableError(http.client.HTTPException):
    """A compressed answer that does not decompress (read as a lost connection: retried)."""


def _decompressed(resp: http.client.HTTPResponse, limit: int) -> None:
    """A compressed answer (Drive gzips its JSON), decompressed here, at most ``limit``
    bytes, and handed on as it is: httplib2 decompressed it whole, past the bound on what is
    read (an older httplib2 without any bound: a 64 KiB gzip of spaces was 64 MiB of
    memory, 64 MiB of it 64 GiB), or raised its own ``DecodeRatioError`` out of the
    command, a traceback (attackpull33)."""
    coding = (resp.getheader("content-encoding") or "").strip().lower()
    if coding not in _CODINGS or resp.length == 0:
        return
    raw = resp.read()   # (bounded by _Bounded)
    try:
        d = zlib.decompressobj(_CODINGS[coding])
        try:
            out = d.decompress(raw, limit + 1)
        except zlib.error:
            if coding not in ("deflate", "zlib"):
                raise
            d = zlib.decompressobj(-15)   # (a raw deflate stream, as some servers send)
            out = d.decompress(raw, limit + 1)
        if len(out) <= limit and not d.unconsumed_tail:
            out += d.flush()
    except zlib.error as exc:
        raise AnswerUnreadableError(f"the server's answer says Content-Encoding: {coding} "
                                    f"but does not decompress ({exc})") from None
    if len(out) > limit or d.unconsumed_tail:
        raise AnswerTooLargeError(f"the server's answer is larger than {limit >> 20} MiB "
                                  "once decompressed; Drive never sends that")
    if raw and not d.eof:   # (zlib gives what it has of a stream cut short, and no error)
        raise AnswerUnreadableError(f"the server's answer says Content-Encoding: {coding} "
                                    "but its compressed stream is cut short")
    del resp.msg["content-encoding"], resp.msg["content-length"]
    resp.msg["Content-Length"] = str(len(out))
    resp.fp = io.BufferedReader(io.BytesIO(out))
    resp.length, resp.chunked = len(out), False


_BOUNDED_RESPONSE = _bounded_response(MAX_ANSWER_BYTES)


def _putrequest(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> None:
    media = method == "GET" and "alt=media" in url
    self.response_class = SlicedResponse if media else _BOUNDED_RESPONSE
    http.client.HTTPConnection.putrequest(self, method, url, *args, **kwargs)


class _BoundedHTTP(SlicedHTTP):
    putrequest = _putrequest


class _BoundedHTTPS(SlicedHTTPS):
    putrequest = _putrequest


def bounded_connection(uri: str) -> type:
    """The httplib2 connection class for ``uri``: answers bounded in size and time, but for a
    download's bytes (see the module's doc)."""
    return _BoundedHTTPS if uri.lower().startswith("https:") else _BoundedHTTP
