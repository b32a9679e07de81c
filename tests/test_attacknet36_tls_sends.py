"""net36 made the wait for an upload's answer begin once the request's bytes were
acknowledged (``interrupts.delivered``): the body still in the send buffers (up to 4 MiB)
no longer counts against the answer's timeout. ``delivered`` also returns as soon as the
socket is readable, taken as "an answer came". Over TLS 1.3 (Drive's) the server sends its
session tickets once the handshake is done; on a connection whose first request has a body
(a new connection after Drive closed an idle one, a retry's) they sit unread in the receive
buffer: the socket is readable at once, the wait returned at once, and the slow upload timed
out as before net36, while its bytes moved (found by attacknet36). Bytes readable already
are no answer now: only more of them are.

Through drivestage's own connection classes (httplib2's, made and sent on in pieces) to a
server in this file that reads a request's body at 1 MiB/s in 16 KiB reads through a small
receive buffer, then answers 200; over plain HTTP (a guard: net36's fix) and over TLS 1.3.
The only timing is the server's pace and a small HTTP timeout.
"""
from __future__ import annotations

import socket
import ssl
import threading
import time

import pytest

from test_conn35_ctrl_c_sweep import tls  # noqa: F401  (a fixture)

PIECE = 16 << 10
#: 2 s of body at 1 MiB/s: four times the 0.5 s timeout, which the answer's wait would end
#: at had it begun as the body was handed to the kernel (4 MiB waited 4 s for the same).
BODY = 2 << 20


class _SlowReader:
    """One connection at a time: a request's head, then its body at ``rate`` bytes a second."""

    def __init__(self, rate: float, ctx: "ssl.SSLContext | None"):
        self.rate, self.ctx, self.got = rate, ctx, 0
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, PIECE)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(4)
        scheme = "https" if ctx else "http"
        self.url = f"{scheme}://127.0.0.1:{self._listener.getsockname()[1]}/upload"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            raw, _ = self._listener.accept()
            conn = self.ctx.wrap_socket(raw, server_side=True) if self.ctx else raw
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(1)
            length = int([ln.split(b":", 1)[1] for ln in head.split(b"\r\n")
                          if ln.lower().startswith(b"content-length:")][0])
            while self.got < length:
                time.sleep(PIECE / self.rate)   # (the pace itself)
                data = conn.recv(min(PIECE, length - self.got))
                if not data:
                    return
                self.got += len(data)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 2\r\n\r\n{}")
            conn.recv(1)   # (until the client hangs up)
        except OSError:
            pass

    def close(self) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        self._thread.join(30)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_slow_body_on_a_fresh_connection_is_sent_while_its_bytes_move(tls, scheme):
    """2 MiB at 1 MiB/s, a 0.5 s timeout, the body the connection's first request: the
    answer comes once the body is read, about 2 s after it was handed to the kernel."""
    from drivestage.drive.connections import bounded_connection, build_http

    ctx = None
    if scheme == "https":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3   # (Drive's; tickets after the handshake)
        ctx.load_cert_chain(*tls)
    server = _SlowReader(1 << 20, ctx)
    http = build_http(timeout=0.5)
    http.ca_certs = tls[0]
    try:
        resp, content = http.request(server.url, "PUT", body=b"x" * BODY,
                                     headers={"Content-Type": "application/octet-stream"},
                                     connection_type=bounded_connection(server.url))
    finally:
        for conn in http.connections.values():
            conn.close()
        server.close()
    assert (resp.status, content, server.got) == (200, b"{}", BODY)


class _EarlyAnswer(_SlowReader):
    """Answers 400 once the request's head is in, and reads none of its body."""

    def _serve(self) -> None:
        try:
            raw, _ = self._listener.accept()
            conn = self.ctx.wrap_socket(raw, server_side=True) if self.ctx else raw
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(1)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 2\r\n\r\n{}")
            self.got = -1
            self._listener.accept()   # (the connection held, unread, until the test ends)
        except OSError:
            pass


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_an_answer_before_the_body_is_read_is_taken_at_once(tls, scheme):
    """A guard of the fix above: a server that answers before it reads the body (what an
    error does) is heard, over TLS too, though its tickets were readable before the answer
    and the body is not acknowledged (the wait would end only at the timeout: 30 s here)."""
    from drivestage.drive.connections import bounded_connection, build_http

    ctx = None
    if scheme == "https":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_cert_chain(*tls)
    server = _EarlyAnswer(1 << 20, ctx)
    http = build_http(timeout=30)
    http.ca_certs = tls[0]
    began = time.monotonic()
    try:
        resp, content = http.request(server.url, "PUT", body=b"x" * (256 << 10),
                                     headers={"Content-Type": "application/octet-stream"},
                                     connection_type=bounded_connection(server.url))
    finally:
        took = time.monotonic() - began
        for conn in http.connections.values():
            conn.close()
        server.close()
    assert (resp.status, content) == (400, b"{}")
    assert took < 20, f"the early answer was read after {took:.0f} s"


class _Stalled(_SlowReader):
    """Reads the request's head, then nothing, and never answers."""

    def _serve(self) -> None:
        try:
            raw, _ = self._listener.accept()
            conn = self.ctx.wrap_socket(raw, server_side=True) if self.ctx else raw
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(1)
            self._listener.accept()   # (held, unread, until the test ends)
        except OSError:
            pass


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_server_that_takes_nothing_more_still_ends_the_request_within_the_timeout(
        tls, scheme):
    """A guard of the fix above: the tickets read, nothing acknowledged and no answer, the
    wait ends after the timeout (0.5 s) without a byte, over TLS too."""
    from drivestage.drive.connections import bounded_connection, build_http

    ctx = None
    if scheme == "https":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_cert_chain(*tls)
    server = _Stalled(1 << 20, ctx)
    http = build_http(timeout=0.5)
    http.ca_certs = tls[0]
    began = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            http.request(server.url, "PUT", body=b"x" * (1 << 20),
                         headers={"Content-Type": "application/octet-stream"},
                         connection_type=bounded_connection(server.url))
    finally:
        took = time.monotonic() - began
        for conn in http.connections.values():
            conn.close()
        server.close()
    assert took < 10, f"a stalled request ended after {took:.0f} s"
