"""The lines of an ``https://`` proxy drivestage cannot speak TLS with (proxy48), as
docs/troubleshooting.md quotes them."""
from __future__ import annotations

import socket

from _cli import run
from _connect_proxy import behind  # noqa: F401  (a fixture)
from _messages import error_line, renders, shown
from _relays import Listening
from test_fidelity28_signed import tls  # noqa: F401  (a fixture)
from test_proxy48_tls import _TlsProxy, untrusted


@renders("showed a certificate this machine does not trust")
def test_an_https_proxy_whose_certificate_is_not_trusted(emulator, behind, tls, tmp_path,
                                                         tmp_path_factory):
    with _TlsProxy(*untrusted(tmp_path_factory)) as proxy:
        behind(proxy)
        code, out, err = run("pull", "drive:f.bin", str(tmp_path / "in"), "-q")
    assert code == 1 and proxy.tunnels == 0
    shown("showed a certificate this machine does not trust", error_line(err))


class _PlainProxy(Listening):
    """A plain HTTP proxy's first answer to what is not HTTP (a TLS hello): 400, closed."""

    def __init__(self) -> None:
        super().__init__()
        self.url = f"https://u:pw@127.0.0.1:{self.port}"
        self.asked = 0

    def _serve(self, client: socket.socket) -> None:
        with client:
            self.asked += 1
            client.recv(4096)
            client.sendall(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")


@renders("does not speak TLS")
def test_a_plain_proxy_named_https(emulator, behind, tmp_path, monkeypatch):
    with behind(_PlainProxy()) as proxy:
        code, out, err = run("pull", "drive:f.bin", str(tmp_path / "in"), "-q")
    assert code == 1 and proxy.asked == 1   # (not retried)
    assert "pw" not in err
    shown("does not speak TLS", error_line(err))
    assert error_line(err).endswith(
        f"name it http://127.0.0.1:{proxy.port} in HTTP_PROXY if it takes plain "
        "connections, or ask its admin for its TLS address")
