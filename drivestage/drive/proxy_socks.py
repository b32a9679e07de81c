"""A SOCKS proxy (``socks5://``, ``socks4://`` in the proxy variables), reached through
PySocks (not a dependency; Colab ships it), and its refusals in words.

PySocks wraps every failure of its handshake in ``GeneralProxyError("Socket error: …")``,
an ``OSError``: read as "cannot reach the proxy", each was retried eight times and ended
"try again later", a rule that denies Drive, a login refused and a proxy that is not a SOCKS
one alike. Here they are told apart as an HTTP proxy's answers to ``CONNECT`` are
(:func:`drivestage.drive.proxies.tunnel`): a refusal another attempt meets again is said at
once, with what to do; a proxy that could not reach Drive for now is retried.
"""
from __future__ import annotations

import socket
import time
import urllib.parse
from typing import TYPE_CHECKING, Any, Optional

from drivestage.errors import RemoteError

if TYPE_CHECKING:
    from drivestage.drive.proxies import Proxy

#: SOCKS5 reply codes that are the proxy's answer to this request, not a passing state
#: (RFC 1928 6: 0x02 not allowed by its rules, 0x07 command, 0x08 address type).
_SOCKS5_REFUSED = frozenset({0x02, 0x07, 0x08})
#: The longest user or password (bytes) PySocks sends right (RFC 1929 allows 255).
_LOGIN_MOST = 127


def socket_for(proxy: "Proxy", family: int, kind: int, proto: int) -> socket.socket:
    """A PySocks socket that reaches its address through the SOCKS ``proxy``."""
    try:
        import socks  # type: ignore[import-untyped]
    except ImportError:
        raise RemoteError(
            f"{proxy.variable} names a SOCKS proxy, {proxy.address}, which drivestage reaches "
            "through PySocks: pip install PySocks, or name an HTTP proxy "
            "(http://host:port)") from None
    sock: socket.socket = _bounded(socks)(family, kind, proto)
    # (the variable's login is a URL's: an @ or : in it written as %40, %3A, as the refusal
    # below asks and proxies.tunnel decodes an HTTP proxy's; PySocks sent it as written)
    user, password = (None if v is None else urllib.parse.unquote(v)
                      for v in (proxy.user, proxy.password))
    for what, value in (("user", user), ("password", password)):
        size = len((value or "").encode())
        if size > _LOGIN_MOST:
            # (PySocks writes its length as chr(n).encode(): two bytes past 127, the login
            # malformed; the proxy refused it, or waited for bytes that never came)
            raise RemoteError(
                f"the {what} for the SOCKS proxy {proxy.shown} is {size} "
                f"bytes: PySocks, through which drivestage reaches a SOCKS proxy, sends at "
                f"most {_LOGIN_MOST}; use a shorter one, or the proxy's HTTP port "
                "(http://USER:PASSWORD@HOST:PORT) if it has one")
    sock.setproxy(proxy.kind, proxy.host, proxy.port, proxy.rdns,  # type: ignore[attr-defined]
                  user, password)
    return sock


_BOUNDED: list[type] = []


def _bounded(socks: Any) -> type:
    """PySocks' socket, its handshake's answers read within the socket timeout *in all*, as
    an HTTP proxy's answer to CONNECT is (:func:`drivestage.drive.proxies.tunnel`): PySocks
    reads them with the timeout per read, so a proxy that sent a byte now and then (a reply
    names up to 255 bytes of host) held each attempt as long as it liked."""
    if _BOUNDED:
        return _BOUNDED[0]

    class Bounded(socks.socksocket):  # type: ignore[misc]
        _deadline: Optional[float] = None

        def connect(self, dest_pair: Any, catch_errors: Any = None) -> None:
            timeout = self.gettimeout()
            if timeout:
                self._deadline = time.monotonic() + timeout
            try:
                super().connect(dest_pair, catch_errors)
            finally:
                self._deadline = None
            socket.socket.settimeout(self, timeout)   # (the next reads': per read again)

        def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
            # (PySocks reads its answers through makefile(), which reads here)
            if self._deadline is not None:
                left = self._deadline - time.monotonic()
                if left <= 0:
                    raise socket.timeout("no whole answer in time")
                socket.socket.settimeout(self, left)
            return int(super().recv_into(buffer, nbytes, flags))

    _BOUNDED.append(Bounded)
    return Bounded


def refusal(proxy: "Proxy", exc: OSError, host: str, port: int) -> OSError:
    """The error for a SOCKS connect through ``proxy`` to ``host:port`` that failed with
    PySocks' ``exc``: a :class:`RemoteError` (said at once) where the proxy refused or is not
    a SOCKS proxy, a :class:`~drivestage.drive.proxies.ProxyDownError` (retried) where it
    could not reach Drive for now or the connection to it was lost."""
    import socks
    from drivestage.drive.proxies import ProxyDownError, login_refused, unreachable

    cause: BaseException = exc
    while isinstance(cause, socks.ProxyError) and cause.socket_err is not None:
        if isinstance(cause, socks.ProxyConnectionError):   # (to the proxy itself)
            inner = cause.socket_err
            if isinstance(inner, socket.timeout):
                return ProxyDownError(f"the proxy {proxy.shown} did not take the connection")
            return unreachable(proxy, inner) if isinstance(inner, OSError) else \
                ProxyDownError(f"cannot reach the proxy {proxy.shown} ({inner})")
        cause = cause.socket_err
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    said = str(cause)[:120]
    if isinstance(cause, socket.timeout):
        return ProxyDownError(f"the proxy {proxy.shown} did not answer the request for a "
                              f"connection to {target} in time")
    if isinstance(cause, socks.SOCKS5AuthError):
        return login_refused(proxy, said, host)
    code = _code(said)
    if isinstance(cause, socks.SOCKS4Error) or \
            (isinstance(cause, socks.SOCKS5Error) and code in _SOCKS5_REFUSED):
        return RemoteError(
            f"the proxy {proxy.shown} refused a connection to {target} ({said}): ask its "
            f"admin to let {host} through, or set NO_PROXY={host} if it is reached without "
            "the proxy")
    if isinstance(cause, socks.SOCKS5Error):
        return ProxyDownError(f"the proxy {proxy.shown} could not reach {target} ({said})")
    if isinstance(cause, socks.GeneralProxyError) and "invalid data" in said:
        other = "socks4" if proxy.kind == 2 else "socks5"
        return RemoteError(
            f"the proxy {proxy.shown} does not answer as a {proxy.address.split(':')[0]} "
            f"proxy ({said}): check {proxy.variable} (an HTTP proxy is http://HOST:PORT, "
            f"the other SOCKS is {other}://HOST:PORT)")
    return ProxyDownError(f"the proxy {proxy.shown} closed the connection before it gave "
                          f"one to {target} ({said})")


def _code(said: str) -> int:
    """The reply code PySocks puts first in a SOCKS error's words (``0x02: …``); -1 if none."""
    try:
        return int(said.split(":", 1)[0], 16)
    except ValueError:
        return -1
