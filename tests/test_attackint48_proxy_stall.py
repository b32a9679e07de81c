"""An ``https://`` proxy that stops reading a tunnel mid-upload (attackint48): the
connection's send times out and it closes its end; the thread that carried its bytes to the
proxy's TLS (proxy_tls._carry) then waited, with no bound, for the proxy to take what it still
held: that thread, its TLS socket and up to 256 KiB stayed for the life of the process, one
more at each retry of the upload (a mirror or a trainer behind a proxy that stalls now and
then piled them up). Now what a connection already gone sent waits at most its timeout."""
from __future__ import annotations

import socket
import ssl
import threading
import types

from drivestage.drive import proxies, proxy_tls
from test_fidelity28_signed import tls  # noqa: F401  (a fixture)

#: The connection's timeout here (the pump's bound, once the connection is gone).
TIMEOUT = 0.3


class _Making:
    """What ``through`` tells which socket is the one being made (sliced's Making)."""

    sock: socket.socket

    def wrapped(self, sock: socket.socket) -> None:
        self.sock = sock


def test_a_proxy_that_stops_reading_an_upload_does_not_keep_its_thread(tls):
    cert, key = tls
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)   # (fills at once)
    held: list[socket.socket] = []
    answered = threading.Event()

    def proxy() -> None:   # (the CONNECT read and answered 200; then nothing more read)
        raw, _ = listener.accept()
        tunnel = context.wrap_socket(raw, server_side=True)
        held.append(tunnel)
        head = b""
        while b"\r\n\r\n" not in head:
            head += tunnel.recv(4096)
        tunnel.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        answered.set()
    server = threading.Thread(target=proxy, daemon=True)
    server.start()
    before = set(threading.enumerate())
    sock = socket.create_connection(listener.getsockname())
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    sock.settimeout(TIMEOUT)
    https = proxies.Proxy(kind=3, host="127.0.0.1", port=listener.getsockname()[1], user=None,
                          password=None, rdns=True, variable="HTTPS_PROXY", tls=True)
    conn = types.SimpleNamespace(host="www.googleapis.com", port=443, ca_certs=cert,
                                 disable_ssl_certificate_validation=False)
    try:
        near = proxy_tls.through(conn, _Making(), sock, https, TIMEOUT)
        assert answered.wait(10)
        [pump] = [t for t in set(threading.enumerate()) - before
                  if t.name == "drivestage-proxy-tls"]
        sent = 0
        try:   # (an upload's body, until the stalled proxy makes its send time out)
            while True:
                sent += near.send(b"x" * 65536)
        except socket.timeout:
            pass
        assert sent >= 256 * 1024
        near.close()   # (as httplib2 does with a connection whose send timed out)
        pump.join(10)
        assert not pump.is_alive(), "the pump outlived its connection, the proxy stalled"
    finally:
        for tunnel in held:   # (the old code's pump then ends: its proxy is gone)
            tunnel.close()
        listener.close()
        server.join(10)
