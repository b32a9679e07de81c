"""The HTTP(S) proxy a connection goes through, as the environment names it, and the tunnel
through it.

``HTTPS_PROXY`` / ``HTTP_PROXY`` (or their lower-case names; where they name none,
``ALL_PROXY``, as curl reads it) name the proxy for Drive's ``https`` (and an emulator's
``http``) addresses; ``NO_PROXY`` names the hosts reached without it (read as Python's
``urllib`` reads it: ``host``, ``.domain``, ``host:port``, ``*``, and addresses and networks
such as ``10.0.0.0/8``, ``[::1]:8080``; not set at all: this machine's loopback addresses).
An ``https://`` proxy is spoken to in TLS (:mod:`drivestage.drive.proxy_tls`). The variables
are read by :func:`from_environment`, in httplib2's place (``host:port`` is
``http://host:port``; a value it cannot use is one line). httplib2 reaches
a proxy only through PySocks (``socks``), which is not a dependency: without it, it left
every proxy unused and drivestage went direct, not a word said; with it, the tunnel's socket
closed outside drivestage's stream lines (a download's stop could cut another file's
descriptor: attackcut46), a 407 read "Socket error: 407", and a proxy that never answered
its CONNECT held the request for its whole socket timeout per read. An HTTP proxy is spoken
to here: the connection's socket reaches the proxy, asks it ``CONNECT host:port`` (the
answer read within the HTTP timeout, in all), and then carries TLS (or the emulator's plain
HTTP) to Drive as a direct one does. A SOCKS proxy (``socks5://``) still needs PySocks
(:mod:`drivestage.drive.proxy_socks`); without it the connection is refused, with the words.
"""
from __future__ import annotations

import base64
import ipaddress
import os
import socket
import ssl
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Optional

import httplib2

from drivestage.errors import RemoteError, UsageError

#: The most bytes of a proxy's answer to CONNECT that are read (its head and what follows).
_ANSWER_MAX = 64 * 1024
#: The statuses of a proxy that could not reach Drive for now: worth another attempt.
_TRANSIENT = frozenset({502, 503, 504})


#: The most characters of a proxy's reason phrase a message repeats.
_REASON_MAX = 80


class _NotAnAnswer(Exception):
    """What a proxy sent in answer to CONNECT is not an HTTP answer (its words)."""


class ProxyDownError(ConnectionError):
    """The proxy could not give a tunnel for now (502/503/504, no answer in time, the
    connection closed): retried as a lost connection, its words the retry's reason."""


@dataclass(frozen=True)
class Proxy:
    """One proxy: where it listens, its login if the variable gave one, and which variable
    named it (messages name it; never the password)."""

    kind: int            # PySocks' PROXY_TYPE_*: 3 HTTP, 1 SOCKS4, 2 SOCKS5
    host: str
    port: int
    user: Optional[str]
    password: Optional[str] = field(repr=False)   # (a repr logged must not show it)
    rdns: bool
    variable: str
    tls: bool = False    # (``https://``: the hop to the proxy itself in TLS: proxy_tls)

    @property
    def address(self) -> str:
        """``http://host:port``: where it listens (never its login)."""
        scheme = {1: "socks4", 2: "socks5"}.get(self.kind, "https" if self.tls else "http")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    @property
    def shown(self) -> str:
        """``http://host:port (from HTTPS_PROXY)``: the proxy as a message names it."""
        return f"{self.address} (from {self.variable})"


def _named(scheme: str) -> tuple[str, str]:
    """The variable that names the proxy for ``scheme``'s addresses, and its value: the
    scheme's own (``https_proxy``, else ``HTTPS_PROXY``: the lower-case name, where set, even
    empty, decides, as Python's ``urllib`` reads them), else, where that gives none,
    ``all_proxy`` / ``ALL_PROXY`` (as curl and requests read it: httplib2 never did)."""
    for lower in (f"{scheme}_proxy", "all_proxy"):
        name = lower if lower in os.environ else lower.upper()
        value = os.environ.get(name, "").strip()
        if value:
            return name, value
    return f"{scheme.upper()}_PROXY", ""


#: The kinds of proxy a variable's scheme names (PySocks' numbers; ``socks5h``/``socks4a``:
#: the proxy looks the name up, as ``socks5://`` too here; ``socks4://``: looked up here).
_KINDS = {"http": 3, "https": 3, "socks4": 1, "socks4a": 1, "socks5": 2, "socks5h": 2,
          "socks": 2}
#: A proxy's port when its variable names none: its scheme's, as pip and requests read it (curl
#: takes 1080 for every scheme; httplib2 took 443 for https addresses, 80 for http ones).
_DEFAULT_PORTS = {"http": 80, "https": 443}   # (SOCKS: 1080)


def from_environment(method: str = "http") -> Optional[httplib2.ProxyInfo]:
    """The proxy the environment names for ``method``'s addresses (httplib2's
    ``proxy_info_from_environment``, which read ``proxy.corp:3128`` (no scheme) as no proxy
    at all, and let a port that is not a number, a bracket left open or a name no DNS can
    hold out as a ValueError that read as Drive's answer): a value it cannot use is a
    :class:`UsageError` naming the variable and the form it takes (never the value: it may
    hold the password)."""
    if method not in ("http", "https"):
        return None
    name, value = _named(method)
    if not value:
        return None

    def refused(why: str) -> UsageError:
        return UsageError(f"{name} is not a proxy address drivestage can use ({why}): set it "
                          "as http://HOST:PORT (http://USER:PASSWORD@HOST:PORT with a login; "
                          "a % code for an @ or : in them), or unset it")
    try:
        # (no scheme: http://, as curl and requests read ``host:port``)
        url = urllib.parse.urlsplit(value if "://" in value else f"http://{value}")
        host, port = url.hostname, url.port
        if host:
            host.encode("idna")   # (a name no DNS can hold: said here, not as an answer)
    except (ValueError, UnicodeError) as exc:
        what = "its port is not a number from 0 to 65535" if "Port" in str(exc) \
            else "its host is not a name or address"
        raise refused(what) from None
    kind = _KINDS.get(url.scheme.lower())
    if kind is None:
        raise refused(f"a {url.scheme}:// proxy is not one of "
                      f"{', '.join(sorted(_KINDS))}")
    if not host:
        raise refused("it names no host")
    info = httplib2.ProxyInfo(kind, host, port or _DEFAULT_PORTS.get(url.scheme.lower(), 1080),
                              proxy_user=url.username or None,
                              proxy_pass=url.password or None)
    no_proxy = os.environ.get("no_proxy", os.environ.get("NO_PROXY", ""))
    # (httplib2's own reading, for anything that asks the info itself; :func:`route` reads
    # NO_PROXY as urllib does)
    info.bypass_hosts = httplib2.AllHosts if no_proxy == "*" \
        else tuple(filter(bool, no_proxy.split(",")))
    return info


def route(conn: Any, scheme: str) -> Optional[Proxy]:
    """The proxy ``conn`` (an httplib2 connection to ``conn.host``) goes through, or None
    (none set, or ``NO_PROXY`` names the host)."""
    info = conn.proxy_info
    if info is None or getattr(info, "proxy_host", None) is None:
        return None
    if _bypassed(conn.host, conn.port):
        return None
    variable, value = _named(scheme)
    # (``socks4://``: the name looked up here, an address sent, as curl does: httplib2 asks
    # every proxy to look it up, SOCKS4a, which a plain SOCKS4 proxy refuses: attackc51)
    rdns = bool(info.proxy_rdns) and not value.lower().startswith("socks4://")
    return Proxy(kind=int(info.proxy_type), host=str(info.proxy_host),
                 port=int(info.proxy_port), user=info.proxy_user, password=info.proxy_pass,
                 rdns=rdns, variable=variable, tls=value.lower().startswith("https://"))


#: The cloud VM's own metadata server (a Colab or GCE token comes from it): link-local, never
#: reached through a proxy, whatever ``NO_PROXY`` says.
_LOCAL_ONLY = frozenset({"metadata.google.internal", "metadata", "169.254.169.254"})


def _bypassed(host: str, port: int) -> bool:
    """Whether ``NO_PROXY`` names ``host`` (httplib2's own reading matched neither a
    ``host:port`` entry nor a name in capitals), or it is the VM's metadata server."""
    if host.lower().rstrip(".") in _LOCAL_ONLY:
        return True
    if "no_proxy" not in os.environ and "NO_PROXY" not in os.environ:
        # (no NO_PROXY at all: this machine's own addresses, an emulator's, are reached
        # directly; a proxy's loopback is its own. A NO_PROXY set, even empty, decides.)
        return _loopback(host)
    no_proxy = os.environ.get("no_proxy", os.environ.get("NO_PROXY", ""))
    if not no_proxy.strip():
        return False
    shown = f"[{host}]" if ":" in host else host
    return bool(urllib.request.proxy_bypass_environment(   # type: ignore[attr-defined]
        f"{shown}:{port}", {"no": no_proxy})) or _in_networks(host, port, no_proxy)


def _in_networks(host: str, port: int, no_proxy: str) -> bool:
    """Whether ``host``, an IP address, is one ``NO_PROXY`` names by address or network
    (``10.0.0.0/8``, ``::1``, ``fd00::/8``, as curl and requests read them; ``[::1]`` and
    ``[::1]:8080``, an address as a URL writes it, that port only, as ``host:port`` is read;
    urllib matches text alone: no network, and ``[0::1]`` never matched ``::1``). An entry
    that is not an address or a network matches nothing here."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    for entry in no_proxy.split(","):
        entry = entry.strip()
        if entry.startswith("["):
            entry, closed, after = entry[1:].partition("]")
            if not closed or (after and after != f":{port}"):   # (another port, or none)
                continue
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def _loopback(host: str) -> bool:
    """Whether ``host`` is this machine itself (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


#: The proxy this process's latest connection went through (None: it went direct).
_last: Optional[Proxy] = None


def made(proxy: Optional[Proxy]) -> None:
    """A connection was made through ``proxy`` (None: directly), for :func:`through`."""
    global _last
    _last = proxy


def through() -> str:
    """`` through the proxy …`` when this process's latest connection went through one (a
    lost connection's final line names it: the proxy may be what cut them), else ``""``."""
    last = _last
    return "" if last is None else f" through the proxy {last.shown}"


def tunnel(sock: socket.socket, proxy: Proxy, host: str, port: int,
           timeout: Optional[float]) -> bytes:
    """Ask the HTTP ``proxy`` (``sock`` connected to it) for a tunnel to ``host:port``; its
    answer read within ``timeout`` seconds in all. A refusal raises a one-line error that
    names the proxy and what to do (:class:`ProxyDownError` when another attempt may do).
    Returned: the tunnel's bytes read with the answer (on a TLS ``sock``, which cannot be
    peeked at: :mod:`drivestage.drive.proxy_tls`; else none)."""
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    head = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
    if proxy.user is not None:
        login = f"{urllib.parse.unquote(proxy.user)}:{urllib.parse.unquote(proxy.password or '')}"
        head += f"Proxy-Authorization: Basic {base64.b64encode(login.encode()).decode()}\r\n"
    try:
        sock.sendall((head + "\r\n").encode("latin-1"))
        status, reason, lines, past = _answer(sock, timeout)
    except socket.timeout:
        raise ProxyDownError(f"the proxy {proxy.shown} did not answer the request for a "
                             f"tunnel to {target} within {timeout:g} s") from None
    except _NotAnAnswer as exc:
        raise RemoteError(f"the proxy {proxy.shown} answered the request for a tunnel to "
                          f"{target} with {exc}: check that {proxy.variable} names an HTTP "
                          "proxy (a SOCKS one is socks5://HOST:PORT)") from None
    except (ConnectionError, EOFError) as exc:
        raise ProxyDownError(f"the proxy {proxy.shown} closed the connection before it "
                             f"gave a tunnel to {target} ({exc or type(exc).__name__})"
                             ) from None
    if status == 200:
        return past
    # (the proxy's words, whatever it sent: printable, and short enough for one line)
    reason = "".join(c if c.isprintable() else " " for c in reason[:_REASON_MAX + 1])
    if len(reason) > _REASON_MAX:
        reason = reason[:_REASON_MAX] + "…"
    said = f"HTTP {status} {reason}".rstrip()
    if status in _TRANSIENT:
        raise ProxyDownError(f"the proxy {proxy.shown} could not reach {target} ({said})")
    offered = _schemes(lines) if status == 407 else []
    if offered and "basic" not in (scheme.lower() for scheme in offered):
        raise RemoteError(
            f"the proxy {proxy.shown} asks for a login by {', '.join(offered)} ({said}), which "
            "drivestage does not speak (Basic only): run a local relay that logs in to it for "
            f"you (cntlm, px) and name the relay in {proxy.variable} "
            f"(http://127.0.0.1:PORT), or set NO_PROXY={host} if {host} is reached without "
            "the proxy")
    if status == 407:
        raise login_refused(proxy, said, host)
    raise RemoteError(
        f"the proxy {proxy.shown} refused a tunnel to {target} ({said}): ask its "
        f"admin to let {host} through, or set NO_PROXY={host} if it is reached without "
        "the proxy")


def login_refused(proxy: Proxy, said: str, host: str) -> RemoteError:
    """The error for a ``proxy`` that asks for a login (or refused the one its variable
    gives), its words ``said``: where to put the login, never the password (an HTTP
    proxy's 407, a SOCKS5 one's refused methods or login: :mod:`~drivestage.drive.proxy_socks`)."""
    scheme, where = proxy.address.split("://", 1)
    what = ("refused the user and password in " + proxy.variable) \
        if proxy.user is not None else "asks for a login"
    return RemoteError(
        f"the proxy {proxy.shown} {what} ({said}): put its user and password in "
        f"{proxy.variable} ({scheme}://USER:PASSWORD@{where}), or set NO_PROXY={host} if "
        f"{host} is reached without the proxy")


def _schemes(head: list[str]) -> list[str]:
    """The login schemes a 407's ``Proxy-Authenticate`` headers offer (``NTLM``, ``Basic``),
    as a message may show them: printable, a few, each short."""
    offered: list[str] = []
    for line in head:
        name, _, value = line.partition(":")
        scheme = value.strip().split(" ", 1)[0].split(",", 1)[0]
        if name.strip().lower() == "proxy-authenticate" and scheme.isprintable() and \
                scheme and scheme not in offered:
            offered.append(scheme[:20])
    return offered[:4]


def _answer(sock: socket.socket,
            timeout: Optional[float]) -> tuple[int, str, list[str], bytes]:
    """The status and reason of the proxy's answer to CONNECT, its head's lines and the
    bytes read past it, its head read within ``timeout`` seconds in all (a byte past the head
    is never read where ``sock`` can be peeked at: after a 200, what follows is Drive's; a
    TLS socket cannot, and what came past the head is returned)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    peeked = not isinstance(sock, ssl.SSLSocket)
    got = bytearray()
    while b"\r\n\r\n" not in got:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no whole answer in time")
            sock.settimeout(min(left, timeout or left))
        # (peeked, then only the head taken: after a 200, the bytes that follow are the
        # server's, not the proxy's)
        ahead = sock.recv(_ANSWER_MAX, socket.MSG_PEEK) if peeked else sock.recv(_ANSWER_MAX)
        if not ahead:
            if got and not b"HTTP/".startswith(bytes(got[:5])):   # (a SOCKS proxy's bytes)
                raise _NotAnAnswer("an answer that is not HTTP "
                                  f"({ascii(bytes(got[:40]).decode('latin-1'))})")
            raise EOFError("no answer")
        end = (bytes(got) + ahead).find(b"\r\n\r\n")
        take = len(ahead) if end < 0 or not peeked else end + 4 - len(got)
        got += sock.recv(take) if peeked else ahead
        if got.find(b"\r\n\r\n") < 0 and len(got) > _ANSWER_MAX:
            raise _NotAnAnswer(f"more than {_ANSWER_MAX // 1024} KiB and no end to its head")
    if timeout is not None:
        sock.settimeout(timeout)
    end = got.find(b"\r\n\r\n") + 4
    head, past = bytes(got[:end]), bytes(got[end:])
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or len(parts[1]) != 3 \
            or not parts[1].isascii() or not parts[1].isdigit():   # (not '²', not 10**9)
        raise _NotAnAnswer(f"an answer that is not HTTP ({ascii(line[:40])})")
    return int(parts[1]), (parts[2] if len(parts) > 2 else ""), \
        head.decode("latin-1").split("\r\n")[1:], past


def unreachable(proxy: Proxy, exc: OSError) -> OSError:
    """The error for a ``proxy`` not reached (``exc``): its name not found, or nothing
    listening there, is said at once (another attempt meets the same); anything else
    (unreachable for now) is a :class:`ProxyDownError`, retried."""
    if isinstance(exc, socket.gaierror):
        return RemoteError(f"cannot find the proxy {proxy.shown}: {exc.strerror}; check "
                           f"{proxy.variable}")
    if isinstance(exc, ConnectionRefusedError):
        return RemoteError(f"the proxy {proxy.shown} refused the connection (is it "
                           f"running?); check {proxy.variable}, or unset it if this "
                           "network needs no proxy")
    return ProxyDownError(f"cannot reach the proxy {proxy.shown} ({exc})")


def closed_tunnel(proxy: Proxy, host: str, port: int) -> OSError:
    """The error for a tunnel to ``host:port`` that ``proxy`` closed before a TLS byte came
    through (its upstream may have failed after its 200; another attempt may get one):
    retried. Read as an end of the stream, or as a reset where the close met the client's
    first TLS bytes on their way."""
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return ProxyDownError(f"the proxy {proxy.shown} closed the tunnel to {target} before "
                          "TLS began")


def not_tls(proxy: Proxy, host: str, port: int, exc: ssl.SSLError) -> OSError:
    """The error for a TLS handshake with ``host:port`` that failed (``exc``) in the tunnel
    ``proxy`` gave: a certificate this machine does not trust (a proxy that inspects TLS
    shows its own), or no TLS at all (a proxy that answers itself, a page of its own, after
    its 200), or the tunnel closed before a byte came (:class:`ProxyDownError`: its upstream
    may have failed; another attempt may get one). Said of the proxy: "not what Drive sends …
    is --api-root a Drive API?" and "pull into a folder this user can write" were said of
    neither."""
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return closed_tunnel(proxy, host, port)
    bypass = f"or set NO_PROXY={host} if {host} is reached without the proxy"
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = exc.verify_message or exc.reason or "not verified"
        return RemoteError(
            f"the proxy {proxy.shown} gave a tunnel to {target}, but the certificate that "
            f"came through it is not one this machine trusts ({why}): a proxy that inspects "
            "TLS shows its own; put its CA certificate (PEM) in a file named by "
            f"HTTPLIB2_CA_CERTS, {bypass}")
    return RemoteError(
        f"the proxy {proxy.shown} gave a tunnel to {target}, but what came through it is not "
        f"TLS ({exc.reason or type(exc).__name__}): the proxy may have answered in its place "
        f"(a page of its own); ask its admin to let {host} through, {bypass}")
