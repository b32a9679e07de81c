"""A SOCKS proxy's refusals in words, as docs/troubleshooting.md quotes them (PySocks, which Colab ships). PySocks wraps every
failure of its handshake as "Socket error: …", an OSError: before session 51 each was read as
"cannot reach the proxy", tried eight times and ended "try again later", whatever the proxy
said. Now a refusal another attempt meets again is said at once with what to do (as an
HTTP proxy's 403/407 to CONNECT is), and a proxy that could not reach Drive for now is
retried. Each test fails on ab452caa (eight attempts, "still failing …")."""
from __future__ import annotations

import os

import pytest

from _cli import run
from _connect_proxy import _VARIABLES
from _messages import renders, shown
from _relays import Listening

pytest.importorskip("socks")

_SOCKS5 = "socks5"


class _Refusing(Listening):
    """A SOCKS proxy that answers each connection with ``reply`` after reading the client's
    greeting (SOCKS5: the method chosen is ``method``; then, for no login, the request);
    :attr:`seen` counts connections."""

    def __init__(self, method: bytes = b"\x00", reply: bytes = b"", login: bytes = b"",
                 raw: bytes = b"") -> None:
        super().__init__()
        self.method, self.reply, self.login, self.raw = method, reply, login, raw
        self.seen = 0

    def _serve(self, client) -> None:
        self.seen += 1
        try:
            greeting = client.recv(2)
            if self.raw:                         # (not a SOCKS proxy: its own answer)
                client.sendall(self.raw)
                return
            if greeting[:1] == b"\x04":          # SOCKS4: the request is the greeting
                client.recv(512)
            else:
                client.recv(greeting[1])         # (the methods offered)
                client.sendall(b"\x05" + self.method)
                if self.method == b"\x02":        # user and password (RFC 1929)
                    client.recv(513)
                    client.sendall(self.login)
                    return
                if self.method == b"\xff":
                    return
                client.recv(4 + 262)
            client.sendall(self.reply)
        except OSError:
            pass


@pytest.fixture
def through(emulator, drive_env, local_state, monkeypatch):
    """Runs ``drivestage pull`` of a small file through the proxy given."""
    emulator.add_file("f.bin", os.urandom(1000))
    for name in _VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "")

    def pull(proxy: Listening, scheme: str, tmp_path, login: str = "") -> tuple[int, str]:
        monkeypatch.setenv("HTTP_PROXY", f"{scheme}://{login}127.0.0.1:{proxy.port}")
        code, _, err = run("pull", "drive:f.bin", str(tmp_path / "in"), "-q")
        assert not (tmp_path / "in" / "f.bin").exists()
        return code, err.strip().splitlines()[-1]
    return pull


def _where(proxy: Listening, scheme: str = _SOCKS5) -> str:
    return f"{scheme}://127.0.0.1:{proxy.port} (from HTTP_PROXY)"


def test_a_rule_that_denies_drive_is_said_at_once(through, emulator, tmp_path):
    with _Refusing(reply=b"\x05\x02\x00\x01" + bytes(6)) as proxy:
        code, last = through(proxy, _SOCKS5, tmp_path)
    port = emulator.url.rsplit(":", 1)[1].split("/")[0]
    assert (code, last) == (1, (
        f"Error: the proxy {_where(proxy)} refused a connection to 127.0.0.1:{port} (0x02: "
        "Connection not allowed by ruleset): ask its admin to let 127.0.0.1 through, or set "
        "NO_PROXY=127.0.0.1 if it is reached without the proxy"))
    assert proxy.seen == 1


def test_a_socks4_rejection_is_said_at_once(through, tmp_path):
    with _Refusing(reply=b"\x00\x5b" + bytes(6)) as proxy:
        code, last = through(proxy, "socks4", tmp_path)
    assert code == 1 and last.startswith(f"Error: the proxy {_where(proxy, 'socks4')} refused a "
                                         "connection to 127.0.0.1:") and proxy.seen == 1
    assert "(0x5b: Request rejected or failed)" in last


def test_a_proxy_that_asks_for_a_login_says_where_to_put_it(through, tmp_path):
    with _Refusing(method=b"\xff") as proxy:
        code, last = through(proxy, _SOCKS5, tmp_path)
    assert (code, last) == (1, (
        f"Error: the proxy {_where(proxy)} asks for a login (All offered SOCKS5 authentication "
        "methods were rejected): put its user and password in HTTP_PROXY "
        f"(socks5://USER:PASSWORD@127.0.0.1:{proxy.port}), or set NO_PROXY=127.0.0.1 if "
        "127.0.0.1 is reached without the proxy"))
    assert proxy.seen == 1


def test_a_login_refused_names_the_variable_never_the_password(through, tmp_path):
    with _Refusing(method=b"\x02", login=b"\x01\x01") as proxy:
        code, last = through(proxy, _SOCKS5, tmp_path, login="me:s3cret@")
    assert code == 1 and last.startswith(
        f"Error: the proxy {_where(proxy)} refused the user and password in HTTP_PROXY (")
    assert "s3cret" not in last and proxy.seen == 1


@renders("does not answer as a socks5 proxy")
def test_a_proxy_that_is_not_socks_says_to_check_the_variable(through, tmp_path):
    with _Refusing(raw=b"HTTP/1.1 400 Bad Request\r\n\r\n") as proxy:   # (an HTTP proxy)
        code, last = through(proxy, _SOCKS5, tmp_path)
    assert (code, last) == (1, (
        f"Error: the proxy {_where(proxy)} does not answer as a socks5 proxy (SOCKS5 proxy "
        "server sent invalid data): check HTTP_PROXY (an HTTP proxy is http://HOST:PORT, the "
        "other SOCKS is socks4://HOST:PORT)"))
    assert proxy.seen == 1
    shown("does not answer as a socks5 proxy", last)


def test_a_proxy_that_cannot_reach_drive_for_now_is_tried_again(through, tmp_path):
    with _Refusing(reply=b"\x05\x04\x00\x01" + bytes(6)) as proxy:   # host unreachable
        code, last = through(proxy, _SOCKS5, tmp_path)
    assert code == 1 and last.endswith(
        "(0x04: Host unreachable)); try again later") and "still failing after" in last
    assert proxy.seen > 1
