"""The lines of a proxy variable drivestage cannot use and of a proxy whose answers are not
a proxy's or not Drive's TLS (attackr2), as docs/troubleshooting.md quotes them."""
from __future__ import annotations

from _cli import run
from _connect_proxy import ConnectProxy, behind  # noqa: F401  (a fixture)
from _messages import error_line, renders, shown
from _proxy import Proxy
from test_attackr2_proxy import _RawProxy
from test_fidelity28_signed import tls  # noqa: F401  (a fixture)


@renders("is not a proxy address drivestage can use")
def test_an_unusable_proxy_variable(emulator, behind, tmp_path, monkeypatch):
    behind(ConnectProxy())
    monkeypatch.setenv("HTTP_PROXY", "http://me:pw@proxy.corp:31a8")
    code, out, err = run("pull", "drive:f.bin", str(tmp_path / "in"), "-q")
    assert code == 2
    shown("is not a proxy address drivestage can use", error_line(err))


@renders("answered the request for a tunnel to")
def test_a_proxy_answer_that_is_not_http(emulator, behind, tmp_path):
    with behind(_RawProxy(b"\x05\xff")):
        code, out, err = run("pull", "drive:f.bin", str(tmp_path / "in"), "-q")
    assert code == 1
    shown("answered the request for a tunnel to", error_line(err))


@renders("but what came through it is not TLS")
def test_a_proxy_page_in_the_tunnel(emulator, behind, tls, tmp_path,  # noqa: F811
                                    monkeypatch):
    with Proxy(emulator.url, tls=tls) as api, \
            behind(_RawProxy(b"HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 403 Blocked\r\n\r\n")):
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", api.url)
        code, out, err = run("pull", "drive:f.bin", str(tmp_path / "in"), "-q")
    assert code == 1
    shown("but what came through it is not TLS", error_line(err))


@renders("but the certificate that came through it is not one this machine trusts")
def test_a_proxy_that_inspects_tls(emulator, behind, tls, tmp_path,  # noqa: F811
                                   monkeypatch):
    import httplib2

    with Proxy(emulator.url, tls=tls) as api, behind(ConnectProxy()):
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", api.url)
        # (this machine trusting none: what an inspecting proxy's own certificate meets)
        monkeypatch.setattr(httplib2, "CA_CERTS", httplib2.certs.BUILTIN_CA_CERTS)
        code, out, err = run("pull", "drive:f.bin", str(tmp_path / "in"), "-q")
    assert code == 1
    shown("but the certificate that came through it is not one this machine trusts",
          error_line(err))


@renders("which drivestage does not speak (Basic only)")
def test_a_login_drivestage_does_not_speak(emulator, behind, tmp_path):
    reply = b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: NTLM\r\n\r\n"
    with behind(_RawProxy(reply)):
        code, out, err = run("pull", "drive:f.bin", str(tmp_path / "in"), "-q")
    assert code == 1
    shown("which drivestage does not speak (Basic only)", error_line(err))
