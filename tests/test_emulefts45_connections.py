"""The emulator serves at most ``Emulator.max_connections`` connections at once
(emulefts45): each is a thread, and there was no cap. Past it a new connection waits to be
accepted, as on a loaded server, and is served once another ends."""
from __future__ import annotations

import socket
import time

from drivestage.drive import connect
from drivestage.emulator import Emulator
from drivestage.emulator.server import MAX_CONNECTIONS


def _ask(sock: socket.socket, port: int, tag: str) -> None:
    sock.sendall(f"GET /drive/v2/about?tag={tag} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                 "Authorization: Bearer t\r\n\r\n".encode())


def _status(sock: socket.socket) -> int:
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before an answer"
        head += chunk
    return int(head.split(b" ", 2)[1])


def _logged(emu: Emulator, tag: str) -> bool:
    return any(r.query.get("tag") == tag for r in emu.requests)


def test_connections_past_the_cap_wait_to_be_accepted_and_are_then_served(tmp_path):
    assert Emulator.max_connections == MAX_CONNECTIONS == 256
    emu = Emulator(data_dir=str(tmp_path / "d"))
    emu.max_connections = 2
    with emu:
        held = [socket.create_connection((emu.host, emu.port), timeout=10) for _ in range(2)]
        for i, sock in enumerate(held):
            _ask(sock, emu.port, f"held{i}")
            assert _status(sock) == 200    # served, then idle on a kept-alive connection
        late = socket.create_connection((emu.host, emu.port), timeout=10)   # (the backlog)
        _ask(late, emu.port, "late")
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline and not _logged(emu, "late"):
            time.sleep(0.01)
        assert not _logged(emu, "late")    # not accepted while two connections are open
        held[0].close()                    # one ends: the late one is accepted and served
        assert _status(late) == 200 and _logged(emu, "late")
        late.close()
        held[1].close()
        # A client (httplib2) meanwhile: served as usual.
        assert connect(api_root=emu.url, token="t").service.about().get().execute()["kind"] \
            == "drive#about"
    # stop() ended with a connection waiting at the cap too (no hang): the next test's
    # emulator starts anew.
    emu = Emulator(data_dir=str(tmp_path / "e"))
    emu.max_connections = 1
    with emu:
        first = socket.create_connection((emu.host, emu.port), timeout=10)
        _ask(first, emu.port, "first")
        assert _status(first) == 200
        waiting = socket.create_connection((emu.host, emu.port), timeout=10)
        _ask(waiting, emu.port, "waiting")
        began = time.monotonic()
    assert time.monotonic() - began < 5
    first.close()
    waiting.close()
