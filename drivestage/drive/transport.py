"""The connection to Drive: one authorized HTTP connection per thread, and the retry loop.

httplib2 is not thread-safe, so every thread gets its own connection (ours for raw byte
requests, and PyDrive2's own for metadata). A connection reset in the middle of a response
poisons that keep-alive connection for one more request, so :meth:`Transport.retrying` drops
the thread's connections before the next attempt: "drop after a lost connection" exists here
and nowhere else. Every Drive request of drivestage runs inside :meth:`Transport.retrying` or
:meth:`Transport.call`.
"""
from __future__ import annotations

import contextlib
import http.client
import re
import socket
import os
import threading
import time
import weakref
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping, Optional, TypeVar
from urllib.parse import urljoin, urlsplit

import httplib2

from drivestage import stream_lines
from drivestage.drive import answers, retry
from drivestage.drive.auth import AuthorizedHttp, DriveCredentials
from drivestage.drive.connections import DEFAULT_HTTP_TIMEOUT, build_http
from drivestage.drive.resources import ResourceKeys
from drivestage.drive.sliced import SlicedHTTP, SlicedHTTPS, SlicedResponse

T = TypeVar("T")


class Transport:
    """Per-thread connections and the retry loop for one Drive account.

    ``gauth`` is PyDrive2's ``GoogleAuth`` with ``credentials`` and ``service`` (the
    googleapiclient Drive v2 service) set; ``attempts`` overrides the retry attempts of every
    call (None: ``$DRIVESTAGE_RETRY_ATTEMPTS`` or 8); ``acknowledge_abuse`` asks Drive for
    files it flagged as malware or spam anyway (``pull --acknowledge-abuse``).

    Every request (PyDrive2's and ours) goes out on the credentials' connections, which add
    the ``X-Goog-Drive-Resource-Keys`` the request needs from :attr:`resource_keys`."""

    def __init__(self, gauth: Any, *, timeout: Optional[float] = None,
                 attempts: Optional[int] = None, acknowledge_abuse: bool = False):
        self.gauth = gauth
        self.service: Any = gauth.service
        self.timeout = timeout
        self.attempts = attempts
        self.acknowledge_abuse = acknowledge_abuse
        self._local = threading.local()
        self._calls = 0
        self._calls_lock = threading.Lock()
        #: Seconds a signed address Drive redirected a download to is reused for the next
        #: ranged reads of that file (see :func:`_stream`).
        self.signed_reuse_s = SIGNED_REUSE_S
        self._signed: dict[str, tuple[str, float]] = {}
        # Every request on these credentials (PyDrive2's metadata calls, our raw and streamed
        # ones) is counted: Drive charges quota units per request.
        gauth.credentials.on_request = self._count
        _TRANSPORTS.add(self)

    def _forked(self) -> None:
        """In a forked child: its parent's connections forgotten (not closed: the parent's
        sockets; its copies close as they are collected), and its locks free (a thread of
        the parent that held one is not in the child)."""
        self._local = threading.local()
        self.gauth.thread_local = threading.local()
        self._calls_lock = threading.Lock()

    def _count(self) -> None:
        with self._calls_lock:
            self._calls += 1

    @property
    def calls(self) -> int:
        """API requests sent so far (every attempt, a refreshed 401 included)."""
        with self._calls_lock:
            return self._calls

    @property
    def resource_keys(self) -> ResourceKeys:
        """The resource keys known in this run (sent where a request needs them)."""
        return self.credentials.resource_keys

    @property
    def credentials(self) -> DriveCredentials:
        """The credentials every request carries."""
        creds: DriveCredentials = self.gauth.credentials
        return creds

    def http(self) -> AuthorizedHttp:
        """This thread's authorized connection for raw requests (308 is not a redirect)."""
        http: Optional[AuthorizedHttp] = getattr(self._local, "http", None)
        if http is None:
            http = self._local.http = self.credentials.authorize(build_http(self.timeout))
        return http

    def files(self) -> Any:
        """``service.files()`` (built once per thread: :func:`~drivestage.drive.services.
        build_service`)."""
        return self.service.files()

    def drop(self) -> None:
        """Forget this thread's connections (ours and PyDrive2's) after a lost connection or
        a Ctrl-C, and close them: a request a Ctrl-C cut in its body kept its socket open,
        the server waiting for the rest, until the collector happened to close it."""
        for held in (getattr(self._local, "http", None),
                     getattr(self.gauth.thread_local, "http", None)):
            inner = getattr(held, "http", None)
            if isinstance(inner, httplib2.Http):
                inner.close()
        self._local.http = None
        self.gauth.thread_local.http = None
        for conn in (getattr(self._local, "streams", None) or {}).values():
            conn.close()
        self._local.streams = {}

    def signed_link(self, uri: str) -> Optional[str]:
        """The signed address a download of ``uri`` was last redirected to, while it may be
        reused (None: ask the API address)."""
        with self._calls_lock:
            held = self._signed.get(uri)
            if held is not None and time.monotonic() - held[1] < self.signed_reuse_s:
                return held[0]
            self._signed.pop(uri, None)
            return None

    def forget_signed(self, uri: str) -> None:
        """Ask the API address of ``uri`` again next time: the bytes the signed address
        served did not match Drive's checksum (a download that starts again from zero
        through it got the same wrong bytes, and failed for good: attackds29)."""
        self._keep_signed(uri, None)

    def _keep_signed(self, uri: str, link: Optional[str]) -> None:
        """Remember (or, ``link`` None, forget) the signed address serving ``uri``."""
        with self._calls_lock:
            self._signed.pop(uri, None)
            if link is None:
                return
            while len(self._signed) >= _SIGNED_KEPT:
                del self._signed[next(iter(self._signed))]
            self._signed[uri] = (link, time.monotonic())

    def retrying(self, what: str, *, uploading: bool = False,
                 write: Optional[answers.Write] = None) -> retry.DriveRetrying:
        """The retry policy for one operation; a lost connection is dropped before the next
        attempt, and after a Ctrl-C. ``what`` starts the messages; the rest goes to the
        error typing (:func:`drivestage.drive.answers.typed_error`)."""
        def on_retry(exc: BaseException, info: retry.Retryable) -> None:
            if info.connection_lost:
                self.drop()

        return retry.retrying(what, self.attempts, on_retry=on_retry, on_interrupt=self.drop,
                              uploading=uploading, write=write)

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` under :meth:`retrying`."""
        return self.retrying(what)(fn, *args, **kwargs)

    @contextmanager
    def stream(self, uri: str, headers: Optional[Mapping[str, str]] = None
               ) -> Iterator["Streamed"]:
        """One GET on this thread's streaming connection whose body the caller reads as it
        arrives (httplib2 reads every body whole into memory). An error answer is raised as
        :meth:`request` raises it (its body read up to 64 KiB); a body left unread closes
        the connection. The socket timeout is the connection's (``DRIVESTAGE_HTTP_TIMEOUT``).
        A redirect is followed without the token (see :func:`_stream`).
        """
        yield from _stream(self, uri, headers or {})

    def request(self, uri: str, method: str = "GET", *, body: Any = None,
                headers: Optional[Mapping[str, str]] = None) -> tuple[Any, bytes]:
        """One raw request on this thread's connection: ``(response, body)``. An error answer
        (not 2xx or 308) is raised as googleapiclient's ``HttpError``, so that it is read
        like any other (:func:`drivestage.drive.answers.failure_of`)."""
        resp, content = self.http().request(uri, method, body=body, headers=dict(headers or {}))
        answers.raise_for_status(resp.status, content, resp, uri=uri)
        return resp, content


#: Every transport of this process, for :func:`_forget_in_child`.
_TRANSPORTS: "weakref.WeakSet[Transport]" = weakref.WeakSet()


def _forget_in_child() -> None:
    """A forked child (a pool's fork worker, a fork server's child) sends on connections of
    its own: with the parent's sockets, both sent on them and one read the other's answer
    (``MalformedAnswerError``; the other waited for its answer until the timeout:
    attacksvc39)."""
    for transport in list(_TRANSPORTS):
        transport._forked()


os.register_at_fork(after_in_child=_forget_in_child)


class Streamed:
    """An answer whose body the caller reads as it arrives (:meth:`Transport.stream`)."""

    def __init__(self, resp: http.client.HTTPResponse):
        self._resp = resp
        self.status = resp.status
        self.headers = {k.lower(): v for k, v in resp.getheaders()}
        # Repeated fields are one list (RFC 9110, 5.3): a proxy's ``gzip`` before Drive's
        # ``identity`` is not the last one alone (attackds32).
        codings = resp.msg.get_all("content-encoding")
        if codings:
            self.headers["content-encoding"] = ", ".join(codings)

    def read1(self, n: int) -> bytes:
        """At most ``n`` bytes with at most one read from the socket (so that a caller can
        watch the time between reads); b"" at the end of the body."""
        return self._resp.read1(n)

    def peek(self, n: int) -> bytes:
        """Up to ``n`` of the next bytes (what one socket read brought), left to be read."""
        return self._resp.peek(n)[:n]

    @property
    def left(self) -> Optional[int]:
        """Bytes of the body not read yet when it has a length (None when it has none)."""
        return self._resp.length

    @property
    def finished(self) -> bool:
        """The whole body was read (the connection may serve the next request)."""
        return self._resp.isclosed()


#: Redirects a download follows at most (httplib2's limit too).
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: How long a signed download address is reused, in seconds. Drive does not document its
#: lifetime (googleapiclient's downloader reuses it for a whole download; the emulator's
#: live 10 minutes); a refusal there sooner sends the read back to the API address at once.
SIGNED_REUSE_S = 300.0
#: Signed addresses remembered at most (one per file being read).
_SIGNED_KEPT = 64


class _StaleLink(Exception):
    """A reused signed address refused the read (it expired): ask the API address again."""


def _stream(transport: Transport, uri: str, headers: Mapping[str, str]) -> Iterator[Streamed]:
    """The answer to a GET of ``uri``, redirects followed: Google's front end may answer a
    media download with a redirect (302/307) to a signed address on
    ``*.googleusercontent.com`` that needs no token, as googleapiclient's own downloader
    expects. A redirect is followed with neither the token nor a resource key (httplib2
    drops ``Authorization`` likewise); a refusal there (the signed address expired) is
    asked of Drive again, as a failed attempt. The signed address is reused for the next
    ranged reads of the same file for :attr:`Transport.signed_reuse_s` seconds (each read
    paid an API request and its delay, 0.1-0.3 s on Drive, and a quota unit); a refusal
    there goes back to the API address at once, not as a failed attempt."""
    with contextlib.ExitStack() as held:   # (the connections a download's stop cuts)
        opened = None
        link = transport.signed_link(uri)
        if link is not None:
            try:
                opened = _follow(transport, link, headers, signed_in=False, reused=True,
                                 held=held)
            except _StaleLink:
                transport._keep_signed(uri, None)
        if opened is None:
            opened = _follow(transport, uri, headers, signed_in=True, reused=False, held=held)
            if opened[3] != uri:
                transport._keep_signed(uri, opened[3])
        resp, key, conn, _ = opened
        try:
            yield Streamed(resp)
        finally:
            _settle(transport, key, conn, resp)


def _follow(transport: Transport, uri: str, headers: Mapping[str, str], *, signed_in: bool,
            reused: bool, held: contextlib.ExitStack
            ) -> tuple[http.client.HTTPResponse, str, http.client.HTTPConnection, str]:
    """The 2xx answer to a GET of ``uri`` with redirects followed: ``(answer, connection
    key, connection, address that answered)``; the caller reads the body and then settles
    the connection. Only the first request is ``signed_in`` (a redirect's address gets no
    secret); a ``reused`` signed address that refuses raises :class:`_StaleLink`. Each
    connection is the thread's stream lines' until ``held`` ends (see
    :mod:`drivestage.stream_lines`)."""
    for hop in range(MAX_REDIRECTS + 1):
        key, conn = _stream_connection(transport, uri)
        held.enter_context(stream_lines.on(conn))
        resp: Optional[http.client.HTTPResponse] = None
        try:
            try:
                resp = _answer(transport, conn, uri, headers, signed_in=signed_in and not hop)
            except socket.gaierror as exc:
                if signed_in and not hop:
                    raise
                # Drive's own host resolved: a network that lets only it through (a
                # firewall's allow-list) cannot reach the host Drive sent the bytes to.
                raise httplib2.ServerNotFoundError(
                    f"{conn.host}, where the download was redirected: {exc.strerror}") from exc
            if 200 <= resp.status < 300:
                if conn.sock is None:   # (closed by http.client: the answer ends with it)
                    held.enter_context(stream_lines.on(resp))
                return resp, key, conn, uri     # the caller reads the body, then settles
            if resp.status in _REDIRECTS:
                _error_body(resp, conn.timeout)  # read out: the connection serves the next
                uri = _redirect_target(uri, resp.status, resp.getheader("location") or "")
            else:
                body = transport.credentials.redact(_error_body(resp, conn.timeout))
                if (hop or not signed_in) and resp.status in (401, 403, 404, 410):
                    if reused:
                        raise _StaleLink()
                    raise retry.TransientError(
                        f"the address Drive redirected the download to answered HTTP "
                        f"{resp.status}; asking Drive again")
                answers.raise_for_status(resp.status, body, dict(resp.getheaders()), uri=uri)
        except BaseException:
            _settle(transport, key, conn, resp)
            raise
        _settle(transport, key, conn, resp)
    # Typed with the operation's name by the retry loop (retry.translate), not retried.
    raise httplib2.RedirectLimit(f"more than {MAX_REDIRECTS} redirects in a row", None, b"")


def _settle(transport: Transport, key: str, conn: http.client.HTTPConnection,
            resp: Optional[http.client.HTTPResponse]) -> None:
    """Keep ``conn`` for the next request when its answer was read to the end; else (a body
    not read to its end, or a failure before an answer) close it: it cannot carry another."""
    _read_out(resp)
    if resp is None or not resp.isclosed():
        conn.close()
        transport._local.streams.pop(key, None)


def _redirect_target(uri: str, status: int, location: str) -> str:
    """The web address a redirect of ``uri`` leads to. Anything else (no ``Location``, another
    scheme - ``file:``, ``ftp:`` -, no host, a user name, a port that is none, spaces or
    characters an HTTP request line cannot carry) is not followed: http.client sent an HTTP
    GET to an ``ftp://`` host, retried a space eight times as a lost connection, and a
    bracket or a non-ASCII path ended the pull in a traceback."""
    if not location:
        raise httplib2.RedirectMissingLocation(f"HTTP {status} without a Location", None, b"")
    try:
        target = urljoin(uri, location)
        parts = urlsplit(target)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname) \
            and parts.username is None and (parts.port is None or parts.port > 0) \
            and target.isascii() and target.isprintable() and " " not in target
    except ValueError:  # an unclosed "[", a port out of range or not a number
        usable = False
    if not usable:
        raise httplib2.RedirectMissingLocation(
            f"HTTP {status} to {_shown(location)}, not a web address", None, b"")
    if parts.scheme == "http" and urlsplit(uri).scheme == "https":
        raise retry.InsecureRedirect(f"HTTP {status} from {_origin(uri)} to {_origin(target)}")
    return target


def _shown(location: str) -> str:
    """``location`` as a message may show it: no query or fragment (a signed link's grant)
    and no ``user:password@`` (attackds29), at most 200 characters, escaped."""
    head = re.split(r"[?#]", location, maxsplit=1)[0]
    head = re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*:/*)[^/@]*@", r"\1***@", head)
    out = ascii(head[:200]) + ("..." if len(head) > 200 else "")
    return out + (" (its query left out)" if "?" in location.split("#", 1)[0] else "")


def _origin(uri: str) -> str:
    """``scheme://host[:port]`` of ``uri`` (a message names no path: a signed link's query
    grants the bytes)."""
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


#: Origins a thread keeps a connection to: Drive's API and the few hosts it redirected the
#: latest downloads to. Drive's signed download hosts vary from file to file, and a mirror's
#: thread kept a socket open to every one it was ever sent to.
KEPT_ORIGINS = 4


def _stream_connection(transport: Transport, uri: str
                       ) -> tuple[str, http.client.HTTPConnection]:
    """This thread's streaming connection to the origin of ``uri`` (and its key)."""
    parts = urlsplit(uri)
    key = f"{parts.scheme}:{parts.netloc}"
    conns: dict[str, http.client.HTTPConnection] = getattr(transport._local, "streams", None) \
        or {}
    transport._local.streams = conns
    conn = conns.pop(key, None)   # put back last: the dict runs from least recently used
    if conn is None:
        conn = _connection(transport.http().http, parts.scheme, parts.netloc)
        while len(conns) >= KEPT_ORIGINS:
            conns.pop(next(iter(conns))).close()
    conns[key] = conn
    return key, conn


def _answer(transport: Transport, conn: http.client.HTTPConnection, uri: str,
            headers: Mapping[str, str], *, signed_in: bool) -> http.client.HTTPResponse:
    """One GET of ``uri`` on ``conn``: with the token and the resource keys it needs when
    ``signed_in`` (refreshing the token once on a 401), else with neither (a redirect's
    address: whatever it is, it gets no secret)."""
    parts = urlsplit(uri)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    creds = transport.credentials
    refreshed = False
    while True:
        plain = {**dict(headers), "user-agent": "drivestage"}
        if signed_in:
            creds.ensure_valid()
        sent = creds.headers_for(uri, plain) if signed_in else plain
        used = creds.access_token
        if signed_in:
            transport._count()  # an API request (a redirect's address charges no quota)
        resp = _send(conn, path, sent)
        if resp.status != 401 or not signed_in or not creds.can_refresh or refreshed:
            return resp
        _error_body(resp, conn.timeout)  # once more after refreshing the token
        if not resp.isclosed():
            conn.close()  # http.client opens it again for the next request
        creds.refresh(stale_token=used)
        refreshed = True


def _send(conn: http.client.HTTPConnection, path: str, headers: Mapping[str, str]
          ) -> http.client.HTTPResponse:
    """GET ``path`` on ``conn``; on a kept-alive connection the server closed meanwhile (an
    idle one: a mirror's next period), once more on a new connection at once, as httplib2
    does, instead of a failed attempt and its backoff."""
    reused = conn.sock is not None
    try:
        conn.request("GET", path, headers=dict(headers))
        return conn.getresponse()
    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
            ConnectionAbortedError):
        if not reused:
            raise
        conn.close()
    conn.request("GET", path, headers=dict(headers))
    return conn.getresponse()


#: How much of an error answer's body is read (a hostile server may send an endless one).
_ERROR_BODY = 64 * 1024


def _read_out(resp: Optional[http.client.HTTPResponse]) -> None:
    """Mark an answer whose body was read to its announced end as read, so that its
    connection serves the next request: http.client does so only on a read past the end,
    and a connection whose answer is not marked is closed (every ranged read paid a new
    connection, on Drive a TLS handshake)."""
    if resp is not None and resp.length == 0 and not resp.isclosed():
        resp.read()


def _error_body(resp: http.client.HTTPResponse, timeout: Optional[float]) -> bytes:
    """Up to :data:`_ERROR_BODY` bytes of an error answer's body, read within ``timeout``
    seconds in all (what came by then, when it is not done): the socket timeout alone holds
    only between two bytes, and a body trickling a byte a second held a 503 for 18 hours
    before its retry. A body not read to its end closes the connection (see :func:`_stream`).
    """
    deadline = time.monotonic() + (timeout or DEFAULT_HTTP_TIMEOUT)
    out = bytearray()
    while len(out) < _ERROR_BODY and time.monotonic() < deadline:
        data = resp.read1(_ERROR_BODY - len(out))
        if not data:
            break
        out += data
    _read_out(resp)
    return bytes(out)


def _connection(h: Any, scheme: str, authority: str) -> http.client.HTTPConnection:
    """A connection set up as httplib2 sets up its own (timeout, proxy, certificates), made
    and read in pieces in the main thread (a Ctrl-C given to another thread ends a wait for
    Drive: :class:`~drivestage.drive.sliced.SlicedResponse`, ``SlicedHTTP``)."""
    if scheme == "https":
        conn: http.client.HTTPConnection = SlicedHTTPS(
            authority, timeout=h.timeout, proxy_info=h.proxy_info, ca_certs=h.ca_certs,
            disable_ssl_certificate_validation=h.disable_ssl_certificate_validation,
            tls_maximum_version=h.tls_maximum_version,
            tls_minimum_version=h.tls_minimum_version)
    else:
        conn = SlicedHTTP(authority, timeout=h.timeout, proxy_info=h.proxy_info)
    conn.response_class = SlicedResponse
    return conn
