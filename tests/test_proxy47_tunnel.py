"""drivestage behind an HTTP proxy (proxy47): every connection goes through the tunnel the
proxy the environment names gives (a pull's streams, a push's resumable upload, the
metadata), ``NO_PROXY`` honoured; a proxy that refuses or hangs is one line naming it.

The proxy is a real one (tests/_connect_proxy.py) in front of the emulator on 127.0.0.1;
the emulator's connections are counted against the proxy's tunnels. PySocks is blocked
(``sys.modules['socks'] = None``, as on a machine without it): on main every connection
went direct then, the proxy unused.
"""
from __future__ import annotations

import hashlib
import os

from _cli import run
from _connect_proxy import ConnectProxy, behind  # noqa: F401  (a fixture)

CHUNK = 64 * 1024


def through_it_only(emulator, proxy: ConnectProxy) -> None:
    """Every connection the emulator served came through one of the proxy's tunnels."""
    carried = {rec.connection for rec in emulator.requests}
    assert proxy.tunnels > 0
    assert carried == set(range(1, proxy.tunnels + 1)), (carried, proxy.tunnels)
    assert all(line == f"CONNECT 127.0.0.1:{emulator.port} HTTP/1.1" for line in proxy.asked)


def test_a_pull_and_a_push_go_through_the_proxy(emulator, behind, tmp_path):
    data = os.urandom(6 * CHUNK + 5)
    emulator.add_file("sets/f.bin", data)
    with behind(ConnectProxy()) as proxy:
        code, _, err = run("pull", "drive:sets/f.bin", str(tmp_path / "in"),
                           "--chunk-size", str(CHUNK), "-j", "3", "-q")
        assert code == 0, err
        assert (tmp_path / "in" / "f.bin").read_bytes() == data
        ranged = [r for r in emulator.requests if r.query.get("alt") == "media"]
        assert len({r.connection for r in ranged}) >= 2   # (several streams, each tunnelled)

        sent = os.urandom(600 * 1024)
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "w.pt").write_bytes(sent)
        code, _, err = run("push", str(tmp_path / "run"), "drive:runs/a",
                           "--chunk-size", "256KiB")
        assert code == 0, err
        through_it_only(emulator, proxy)
    pushed = emulator.find("runs/a/w.pt")
    assert pushed["md5Checksum"] == hashlib.md5(sent).hexdigest()
    assert emulator.read_bytes(pushed["id"]) == sent
    puts = [r for r in emulator.requests if r.method == "PUT"]
    assert len(puts) == 3   # (the resumable upload's chunks, each through the tunnel)


def test_no_proxy_names_the_host_reached_without_it(emulator, behind, tmp_path):
    emulator.add_file("f.bin", b"x" * 100)
    with behind(ConnectProxy(), no_proxy=f"example.org,127.0.0.1:{emulator.port}") as proxy:
        code, _, err = run("pull", "drive:f.bin", str(tmp_path / "in"), "-q")
        assert code == 0, err
        assert proxy.asked == []
    assert (tmp_path / "in" / "f.bin").read_bytes() == b"x" * 100


def test_a_proxy_that_cuts_every_answer_is_named_in_the_last_line(emulator, behind, tmp_path,
                                                                  monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "2")
    emulator.add_file("f.bin", b"x")
    with behind(ConnectProxy(cut_after=300)) as proxy:
        code, out, err = run("pull", "drive:f.bin", str(tmp_path / "in"), "-q")
    assert code == 1
    assert err.splitlines()[-1] == (
        "Error: list drive: (the top of My Drive): still failing after 2 attempts (connection "
        f"lost (IncompleteRead)) through the proxy http://127.0.0.1:{proxy.port} (from "
        "HTTP_PROXY); try again later")
    assert proxy.tunnels == 2


def test_which_hosts_go_through_the_proxy(behind, monkeypatch):
    """``NO_PROXY`` as urllib reads it (a port, capitals, a domain); the VM's metadata
    server (a Colab or GCE token) never through the proxy, which cannot reach it; without
    any NO_PROXY, this machine's loopback (an emulator) direct."""
    import types

    import httplib2

    from drivestage.drive import proxies

    behind(ConnectProxy())
    monkeypatch.setenv("NO_PROXY", "Example.ORG,127.0.0.1:9,.corp.test")

    def via(host: str, port: int) -> bool:
        conn = types.SimpleNamespace(host=host, port=port,
                                     proxy_info=httplib2.proxy_info_from_environment("https"))
        return proxies.route(conn, "https") is not None
    assert via("www.googleapis.com", 443)
    assert via("127.0.0.1", 8) and not via("127.0.0.1", 9)
    assert not via("example.org", 443) and not via("drive.corp.test", 443)
    assert not via("metadata.google.internal", 80) and not via("169.254.169.254", 80)
    monkeypatch.delenv("NO_PROXY")   # (none at all: loopback direct; an empty one decides)
    assert not via("127.0.0.1", 8) and not via("localhost", 8) and not via("::1", 8)
    assert via("www.googleapis.com", 443)


def test_a_socks_proxy_without_pysocks_is_one_line(emulator, behind, tmp_path, monkeypatch):
    emulator.add_file("f.bin", b"x")
    behind(ConnectProxy())
    monkeypatch.setenv("HTTP_PROXY", "socks5://127.0.0.1:9")
    code, out, err = run("pull", "drive:f.bin", str(tmp_path / "in"), "-q")
    assert code == 1
    assert err == ("Error: HTTP_PROXY names a SOCKS proxy, socks5://127.0.0.1:9, which "
                   "drivestage reaches through PySocks: pip install PySocks, or name an HTTP "
                   "proxy (http://host:port)\n")
    assert emulator.requests == []


def test_a_proxy_that_takes_no_connection_is_named(emulator, behind, tmp_path, monkeypatch):
    """Its listen queue full (the SYN dropped, as a network that drops it does)."""
    import socket

    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "1")
    monkeypatch.setenv("DRIVESTAGE_HTTP_TIMEOUT", "0.5")
    emulator.add_file("f.bin", b"x")
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    port = full.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))   # (the queue's one place)
    try:
        proxy = ConnectProxy()
        proxy.url, proxy.port = f"http://127.0.0.1:{port}", port
        behind(proxy)
        code, out, err = run("pull", "drive:f.bin", str(tmp_path / "in"), "-q")
    finally:
        filler.close()
        full.close()
        proxy._listener.close()
    assert code == 1
    assert err.splitlines()[-1] == (
        "Error: list drive: (the top of My Drive): still failing after 1 attempts (the proxy "
        f"http://127.0.0.1:{port} (from HTTP_PROXY) did not take the connection within "
        "0.5 s); try again later")
