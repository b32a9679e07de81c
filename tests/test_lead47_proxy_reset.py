"""A tunnel the proxy closed right after its 200 read as "cannot reach the proxy
(Connection reset by peer)" where its close met the client's first TLS bytes on their way
(a reset, not an end of stream: the session's full run, under load), and as "closed the
tunnel … before TLS began" where it did not: the same tunnel closed, said the same way.
The proxy here closes with a reset every time (SO_LINGER 0) after it has read the client's
first TLS bytes."""
from __future__ import annotations

import socket
import struct

from _cli import run
from _connect_proxy import behind  # noqa: F401  (a fixture)
from _proxy import Proxy
from test_attackr2_proxy import _RawProxy
from test_fidelity28_signed import tls  # noqa: F401  (a fixture)


class _ResettingProxy(_RawProxy):
    """Answers each CONNECT 200, waits for the client's first TLS bytes, and resets."""

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.asked += 1
            client.settimeout(30)
            try:
                head = b""
                while b"\r\n\r\n" not in head:
                    data = client.recv(4096)
                    if not data:
                        break
                    head += data
                client.sendall(b"HTTP/1.1 200 OK\r\n\r\n")
                client.recv(1)   # (the ClientHello has begun to arrive)
            except OSError:
                pass
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


def test_a_tunnel_reset_as_tls_begins_is_a_tunnel_closed_and_retried(emulator, behind, tls,
                                                                     tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "2")
    emulator.add_file("f.bin", b"x")
    with Proxy(emulator.url, tls=tls) as api, behind(_ResettingProxy(b"")) as proxy:
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", api.url)
        code, out, err = run("pull", "drive:f.bin", str(tmp_path / "in"), "-q")
    assert code == 1
    assert err.splitlines()[-1] == (
        "Error: list drive: (the top of My Drive): still failing after 2 attempts (the proxy "
        f"http://127.0.0.1:{proxy.port} (from HTTPS_PROXY) closed the tunnel to "
        f"127.0.0.1:{_port(api.url)} before TLS began); try again later")
    assert proxy.asked == 2 and emulator.requests == []
