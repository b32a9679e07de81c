"""The proxy variables as curl and requests read them (proxy48): ``ALL_PROXY`` (``all_proxy``)
names the proxy where the scheme's own variable names none (httplib2 never read it: a machine
set up for curl went direct, not a word said); ``NO_PROXY``'s ``[v6]`` and ``[v6]:port``
entries match the address however it is written (urllib compares text: ``[0:0::1]:8080``
never matched ``::1``)."""
from __future__ import annotations

import socket
import types

import httplib2
import pytest

from _cli import run
from _connect_proxy import ConnectProxy, behind  # noqa: F401  (a fixture)
from _relays import Listening, pump


def _route(scheme: str = "https", host: str = "www.googleapis.com", port: int = 443):
    """The proxy drivestage's connection to ``host:port`` would go through, or None."""
    from drivestage.drive import proxies

    conn = types.SimpleNamespace(host=host, port=port,
                                 proxy_info=proxies.from_environment(scheme))
    return proxies.route(conn, scheme)


def test_all_proxy_names_the_proxy_where_the_schemes_own_names_none(emulator, behind, tmp_path,
                                                                    monkeypatch):
    emulator.add_file("f.bin", b"all the way" * 100)
    with behind(ConnectProxy()) as proxy:
        monkeypatch.delenv("HTTP_PROXY")
        monkeypatch.delenv("HTTPS_PROXY")
        monkeypatch.setenv("ALL_PROXY", proxy.url)
        code, _, err = run("pull", "drive:f.bin", str(tmp_path / "in"), "-q")
        assert code == 0, err
        assert proxy.tunnels >= 1
        assert {r.connection for r in emulator.requests} == set(range(1, proxy.tunnels + 1))
    assert (tmp_path / "in" / "f.bin").read_bytes() == b"all the way" * 100


def test_a_refusal_names_all_proxy_when_it_named_the_proxy(emulator, behind, tmp_path,
                                                           monkeypatch):
    with behind(ConnectProxy(answer="407 Proxy Authentication Required")) as proxy:
        monkeypatch.delenv("HTTP_PROXY")
        monkeypatch.delenv("HTTPS_PROXY")
        monkeypatch.setenv("all_proxy", proxy.url)
        code, _, err = run("pull", "drive:f.bin", str(tmp_path / "in"), "-q")
    assert code == 1
    assert err == (
        f"Error: the proxy http://127.0.0.1:{proxy.port} (from all_proxy) asks for a login "
        "(HTTP 407 Proxy Authentication Required): put its user and password in all_proxy "
        f"(http://USER:PASSWORD@127.0.0.1:{proxy.port}), or set NO_PROXY=127.0.0.1 if "
        "127.0.0.1 is reached without the proxy\n")


def test_which_variable_names_the_proxy(behind, monkeypatch):
    behind(ConnectProxy())
    for name in ("HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("ALL_PROXY", "http://all.corp:1")
    monkeypatch.setenv("all_proxy", "http://lower-all.corp:2")
    assert (_route().host, _route().variable) == ("lower-all.corp", "all_proxy")
    monkeypatch.setenv("HTTPS_PROXY", "http://https.corp:3")   # (the scheme's own first)
    assert (_route().host, _route().variable) == ("https.corp", "HTTPS_PROXY")
    assert _route("http").variable == "all_proxy"   # (not HTTPS_PROXY's: another scheme's)
    monkeypatch.setenv("https_proxy", "")   # (set empty: none of its own, so all_proxy's)
    assert (_route().host, _route().variable) == ("lower-all.corp", "all_proxy")
    monkeypatch.setenv("all_proxy", "socks5h://socks.corp")   # (as curl: any scheme)
    assert (_route().kind, _route().port, _route().address) == (2, 1080,
                                                                "socks5://socks.corp:1080")
    monkeypatch.setenv("NO_PROXY", "www.googleapis.com")   # (NO_PROXY holds for it too)
    assert _route() is None


def test_no_proxy_v6_entries_by_address_and_port(behind, monkeypatch):
    behind(ConnectProxy())
    for no_proxy, host, port, direct in [
            ("[::1]:8080", "::1", 8080, True), ("[0:0::1]:8080", "::1", 8080, True),
            ("[::1]:8081", "::1", 8080, False), ("[::1]", "::1", 8080, True),
            ("0::1", "::1", 8080, True), ("[2001:DB8::1]", "2001:db8::1", 443, True),
            ("[::1]:80x", "::1", 80, False), ("[::1]:8080", "127.0.0.1", 8080, False),
            ("fd00::/8, [::1]:1", "fd00::5", 443, True), ("[::1", "::1", 443, False)]:
        monkeypatch.setenv("NO_PROXY", no_proxy)
        assert (_route(host=host, port=port) is None) == direct, (no_proxy, host, port)


class _V6Front(Listening):
    """A TCP relay on ``[::1]`` to the emulator (an API root at an IPv6 address)."""

    def __init__(self, to: int):
        super().__init__("::1")
        self.to = to
        self.connections = 0

    def _serve(self, client: socket.socket) -> None:
        self.connections += 1
        upstream = socket.create_connection(("127.0.0.1", self.to), timeout=30)
        self._socks.append(upstream)
        self._spawn(pump, upstream, client)
        pump(client, upstream)


def _v6_loopback() -> bool:
    try:
        with socket.create_server(("::1", 0), family=socket.AF_INET6):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not _v6_loopback(), reason="this machine has no IPv6 loopback (::1)")
def test_an_api_root_at_a_v6_address_no_proxy_names_is_reached_directly(
        emulator, behind, tmp_path, monkeypatch):
    emulator.add_file("f.bin", b"six" * 100)
    with _V6Front(emulator.port) as front, \
            behind(ConnectProxy(), no_proxy=f"example.org, [0:0::1]:{front.port}") as proxy:
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", f"http://[::1]:{front.port}/")
        code, _, err = run("pull", "drive:f.bin", str(tmp_path / "in"), "-q")
        assert code == 0, err
        assert proxy.asked == [] and front.connections >= 1
    assert (tmp_path / "in" / "f.bin").read_bytes() == b"six" * 100
