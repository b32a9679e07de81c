"""The messages of a proxy that refuses, hangs or is not there (proxy47), as the user sees
them: one line naming the proxy and the variable that named it, exit 1; a refusal that
another attempt would meet again (407, 403, nothing listening) is not retried. On
556f8e4f (PySocks blocked) the proxy was never asked: every pull here succeeded, direct."""
from __future__ import annotations

import threading

from _cli import run
from _connect_proxy import ConnectProxy, behind  # noqa: F401  (a fixture)
from _messages import renders, shown


@renders("the proxy … asks for a login (HTTP 407")
def test_a_proxy_that_asks_for_a_login_is_one_line(emulator, behind, tmp_path):
    emulator.add_file("f.bin", b"x")
    with behind(ConnectProxy(answer="407 Proxy Authentication Required")) as proxy:
        code, out, err = run("pull", "drive:f.bin", str(tmp_path / "in"), "-q")
    assert code == 1
    assert err == (
        f"Error: the proxy http://127.0.0.1:{proxy.port} (from HTTP_PROXY) asks for a login "
        "(HTTP 407 Proxy Authentication Required): put its user and password in HTTP_PROXY "
        f"(http://USER:PASSWORD@127.0.0.1:{proxy.port}), or set NO_PROXY=127.0.0.1 if "
        "127.0.0.1 is reached without the proxy\n")
    shown("the proxy … asks for a login (HTTP 407", err)
    assert len(proxy.asked) == 1 and emulator.requests == []   # (not asked again)
    assert not (tmp_path / "in" / "f.bin").exists()


@renders("the proxy … could not reach … (HTTP 502")
def test_a_proxy_that_cannot_reach_drive_is_retried_then_one_line(emulator, behind, tmp_path,
                                                                  monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "2")
    emulator.add_file("f.bin", b"x")
    with behind(ConnectProxy(answer="502 Bad Gateway")) as proxy:
        code, out, err = run("pull", "drive:f.bin", str(tmp_path / "in"), "-q")
    assert code == 1
    said = (f"the proxy http://127.0.0.1:{proxy.port} (from HTTP_PROXY) could not reach "
            f"127.0.0.1:{emulator.port} (HTTP 502 Bad Gateway)")
    assert err.splitlines()[-1] == (
        f"Error: list drive: (the top of My Drive): still failing after 2 attempts ({said}); "
        "try again later")
    assert len(proxy.asked) == 2
    shown("the proxy … could not reach … (HTTP 502", err)


@renders("did not answer the request for a tunnel to")
def test_a_proxy_that_hangs_is_bounded(emulator, behind, tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "1")
    monkeypatch.setenv("DRIVESTAGE_HTTP_TIMEOUT", "0.5")
    emulator.add_file("f.bin", b"x")
    hold = threading.Event()
    with behind(ConnectProxy(hold=hold)) as proxy:
        code, out, err = run("pull", "drive:f.bin", str(tmp_path / "in"), "-q")
        assert not hold.is_set()   # (it never answered: the bound was the client's)
    assert code == 1
    assert err.splitlines()[-1] == (
        f"Error: list drive: (the top of My Drive): still failing after 1 attempts (the proxy "
        f"http://127.0.0.1:{proxy.port} (from HTTP_PROXY) did not answer the request for a "
        f"tunnel to 127.0.0.1:{emulator.port} within 0.5 s); try again later")
    shown("did not answer the request for a tunnel to", err)


@renders("the proxy … refused the connection (is it running?)")
def test_nothing_listening_at_the_proxy_is_one_line(emulator, behind, tmp_path):
    emulator.add_file("f.bin", b"x")
    proxy = ConnectProxy()   # (never entered: its port listens, and accepts nothing)
    proxy._listener.close()
    behind(proxy)
    code, out, err = run("pull", "drive:f.bin", str(tmp_path / "in"), "-q")
    assert code == 1
    assert err == (f"Error: the proxy http://127.0.0.1:{proxy.port} (from HTTP_PROXY) refused "
                   "the connection (is it running?); check HTTP_PROXY, or unset it if this "
                   "network needs no proxy\n")
    shown("the proxy … refused the connection (is it running?)", err)


@renders("refused a tunnel to", "refused the user and password in")
def test_a_proxy_that_refuses_the_host_or_the_login(emulator, behind, tmp_path, monkeypatch):
    emulator.add_file("f.bin", b"x")
    with behind(ConnectProxy(answer="403 Forbidden")) as proxy:
        code, out, err = run("pull", "drive:f.bin", str(tmp_path / "in"), "-q")
    assert code == 1
    assert err == (
        f"Error: the proxy http://127.0.0.1:{proxy.port} (from HTTP_PROXY) refused a tunnel to "
        f"127.0.0.1:{emulator.port} (HTTP 403 Forbidden): ask its admin to let 127.0.0.1 "
        "through, or set NO_PROXY=127.0.0.1 if it is reached without the proxy\n")
    shown("refused a tunnel to", err)
    with behind(ConnectProxy(answer="407 Proxy Authentication Required")) as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://me:p%40ss@127.0.0.1:{proxy.port}")
        code, out, err = run("pull", "drive:f.bin", str(tmp_path / "in"), "-q")
    assert code == 1
    assert "refused the user and password in HTTP_PROXY" in err and "p%40ss" not in err
    assert proxy.auth == ["Basic bWU6cEBzcw=="]   # me:p@ss
    shown("refused the user and password in", err)
