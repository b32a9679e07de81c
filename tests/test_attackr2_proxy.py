"""proxy47's proxy variables and CONNECT answers, attacked (attackr2): a variable without
its scheme (``proxy.corp:3128``, as curl and requests take it) left the proxy unused, not a
word said; one httplib2 could not read (a port that is not a number, a bracket left open, a
name no DNS can hold, an unknown scheme) read "the server's answer is not what Drive sends
(ValueError …); is --api-root … a Drive API?". A proxy's answer that is not HTTP (a status of
'²', garbage, a head with no end) read as a connection closed, or as Drive's bad answer,
and was retried; a reason phrase of 60 KB made an error line of 60 KB."""
from __future__ import annotations

import socket
import struct

import pytest

from _cli import run
from _connect_proxy import ConnectProxy, behind  # noqa: F401  (a fixture)
from _relays import Listening, read_head

_SECRET = "s3cr%40t"


class _RawProxy(Listening):
    """Reads each CONNECT's head, sends ``reply`` as it is, closes (a proxy that says what
    it likes); ``hold``: closes only once the client has closed its end (30 s at most);
    ``reset``: once the client's next bytes began to arrive, resets the connection
    (SO_LINGER 0), as a close that meets them on their way does."""

    def __init__(self, reply: bytes, hold: bool = False, reset: bool = False):
        super().__init__()
        self.reply, self.hold, self.reset = reply, hold, reset
        self.asked = 0

    def _serve(self, client: socket.socket) -> None:
        with client:
            self.asked += 1
            read_head(client)
            try:
                client.sendall(self.reply)
            except OSError:   # (the client stopped reading: a head too long)
                pass
            client.settimeout(30)
            try:
                while self.hold and client.recv(4096):
                    pass
                if self.reset:
                    client.recv(1)
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                      struct.pack("ii", 1, 0))
            except OSError:
                pass


def test_a_proxy_named_without_its_scheme_is_gone_through(emulator, behind, tmp_path,
                                                          monkeypatch):
    emulator.add_file("f.bin", b"through the proxy")
    with behind(ConnectProxy()) as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"127.0.0.1:{proxy.port}")
        monkeypatch.setenv("HTTPS_PROXY", f"127.0.0.1:{proxy.port}")
        code, out, err = run("pull", "drive:f.bin", str(tmp_path / "in"), "-q")
        assert code == 0, err
    assert (tmp_path / "in" / "f.bin").read_bytes() == b"through the proxy"
    assert proxy.tunnels >= 1 and proxy.asked[0] == f"CONNECT 127.0.0.1:{emulator.port} HTTP/1.1"


@pytest.mark.parametrize("value, why", [
    (f"http://me:{_SECRET}@127.0.0.1:31a8", "its port is not a number from 0 to 65535"),
    (f"http://me:{_SECRET}@127.0.0.1:99999", "its port is not a number from 0 to 65535"),
    (f"http://me:{_SECRET}@[::1:3128", "its host is not a name or address"),
    (f"http://me:{_SECRET}@proxy..corp:3128", "its host is not a name or address"),
    (f"ftp://me:{_SECRET}@proxy.corp:3128",
     "a ftp:// proxy is not one of http, https, socks, socks4, socks4a, socks5, socks5h"),
    ("http://:3128", "it names no host"),
])
def test_a_proxy_variable_that_cannot_be_used_is_one_line_without_its_password(
        emulator, behind, tmp_path, monkeypatch, value, why):
    emulator.add_file("f.bin", b"x")
    behind(ConnectProxy())
    monkeypatch.setenv("HTTP_PROXY", value)
    code, out, err = run("-v", "pull", "drive:f.bin", str(tmp_path / "in"))
    assert code == 2
    assert err == (
        f"Error: HTTP_PROXY is not a proxy address drivestage can use ({why}): set it as "
        "http://HOST:PORT (http://USER:PASSWORD@HOST:PORT with a login; a % code for an @ or "
        ": in them), or unset it\n")
    assert "s3cr" not in out + err
    assert emulator.requests == [] and not (tmp_path / "in" / "f.bin").exists()


_NOT_HTTP = ("Error: the proxy http://127.0.0.1:{proxy} (from HTTP_PROXY) answered the request "
             "for a tunnel to 127.0.0.1:{drive} with {what}: check that HTTP_PROXY names an "
             "HTTP proxy (a SOCKS one is socks5://HOST:PORT)\n")
_REFUSED = ("Error: the proxy http://127.0.0.1:{proxy} (from HTTP_PROXY) refused a tunnel to "
            "127.0.0.1:{drive} (HTTP 403 {what}): ask its admin to let 127.0.0.1 through, or "
            "set NO_PROXY=127.0.0.1 if it is reached without the proxy\n")


@pytest.mark.parametrize("reply, line, what", [
    (b"HTTP/1.1 \xb2 OK\r\n\r\n", _NOT_HTTP, "an answer that is not HTTP ('HTTP/1.1 \\xb2 OK')"),
    (b"\x05\x00garbage\r\n\r\n", _NOT_HTTP, "an answer that is not HTTP ('\\x05\\x00garbage')"),
    (b"\x05\xff", _NOT_HTTP, "an answer that is not HTTP ('\\x05\\xff')"),   # (then closed)
    (b"HTTP/1.1 200 OK\r\n" + b"X-Pad: y\r\n" * 8000, _NOT_HTTP,
     "more than 64 KiB and no end to its head"),
    (b"HTTP/1.1 403 Denied\nby\x1b[31m policy\r\n\r\n", _REFUSED, "Denied by [31m policy"),
    (b"HTTP/1.1 403 " + b"x" * 60000 + b"\r\n\r\n", _REFUSED, "x" * 80 + "…"),
])
def test_a_proxy_answer_that_is_not_a_proxys_is_one_short_line(emulator, behind, tmp_path,
                                                              monkeypatch, reply, line, what):
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "3")
    emulator.add_file("f.bin", b"x")
    with behind(_RawProxy(reply)) as proxy:
        code, out, err = run("pull", "drive:f.bin", str(tmp_path / "in"), "-q")
    assert code == 1
    assert err == line.format(proxy=proxy.port, drive=emulator.port, what=what)
    assert proxy.asked == 1   # (another attempt meets the same proxy)
    assert emulator.requests == [] and not (tmp_path / "in" / "f.bin").exists()


def test_a_proxy_asking_for_a_login_drivestage_cannot_give_says_so(emulator, behind, tmp_path,
                                                                  monkeypatch):
    """A proxy that offers NTLM and Negotiate alone (a Windows domain's): 'put its user and
    password in HTTP_PROXY' was no way through; each try with them is refused again."""
    emulator.add_file("f.bin", b"x")
    reply = (b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: NTLM\r\n"
             b"proxy-authenticate: Negotiate\r\nContent-Length: 0\r\n\r\n")
    with behind(_RawProxy(reply)) as proxy:
        code, out, err = run("pull", "drive:f.bin", str(tmp_path / "in"), "-q")
    assert code == 1
    assert err == (
        f"Error: the proxy http://127.0.0.1:{proxy.port} (from HTTP_PROXY) asks for a login by "
        "NTLM, Negotiate (HTTP 407 Proxy Authentication Required), which drivestage does not "
        "speak (Basic only): run a local relay that logs in to it for you (cntlm, px) and "
        "name the relay in HTTP_PROXY (http://127.0.0.1:PORT), or set NO_PROXY=127.0.0.1 if "
        "127.0.0.1 is reached without the proxy\n")
    assert proxy.asked == 1 and emulator.requests == []


def test_a_proxy_without_a_port_takes_its_schemes(behind, monkeypatch):
    """As pip reads it: ``http://proxy.corp`` is port 80 (httplib2 took 443 for Drive's
    https addresses: a proxy on 80 was never reached), SOCKS 1080; the login kept apart."""
    from drivestage.drive import proxies

    behind(ConnectProxy())
    for value, kind, port in (("http://proxy.corp", 3, 80), ("https://proxy.corp", 3, 443),
                              ("socks5h://proxy.corp", 2, 1080), ("proxy.corp", 3, 80),
                              ("me:p%40ss@proxy.corp:3128", 3, 3128)):
        monkeypatch.setenv("HTTPS_PROXY", value)
        info = proxies.from_environment("https")
        assert (info.proxy_type, info.proxy_host, info.proxy_port) == (kind, "proxy.corp", port)
    assert (info.proxy_user, info.proxy_pass) == ("me", "p%40ss")   # (decoded as it is sent)
