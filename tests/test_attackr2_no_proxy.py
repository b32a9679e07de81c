"""``NO_PROXY`` entries proxy47's reading (urllib's) did not match (attackr2): a network in
CIDR form (``10.0.0.0/8``, which curl and requests take) and an IPv6 address (the host
``::1`` was compared as ``[::1]``): both went through the proxy."""
from __future__ import annotations

import types

import httplib2

from _cli import run
from _connect_proxy import ConnectProxy, behind  # noqa: F401  (a fixture)


def test_a_network_in_no_proxy_is_reached_without_the_proxy(emulator, behind, tmp_path):
    emulator.add_file("f.bin", b"direct")
    with behind(ConnectProxy(), no_proxy=" 10.0.0.0/8 , 127.0.0.0/8 ") as proxy:
        code, out, err = run("pull", "drive:f.bin", str(tmp_path / "in"), "-q")
        assert code == 0, err
        assert proxy.asked == []
    assert (tmp_path / "in" / "f.bin").read_bytes() == b"direct"


def test_which_addresses_no_proxy_names(behind, monkeypatch):
    from drivestage.drive import proxies

    behind(ConnectProxy())

    def via(host: str, port: int = 443) -> bool:
        conn = types.SimpleNamespace(host=host, port=port,
                                     proxy_info=httplib2.proxy_info_from_environment("https"))
        return proxies.route(conn, "https") is not None
    monkeypatch.setenv("NO_PROXY", "192.168.0.0/16,::1,fd00::/8,[2001:db8::1]")
    assert not via("192.168.7.9") and via("192.169.0.1")
    assert not via("::1") and not via("fd12::5") and not via("2001:db8::1")
    assert via("2001:db8::2") and via("www.googleapis.com")
    monkeypatch.setenv("NO_PROXY", "not/a/network,10.0.0.0/33")   # (no match, no error)
    assert via("10.1.2.3") and via("www.googleapis.com")
