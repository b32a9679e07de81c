"""The hop to an ``https://`` proxy spoken in TLS (``HTTPS_PROXY=https://USER:PASSWORD@host``).

Who names a proxy ``https://`` means the hop to it encrypted: its login (``Proxy-Authorization``)
and the ``CONNECT`` never in clear on the network between. httplib2 and PySocks spoke to it
in clear all the same (as ``http://``), and so did drivestage until proxy48. Here the
connection to the proxy is TLS first (its certificate verified as Drive's is: the CA file of
``HTTPLIB2_CA_CERTS``, else certifi's bundle; its name the one in the variable), then the
``CONNECT`` goes in it, and Drive's own TLS goes inside that one (TLS in TLS).

Python's ``ssl`` cannot wrap a TLS socket in another, and what reads a connection here needs a
socket (the stream lines shut it down, ``interrupts`` waits on its descriptor, the answer's
reader reads it): so the connection gets one end of a socket pair, and a thread of its own
(:func:`_carry`) moves the bytes between the other end and the proxy's TLS socket, until
either side ends (then it closes both: the connection reads an end, or the proxy its close).
A connection's stop shuts its end down, which ends the thread too.
"""
from __future__ import annotations

import os
import select
import socket
import ssl
import threading
from typing import Any, Optional

import httplib2

from drivestage.drive import proxies
from drivestage.errors import RemoteError

#: The most bytes held on their way in either direction (then that side is not read).
_HELD = 256 * 1024
#: How long bytes of a connection already gone wait for the proxy to take them, where the
#: connection had no timeout of its own (no one reads what follows them).
_LAST_S = 60.0
#: The most bytes of one TLS write (a record's worth: written again alike after a want).
_WRITE = 16 * 1024

#: Contexts made, by CA file (as it was: its inode, size and time) and whether unchecked.
_contexts: dict[tuple[str, tuple[int, int, int], bool], ssl.SSLContext] = {}
_contexts_lock = threading.Lock()


def _unlocked_in_child() -> None:
    # A thread of the parent held it as the process forked: the child has no such thread.
    global _contexts_lock
    _contexts_lock = threading.Lock()


os.register_at_fork(after_in_child=_unlocked_in_child)


def _context(conn: Any) -> ssl.SSLContext:
    """The TLS context the proxy's certificate is verified by: the CAs ``conn``'s own TLS
    trusts (``HTTPLIB2_CA_CERTS``, else certifi's bundle), its name checked; none of
    ``conn``'s client certificate (that is for Drive, not the proxy)."""
    cafile = str(getattr(conn, "ca_certs", None) or httplib2.CA_CERTS)
    unchecked = bool(getattr(conn, "disable_ssl_certificate_validation", False))
    # (The file as it is now: httplib2 reads it at each connection, and the line for an
    # untrusted proxy says to add its CA there; kept by name alone, a notebook that did so
    # was refused again until it restarted: attackint48.)
    try:
        st = os.stat(cafile)
        version = (st.st_ino, st.st_size, st.st_mtime_ns)
    except OSError:   # (create_default_context says it)
        version = (0, 0, 0)
    key = (cafile, version, unchecked)
    with _contexts_lock:
        context = _contexts.get(key)
        if context is None:
            context = ssl.create_default_context(cafile=cafile)
            if unchecked:   # (as the connection's own: the same rules for both hops)
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            for old in [k for k in _contexts if k[0] == cafile and k[2] == unchecked]:
                del _contexts[old]   # (one per file: a bundle rewritten often holds no more)
            _contexts[key] = context
        return context


def through(conn: Any, making: Any, sock: socket.socket, proxy: proxies.Proxy,
            timeout: Optional[float]) -> socket.socket:
    """``sock`` (connected to the ``https://`` ``proxy``) in TLS, a tunnel to ``conn.host``
    asked for in it; returned: a plain socket that carries the tunnel's bytes (the end of a
    pair whose other end :func:`_carry` joins to the proxy's TLS), ``making``'s socket from
    each step on (a stop shuts the step's socket down)."""
    outer = _context(conn).wrap_socket(sock, server_hostname=proxy.host,
                                       do_handshake_on_connect=False)
    making.wrapped(outer)
    try:
        outer.do_handshake()
    except ssl.SSLCertVerificationError as exc:
        why = exc.verify_message or exc.reason or "not verified"
        raise RemoteError(
            f"the proxy {proxy.shown} showed a certificate this machine does not trust "
            f"({why}): put the CA certificate (PEM) that signed it in a file named by "
            "HTTPLIB2_CA_CERTS (with the CAs Drive's needs), or name the proxy "
            f"http://{_where(proxy)} in {proxy.variable} if it takes plain "
            "connections") from None
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError,
            BrokenPipeError) as exc:
        raise proxies.ProxyDownError(f"the proxy {proxy.shown} closed the connection during "
                                     f"its TLS handshake ({exc.__class__.__name__})") from None
    except ssl.SSLError as exc:
        raise RemoteError(
            f"the proxy {proxy.shown} does not speak TLS ({exc.reason or exc}): name it "
            f"http://{_where(proxy)} in {proxy.variable} if it takes plain connections, or "
            "ask its admin for its TLS address") from None
    except socket.timeout:
        raise proxies.ProxyDownError(f"the proxy {proxy.shown} did not finish its TLS "
                                     f"handshake within {timeout:g} s") from None
    try:
        past = proxies.tunnel(outer, proxy, conn.host, conn.port, timeout)
    except ssl.SSLError as exc:   # (a record of its answer that fails its MAC, an alert)
        # (Left as it was, an OSError of no kind the layers above know: "cannot stage …
        # pull into a folder this user can write", at the first try: attackint48.)
        target = f"[{conn.host}]:{conn.port}" if ":" in conn.host else f"{conn.host}:{conn.port}"
        raise proxies.ProxyDownError(
            f"the proxy {proxy.shown} broke its TLS while it answered the request for a "
            f"tunnel to {target} ({exc.reason or type(exc).__name__})") from None
    near, far = socket.socketpair()
    try:
        near.settimeout(timeout)
        outer.setblocking(False)
        far.setblocking(False)
        threading.Thread(target=_carry, args=(outer, far, past, timeout), daemon=True,
                         name="drivestage-proxy-tls").start()
    except BaseException:
        near.close()
        far.close()
        raise
    making.wrapped(near)   # (the thread closes the proxy's TLS once near's end is gone)
    return near


def _where(proxy: proxies.Proxy) -> str:
    """``host:port`` of ``proxy`` (an IPv6 host in brackets)."""
    return proxy.address.split("://", 1)[1]


def _carry(outer: ssl.SSLSocket, far: socket.socket, past: bytes,
           timeout: Optional[float] = None) -> None:
    """Move bytes between ``far`` (the pair's end the connection's is joined to) and
    ``outer`` (TLS to the proxy), both non-blocking, until the connection's end is gone (its
    close, a stop's shutdown) and what it sent reached the proxy, or the proxy's end is gone
    and what it sent reached the connection; then close both. ``past``: the tunnel's first
    bytes, read with the proxy's answer. One ``poll`` waits for both: a TLS read or write
    that wants the other direction waits for that. Once the connection's end is gone, what
    it sent waits at most ``timeout`` seconds (None: :data:`_LAST_S`) for the proxy to take
    it: a proxy that stopped reading (stalled mid-upload) kept this thread, its TLS socket
    and up to :data:`_HELD` bytes for good, one more at each retry (attackint48)."""
    to_far, to_outer = bytearray(past), bytearray()
    from_far = from_outer = True
    size = 0            # (a TLS write that wanted a wait: written again alike)
    wants_in = wants_out = False   # (a TLS write that wanted a read; a read, a write)
    poller = select.poll()
    try:
        while (from_far or to_outer) and (from_outer or to_far):
            # (a side is waited on only for what can move: a level the loop does not take
            # would wake it at once, for ever)
            taking = from_outer and len(to_far) < _HELD
            full = from_far and len(to_outer) >= _HELD
            for sock, mask in ((far, (select.POLLIN if from_far and not full else 0) |
                                (select.POLLOUT if to_far else 0)),
                               (outer, (select.POLLIN if taking or wants_in else 0) |
                                (select.POLLOUT if to_outer or wants_out else 0))):
                if mask or (sock is far and full):   # (its hang-up heard, unread: below)
                    poller.register(sock, mask)
                else:
                    try:
                        poller.unregister(sock)
                    except KeyError:
                        pass
            if taking and outer.pending() > 0:
                events = poller.poll(0)
            elif from_far:
                events = poller.poll(None)   # (the connection's own timeout bounds its wait)
            else:
                events = poller.poll(1000 * (timeout or _LAST_S))
                if not events:
                    return   # (nothing moved: the rest is for a connection that is gone)
            if full and any(fd == far.fileno() and flags & (select.POLLHUP | select.POLLERR)
                            for fd, flags in events):
                from_far = False   # (closed while the proxy took nothing: not read for it)
            if from_far and len(to_outer) < _HELD:
                try:
                    data = far.recv(65536)
                    from_far = bool(data)
                    to_outer += data
                except BlockingIOError:
                    pass
                except OSError:   # (the connection's end is gone)
                    from_far = False
            if to_far:
                try:
                    del to_far[:far.send(to_far)]
                except BlockingIOError:
                    pass
                except OSError:   # (the connection's end is closed: nothing reads on)
                    return
            wants_out = False
            while from_outer and len(to_far) < _HELD:
                try:
                    data = outer.recv(65536)
                except ssl.SSLWantReadError:
                    break
                except ssl.SSLWantWriteError:
                    wants_out = True
                    break
                except OSError:   # (a reset, a TLS alert: the proxy's end is gone)
                    data = b""
                from_outer = bool(data)
                to_far += data
            wants_in = False
            while to_outer:
                size = size or min(len(to_outer), _WRITE)
                try:
                    outer.send(to_outer[:size])
                except ssl.SSLWantReadError:
                    wants_in = True
                    break
                except ssl.SSLWantWriteError:
                    wants_out = True
                    break
                except OSError:   # (the proxy's end is gone: nothing more reaches it)
                    return
                del to_outer[:size]
                size = 0
    finally:
        far.close()
        outer.close()
