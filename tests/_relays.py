"""The parts the tests' own proxies and relays share (dups49): a loopback listener that serves
each connection in a thread (:class:`Listening`), the read of a request's head
(:func:`read_head`), the byte pump of a tunnel (:func:`pump`) and the shutting of
sockets whose readers must wake (:func:`shut`).

Each proxy test keeps what its proxy answers (a 400 to TLS, a reply of its own, a SOCKS5
handshake, a TLS that breaks); what they all did alike (listen, accept until closed, copy
bytes both ways and shut both ends) is here once.
"""
from __future__ import annotations

import socket
import struct
import threading
from typing import Optional

#: The end of a request's head.
END = b"\r\n\r\n"


class Listening:
    """A listener on ``host`` (an IPv6 one for ``"::1"``), a random port, whose connections
    each get ``self._serve`` in a thread; ``with`` starts it, and its end closes the
    listener, shuts every socket kept in ``self._socks`` (accepted ones are) and waits for
    the threads (10 s each). ``url`` is ``scheme://host:port``."""

    scheme = "http"

    def __init__(self, host: str = "127.0.0.1") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.create_server((host, 0), family=family)
        self.port = self._listener.getsockname()[1]
        self.url = f"{self.scheme}://{host}:{self.port}"
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []

    def __enter__(self):
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self._listener.shutdown(socket.SHUT_RDWR)   # (wakes its accept)
        self._listener.close()
        shut(*self._socks)
        for t in list(self._threads):
            t.join(10)
        for sock in self._socks:
            sock.close()

    def _spawn(self, target, *args, **kwargs) -> None:
        t = threading.Thread(target=target, args=args, kwargs=kwargs, daemon=True)
        self._threads.append(t)
        t.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._socks.append(client)
            self._spawn(self._serve, client)

    def _serve(self, client: socket.socket) -> None:
        raise NotImplementedError


def read_head(sock: socket.socket) -> bytes:
    """What ``sock`` sends up to the end of a head (:data:`END`) or until it closes (then
    without that end), 4 KiB a read: bytes after the end may come with it."""
    head = b""
    while END not in head:
        data = sock.recv(4096)
        if not data:
            break
        head += data
    return head


def pump(src: socket.socket, dst: socket.socket, *, kept: Optional[bytearray] = None,
         limit: Optional[int] = None) -> None:
    """Copy what ``src`` sends to ``dst`` until either end closes or fails (then ``limit``
    bytes, where given: the rest dropped), then shut both sockets down, which ends the pump
    the other way too; ``kept`` gets every byte copied."""
    sent = 0
    try:
        while data := src.recv(65536):
            if limit is not None and sent + len(data) >= limit:
                dst.sendall(data[:max(0, limit - sent)])
                break
            if kept is not None:
                kept += data
            dst.sendall(data)
            sent += len(data)
    except OSError:
        pass
    shut(src, dst)


def shut(*socks: socket.socket) -> None:
    """Shut each socket down both ways (what blocks on it wakes), one already closed or
    gone passed over; none is closed."""
    for sock in socks:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def socks5_connect(relay: Listening, client: socket.socket) -> None:
    """The end of a SOCKS5 handshake on ``client`` (its method chosen, its login taken): the
    CONNECT request read, the connection made, success answered, and the bytes carried both
    ways until either side ends (``relay`` keeps the upstream socket and the pump's thread)."""
    _, _, _, kind = client.recv(4)
    host = socket.inet_ntoa(client.recv(4)) if kind == 1 \
        else client.recv(client.recv(1)[0]).decode()
    port = struct.unpack(">H", client.recv(2))[0]
    upstream = socket.create_connection((host, port))
    relay._socks.append(upstream)
    client.sendall(b"\x05\x00\x00\x01" + socket.inet_aton("127.0.0.1") + b"\x00\x00")
    relay._spawn(pump, client, upstream)
    pump(upstream, client)
