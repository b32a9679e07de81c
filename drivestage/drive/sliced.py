"""httplib2's connections a Ctrl-C can cut: their answers read, their bodies sent and their
making waited for in short pieces, in the main thread and in a thread ``pool.check()``
stops (:func:`_in_pieces`), with ``interrupts.recv_into``, ``interrupts.sendall`` and
``interrupts.beside``.

A connection is made on a private copy of it, in a thread beside the caller, and handed to
the connection (its ``sock``) by the caller, once made: the copy's socket never reaches the
connection when the caller is gone (see :func:`_connect`).
"""
from __future__ import annotations

import copy
import http.client
import io
import socket
import ssl
import threading
from typing import Any, Optional

import httplib2

from drivestage import interrupts, pool, stream_lines
from drivestage.lost_interrupts import ClosedWhenDropped
from drivestage.drive import lookups, proxies, proxy_socks, proxy_tls
from drivestage.errors import DriveStageError


def _in_pieces() -> bool:
    """Whether this thread waits for a socket in pieces (see :class:`_SlicedReads`)."""
    return pool.watched() or threading.current_thread() is threading.main_thread()


class _SlicedReads(io.RawIOBase):
    """An answer's socket reads, in the main thread waited for in short pieces
    (:func:`drivestage.interrupts.recv_into`): Python runs a Ctrl-C's handler in the main
    thread only between two bytecodes, and one the kernel gave another thread (a pull's
    streams, a notebook's mirror) waited for Drive's answer to a main-thread request, up to
    the HTTP timeout. A thread a Ctrl-C stops (a push's upload threads, a mirror's push:
    :func:`drivestage.pool.check`) looks for its stop between the pieces: the interrupted
    push waited for an answer Drive held, through every further Ctrl-C, before it ended.
    The other threads read as the socket's own reader does."""

    def __init__(self, raw: Any, sock: socket.socket):
        super().__init__()
        self._raw, self._sock = raw, sock
        self._timeout = sock.gettimeout()
        self._timed_out = False

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return int(self._raw.fileno())

    def readinto(self, buf: Any) -> Optional[int]:
        if self._timeout == 0 or not _in_pieces():
            return self._raw.readinto(buf)  # type: ignore[no-any-return]
        if self._timed_out:   # (as the socket's own reader says it)
            raise OSError("cannot read from timed out object")
        try:
            return interrupts.recv_into(self._sock, buf, self._timeout, pool.check)
        except socket.timeout:
            self._timed_out = True
            raise

    def close(self) -> None:
        if not self.closed:
            self._raw.close()   # (the socket is closed once its last reader is)
        super().close()


class SlicedResponse(ClosedWhenDropped, http.client.HTTPResponse):
    """``http.client``'s answer, read through :class:`_SlicedReads` in a thread that waits in
    pieces; elsewhere (a download's streams) through the socket's own reader, with no layer
    of Python between (a Python call a read: a stream reads a TLS record at a time). An
    answer is read by the thread that asked for it, within the call that asked (a request,
    a ``Transport.stream`` block), and whether that thread waits in pieces does not change
    within the call (the main thread; a thread of ``pool.each``; ``pool.stoppable``'s block).
    Dropped unclosed (as the next request on its connection begins), it is closed where a
    Ctrl-C raised in its ``close()`` is not lost (:class:`ClosedWhenDropped`: sigloss45)."""

    def __init__(self, sock: Any, *args: Any, **kwargs: Any):
        # (the request's end delivered first: see interrupts.delivered; the answer's
        # bounds count from there)
        came: list[bytes] = []
        interrupts.delivered(sock, sock.gettimeout(), pool.check, lambda: _answered(sock, came))
        super().__init__(sock, *args, **kwargs)
        # The socket it reads: a download's stop shuts it down where the connection let go
        # of it (an answer with ``Connection: close``: drivestage.stream_lines).
        self.sock = sock
        if _in_pieces() or came:
            # (makefile's reader, not read yet, handed over: left to the collector, it would
            # close the socket's reader under the new one)
            raw = self.fp.detach()
            raw = _SlicedReads(raw, sock) if _in_pieces() else raw
            self.fp = io.BufferedReader(_Read(b"".join(came), raw) if came else raw)

    def _close_conn(self) -> None:
        # Its socket, where it holds it alone (``Connection: close``), is closed here, as
        # its body ends: never while a download's stop shuts it down (the descriptor could
        # be another socket's by the time the shutdown runs: drivestage.stream_lines).
        close = http.client.HTTPResponse._close_conn  # type: ignore[attr-defined]
        stream_lines.close(self, close)


def _answered(sock: Any, came: list[bytes]) -> bool:
    """Whether ``sock``, readable, holds an answer (what of it was read is added to ``came``).
    Over TLS 1.3 the server sends its session tickets once the handshake is done: unread
    until the answer was, they made the socket readable from the start, and the wait for a
    slow upload's body to be acknowledged ended at once (its answer then timed out while
    the body moved: attacknet36). A TLS socket is read without waiting: the tickets alone
    give no byte (it goes on waiting), an answer's first bytes are kept for its reader."""
    if not isinstance(sock, ssl.SSLSocket):
        return True
    timeout = sock.gettimeout()
    try:
        sock.settimeout(0)   # (inside the try: a Ctrl-C here leaves its timeout as it was)
        came.append(sock.recv(1 << 16))   # (b"": the server's end, an answer too)
    except ssl.SSLWantReadError:
        return False
    except OSError:
        return True   # (the answer's reader meets it again, or the end)
    finally:
        sock.settimeout(timeout)
    return True


class _Read(io.RawIOBase):
    """A reader of ``raw`` whose first bytes were read already (``first``)."""

    def __init__(self, first: bytes, raw: Any):
        super().__init__()
        self._first, self._raw = first, raw

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return int(self._raw.fileno())

    def readinto(self, buf: Any) -> Optional[int]:
        if not self._first:
            return self._raw.readinto(buf)  # type: ignore[no-any-return]
        n = min(len(buf), len(self._first))
        buf[:n], self._first = self._first[:n], self._first[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()



class _SlicedSends:
    """The connection's socket while it sends, whose ``sendall`` waits in pieces
    (:func:`drivestage.interrupts.sendall`; see :class:`_SlicedReads`), its timeout the
    time without a byte sent."""

    def __init__(self, sock: socket.socket):
        self._sock = sock

    def sendall(self, data: Any) -> None:
        interrupts.sendall(self._sock, data, self._sock.gettimeout(), pool.check)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _send(self: Any, data: Any) -> None:
    """``http.client``'s send, on :class:`_SlicedSends`: an upload's body Drive took slowly
    held a Ctrl-C given to another thread until sent, and (in every thread) timed out per
    1 MiB block however many bytes moved (see :func:`drivestage.interrupts.sendall`)."""
    if self.sock is None:
        self.connect()   # (as http.client's own send does)
    sock = self.sock
    self.sock = _SlicedSends(sock)
    try:
        http.client.HTTPConnection.send(self, data)
    finally:
        self.sock = sock


def _opened(conn: Any, addresses: list[lookups.Address], tls: bool,
            proxy: Optional[proxies.Proxy] = None) -> socket.socket:
    """A socket connected to the first of ``addresses`` that takes it (TLS: its handshake
    done, for ``conn.host``), as httplib2's ``connect`` makes it, on addresses already looked
    up: ``conn.host``'s, or through ``proxy`` its own (the tunnel asked for there)."""
    error: Optional[OSError] = None
    for family, kind, proto, _, address in addresses:
        # A download's stream: its stop shuts the socket down while it is made (a handshake
        # Drive's network held kept the stream up to the HTTP timeout: attackcut46); closed
        # only once it is no longer the stream lines' (a cut never meets its descriptor),
        # through a proxy too (httplib2's own proxy connect closed it outside them).
        raw = socket.socket(family, kind, proto) if proxy is None or proxy.kind == 3 \
            else proxy_socks.socket_for(proxy, family, kind, proto)
        making = stream_lines.Making(raw)
        try:
            with stream_lines.on(making):
                sock = _made(conn, making, address, tls, proxy)
            proxies.made(proxy)
            return sock
        except (ssl.SSLError, ssl.CertificateError, socket.timeout):
            making.sock.close()
            raise   # (as httplib2: the next address is not tried)
        except OSError as exc:
            making.sock.close()
            if isinstance(exc, (proxies.ProxyDownError, DriveStageError)):
                raise
            error = exc
        except BaseException:
            making.sock.close()
            raise
    if proxy is not None and error is not None:
        raise proxies.unreachable(proxy, error)
    raise error or OSError(f"no address of {conn.host} to connect to")


def _made(conn: Any, making: stream_lines.Making, address: Any, tls: bool,
          proxy: Optional[proxies.Proxy]) -> socket.socket:
    """``making``'s socket connected to ``address`` (through ``proxy``: to the proxy, a
    tunnel asked for to ``conn.host``) (TLS: its handshake done)."""
    sock: socket.socket = making.sock
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if httplib2.has_timeout(conn.timeout):
        sock.settimeout(conn.timeout)
    if proxy is not None and proxy.kind != 3:
        try:
            sock.connect((conn.host, conn.port))   # (PySocks reaches its proxy itself)
        except OSError as exc:   # (PySocks' own errors: all "Socket error: …")
            raise proxy_socks.refusal(proxy, exc, conn.host, conn.port) from None
    elif proxy is not None:
        try:
            sock.connect(address)
        except socket.timeout:   # (named: "timed out" said nothing of the proxy)
            raise proxies.ProxyDownError(
                f"the proxy {proxy.shown} did not take the connection within "
                f"{conn.timeout:g} s") from None
    else:
        sock.connect(address)
    if proxy is not None and proxy.kind == 3:
        timeout = conn.timeout if httplib2.has_timeout(conn.timeout) else None
        if proxy.tls:   # (https://: the CONNECT, its login, in TLS to the proxy)
            sock = proxy_tls.through(conn, making, sock, proxy, timeout)
        else:
            proxies.tunnel(sock, proxy, conn.host, conn.port, timeout)
    if not tls:
        return sock
    # The handshake after the TLS socket is the one a stop shuts down (the descriptor
    # moves to it as it is made).
    made: ssl.SSLSocket = conn._context.wrap_socket(sock, server_hostname=conn.host,
                                                    do_handshake_on_connect=False)
    making.wrapped(made)
    try:
        made.do_handshake()
    except ssl.SSLError as exc:
        if proxy is None:
            raise
        raise proxies.not_tls(proxy, conn.host, conn.port, exc) from None
    except (ConnectionResetError, BrokenPipeError):
        if proxy is None:   # (a proxy's close after its 200 that met our first TLS bytes)
            raise
        raise proxies.closed_tunnel(proxy, conn.host, conn.port) from None
    except socket.timeout:
        if proxy is None:
            raise
        raise proxies.ProxyDownError(   # (named: "timed out" said nothing of the proxy)
            f"the proxy {proxy.shown} gave a tunnel to {conn.host}:{conn.port}, but no TLS "
            f"answer came through it within {conn.timeout:g} s") from None
    return made


def _closed(made: Any) -> None:
    """Close what an abandoned connect made (its copy's socket), and only that."""
    sock = made.sock
    made.sock = None
    if sock is not None:
        sock.close()


def _connect(conn: Any, tls: bool) -> None:
    """``conn``'s socket made (name lookup, connect, TLS handshake), beside this
    thread where it waits in pieces (:func:`drivestage.interrupts.beside`): a connection
    Drive's network did not take held a Ctrl-C given to another thread for the HTTP
    timeout. The name is looked up first, in every thread, at most ``conn.timeout`` seconds,
    one lookup of a host at a time (:func:`drivestage.drive.lookups.addresses`); through a
    proxy (:mod:`drivestage.drive.proxies`) the proxy's name is, and the proxy looks up
    Drive's.

    The socket is made on a copy of ``conn`` and set on ``conn`` here, once made: httplib2's
    ``connect`` sets ``self.sock`` before it connects, so a request after a Ctrl-C that
    left the connection kept (an ``Http`` kept, as httplib2 means) went out on the socket
    still being connected (``BrokenPipeError``), and the abandoned connect, once done,
    closed whatever socket the connection then had."""
    proxy = proxies.route(conn, "https" if tls else "http")
    timeout = conn.timeout if httplib2.has_timeout(conn.timeout) else None
    host, port = (conn.host, conn.port) if proxy is None else (proxy.host, proxy.port)
    try:
        found = lookups.addresses(host, port, timeout, pool.check)
    except socket.gaierror as exc:
        if proxy is None:
            raise
        raise proxies.unreachable(proxy, exc) from None
    if not _in_pieces():
        conn.sock = _opened(conn, found, tls, proxy)
        return
    made = copy.copy(conn)
    made.sock = None
    made._HTTPConnection__response = None   # (the copy's close must not close conn's)

    def make() -> socket.socket:
        sock: socket.socket = _opened(made, found, tls, proxy)
        made.sock = sock
        return sock
    conn.sock = interrupts.beside(make, "drivestage-connect", lambda: _closed(made),
                                  pool.check)


def _close(self: Any) -> None:
    """``http.client``'s close, never while a download's stop shuts the socket down (the
    descriptor could be another file's by then: :mod:`drivestage.stream_lines`)."""
    stream_lines.close(self, http.client.HTTPConnection.close)


def _own_proxy(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with httplib2's reading of the proxy variables replaced by
    :func:`drivestage.drive.proxies.from_environment` (which says why a value is unusable)."""
    if kwargs.get("proxy_info") is httplib2.proxy_info_from_environment:
        kwargs = dict(kwargs, proxy_info=proxies.from_environment)
    return kwargs


class SlicedHTTP(httplib2.HTTPConnectionWithTimeout):  # type: ignore[misc]
    """httplib2's connection, made and sent on in pieces (see :func:`_in_pieces`)."""
    send = _send
    close = _close

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **_own_proxy(kwargs))

    def connect(self) -> None:
        _connect(self, False)
        stream_lines.opened(self)   # (a stop that came while it connected)


class SlicedHTTPS(httplib2.HTTPSConnectionWithTimeout):  # type: ignore[misc]
    """httplib2's TLS connection, made and sent on in pieces (see :func:`_in_pieces`)."""
    send = _send
    close = _close

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **_own_proxy(kwargs))

    def connect(self) -> None:
        _connect(self, True)
        stream_lines.opened(self)

