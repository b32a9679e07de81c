"""Behind a proxy, the two requests the plain-HTTP pull and push do not show (proxy47): Drive
over TLS through the tunnel (the handshake with Drive's host, not the proxy's: a real
proxy's CONNECT, TLS unread), and google-auth's token refresh. On 556f8e4f (PySocks
blocked) both went direct, the proxy never asked."""
from __future__ import annotations

import os

from _cli import run
from _connect_proxy import ConnectProxy, behind  # noqa: F401  (a fixture)
from _proxy import Proxy
from test_auth import FRESH, TokenServer, _token_file
from test_fidelity28_signed import tls  # noqa: F401  (a fixture)

from drivestage.drive import connect


def test_drive_over_tls_through_the_tunnel(emulator, behind, tls, tmp_path,  # noqa: F811
                                           monkeypatch):
    data = os.urandom(300 * 1024 + 7)
    emulator.add_file("VOC/set.bin", data)
    with Proxy(emulator.url, tls=tls) as api, behind(ConnectProxy()) as proxy:
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", api.url)
        code, _, err = run("pull", "-q", "drive:VOC/set.bin", str(tmp_path / "d"),
                           "--chunk-size", str(64 * 1024), "-j", "2")
        assert code == 0, err
        assert api.url.startswith("https://")
        assert proxy.tunnels >= 2
        assert set(proxy.asked) == {f"CONNECT 127.0.0.1:{api.url.rstrip('/').rsplit(':', 1)[1]} "
                                    "HTTP/1.1"}
    assert (tmp_path / "d/set.bin").read_bytes() == data


def test_a_token_refresh_goes_through_the_proxy(emulator_factory, behind, tmp_path,
                                                monkeypatch):
    emu = emulator_factory(token=FRESH)
    emu.add_file("data/a.txt", b"hello")
    server = TokenServer()
    try:
        with behind(ConnectProxy()) as proxy:
            monkeypatch.delenv("DRIVESTAGE_TOKEN")
            store = connect(api_root=emu.url,
                            credentials=_token_file(tmp_path / "t.json", server.uri))
            assert store.resolve("data/a.txt").size == 5
            token_port = server.uri.split(":")[2].split("/")[0]
            assert f"CONNECT 127.0.0.1:{token_port} HTTP/1.1" in proxy.asked
            assert [c["grant_type"] for c in server.calls] == ["refresh_token"]
            assert {r.connection for r in emu.requests} <= set(range(1, proxy.tunnels + 1))
    finally:
        server.stop()


def test_a_proxy_refusing_the_token_refresh_is_its_own_line(emulator_factory, behind,
                                                            tmp_path, monkeypatch):
    """Not "could not reach the token server … (the proxy …" cut to 200 characters."""
    emu = emulator_factory(token=FRESH)
    server = TokenServer()
    try:
        with behind(ConnectProxy(answer="407 Proxy Authentication Required")) as proxy:
            monkeypatch.delenv("DRIVESTAGE_TOKEN")
            monkeypatch.setenv("NO_PROXY", f"127.0.0.1:{emu.port}")   # (Drive direct)
            code, _, err = run("ls", "drive:", "--api-root", emu.url, "--credentials",
                               _token_file(tmp_path / "t.json", server.uri))
        assert code == 1
        port = server.uri.split(":")[2].split("/")[0]
        assert err == (
            f"Error: the proxy http://127.0.0.1:{proxy.port} (from HTTP_PROXY) asks for a "
            "login (HTTP 407 Proxy Authentication Required): put its user and password in "
            f"HTTP_PROXY (http://USER:PASSWORD@127.0.0.1:{proxy.port}), or set "
            "NO_PROXY=127.0.0.1 if 127.0.0.1 is reached without the proxy\n")
        assert proxy.asked == [f"CONNECT 127.0.0.1:{port} HTTP/1.1"] and server.calls == []
    finally:
        server.stop()
