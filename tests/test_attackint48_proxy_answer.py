"""An ``https://`` proxy whose TLS breaks while it answers the ``CONNECT`` (attackint48): a
record of its answer that fails its MAC (a flaky middlebox, a proxy's bug), an alert in
place of the answer. The ``ssl.SSLError`` left proxies.tunnel unnamed and ended the pull in
`cannot stage drive:f.bin into DEST: [SSL: DECRYPTION_FAILED_OR_BAD_RECORD_MAC] …; pull into
a folder this user can write` at the first try: a line about the local folder, the proxy
not named, no retry. Now it is the proxy's error, retried, and said of the proxy."""
from __future__ import annotations

import os
import socket
import ssl

import pytest

from _cli import run
from _connect_proxy import behind  # noqa: F401  (a fixture)
from _relays import END, Listening, read_head
from test_fidelity28_signed import tls  # noqa: F401  (a fixture)

#: What the proxy writes under its TLS in place of its answer: an application-data record
#: whose MAC fails; an alert record of a type the client cannot take there.
BROKEN = {"bad_record_mac": (b"\x17\x03\x03\x00\x20" + bytes(range(32)),
                             "DECRYPTION_FAILED_OR_BAD_RECORD_MAC"),
          "bad_record_type": (b"\x15\x03\x03\x00\x02\x02\x28", "BAD_RECORD_TYPE")}


class _Breaking(Listening):
    """A proxy that takes TLS, reads the CONNECT, then writes ``record`` raw on its socket."""

    scheme = "https"

    def __init__(self, cert: str, key: str, record: bytes) -> None:
        super().__init__()
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert, key)
        self.record, self.asked = record, 0

    def _serve(self, raw: socket.socket) -> None:
        try:
            tunnel = self._context.wrap_socket(raw, server_side=True)
            if END not in read_head(tunnel):
                return
            self.asked += 1
            plain = socket.socket(fileno=os.dup(tunnel.fileno()))   # (under the TLS)
            try:
                plain.sendall(self.record)
                tunnel.recv(4096)   # (until the client closes)
            finally:
                plain.close()
        except OSError:
            return


@pytest.mark.parametrize("broken", sorted(BROKEN))
def test_an_https_proxy_whose_tls_breaks_in_its_answer_is_said_of_the_proxy(
        emulator, behind, tls, tmp_path, monkeypatch, broken):
    emulator.add_file("f.bin", b"x" * 100)
    record, reason = BROKEN[broken]
    with _Breaking(*tls, record) as proxy:
        behind(proxy)
        monkeypatch.setenv("HTTP_PROXY", f"https://127.0.0.1:{proxy.port}")
        monkeypatch.setenv("DRIVESTAGE_RETRY_BASE", "0.001")
        code, _, err = run("pull", "drive:f.bin", str(tmp_path / "in"), "-q")
        asked = proxy.asked
    line = err.splitlines()[-1]
    assert code == 1 and asked == 8, err[-2000:]   # (retried, as a proxy's close is)
    assert line == (
        f"Error: list drive: (the top of My Drive): still failing after 8 attempts (the proxy "
        f"https://127.0.0.1:{proxy.port} (from HTTP_PROXY) broke its TLS while it answered the "
        f"request for a tunnel to 127.0.0.1:{emulator.port} ({reason})); try again later"), line
    assert not (tmp_path / "in" / "f.bin").exists()
