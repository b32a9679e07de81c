"""A SOCKS5 proxy (``socks5://`` in the variable) where PySocks is installed (Colab ships it),
proxy47: the connection is made through PySocks on the socket ``drive/sliced.py`` makes (cut
and closed under the stream lines, as an HTTP proxy's tunnel). On 556f8e4f httplib2's own
proxy connect did it; the test guards that the move kept it working."""
from __future__ import annotations

import os
import socket

import pytest

from _cli import run
from _connect_proxy import _VARIABLES
from _relays import Listening, socks5_connect

pytest.importorskip("socks")


class _Socks5(Listening):
    """A SOCKS5 proxy without a login: CONNECT only; :attr:`tunnels` counts them."""

    def __init__(self) -> None:
        super().__init__()
        self.tunnels = 0

    def _serve(self, client: socket.socket) -> None:
        client.recv(client.recv(2)[1])                   # (the methods offered)
        client.sendall(b"\x05\x00")                      # no login
        self.tunnels += 1
        socks5_connect(self, client)


def test_a_pull_through_a_socks5_proxy(emulator, drive_env, local_state, tmp_path,
                                       monkeypatch):
    data = os.urandom(300 * 1024)
    emulator.add_file("f.bin", data)
    for name in _VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with _Socks5() as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"socks5://127.0.0.1:{proxy.port}")
        monkeypatch.setenv("NO_PROXY", "")
        code, _, err = run("pull", "drive:f.bin", str(tmp_path / "in"), "-q", "-j", "2",
                           "--chunk-size", str(64 * 1024))
        assert code == 0, err
        carried = {rec.connection for rec in emulator.requests}
        assert carried == set(range(1, proxy.tunnels + 1)) and proxy.tunnels >= 2
    assert (tmp_path / "in" / "f.bin").read_bytes() == data
