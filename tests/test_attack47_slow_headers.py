"""A request whose line and headers trickle in, a byte at a time, each within the idle
timeout: ``idle_timeout`` bounded each wait for a byte, not the header block, so such a
client (slowloris) held a thread of the emulator, and one of its ``max_connections``, for as
long as it went on (attack47: a byte every 0.1 s under a 0.4 s timeout, still open after
3 s). The header block must now arrive within the idle timeout of the connection's last
request (or its start)."""
from __future__ import annotations

import select
import socket
import time

from drivestage.emulator import Emulator


def test_a_header_block_that_trickles_in_is_cut_at_the_idle_timeout(tmp_path):
    with Emulator(data_dir=str(tmp_path / "drive")) as emu:
        emu.idle_timeout = 0.4
        sock = socket.create_connection((emu.host, emu.port), timeout=10)
        sock.sendall(b"GET /drive/v2/about HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        start = time.monotonic()
        closed_after = None
        while time.monotonic() - start < 3.0:     # (7 idle timeouts)
            readable, _, _ = select.select([sock], [], [], 0.1)   # (the trickle's pace)
            if readable:
                try:
                    got = sock.recv(1)
                except ConnectionResetError:
                    got = b""
                assert got == b"", got    # (no answer: the request never ended)
                closed_after = time.monotonic() - start
                break
            try:
                sock.sendall(b"a")
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.monotonic() - start
                break
        sock.close()
        assert closed_after is not None, "still open after 3 s of a byte every 0.1 s"
        assert closed_after < 2.0, closed_after
