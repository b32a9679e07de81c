"""A small HTTP CONNECT proxy for tests (proxy47): what a corporate proxy is to drivestage.

``with ConnectProxy() as p:`` listens on a random loopback port (``p.url``); each client
connection sends ``CONNECT host:port HTTP/1.1`` and its headers, and the proxy opens a TCP
connection there and copies bytes both ways until either side closes (a tunnel: TLS to
Drive goes through it unread). ``p.tunnels`` counts the tunnels made, ``p.asked`` lists the
request lines and ``p.auth`` the ``Proxy-Authorization`` headers it was sent.

``answer`` makes it refuse instead (``"407 Proxy Authentication Required"``, ``"502 Bad
Gateway"``: that status line, no tunnel); ``hold`` (an ``Event``, never set by the proxy)
makes it read a CONNECT to a target that starts with ``hold_target`` (``held`` set) and
answer nothing (a proxy that hangs; ``gone`` set once the client closed its end, within
30 s); ``cut_after`` closes each
tunnel once that many bytes came back from upstream (a proxy that drops a body midway).
"""
from __future__ import annotations

import socket
import sys
import threading
from typing import Optional

import pytest

from _relays import END, pump, read_head, shut

_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
              "no_proxy", "ALL_PROXY", "all_proxy")


class ConnectProxy:
    def __init__(self, *, answer: Optional[str] = None, hold: Optional[threading.Event] = None,
                 cut_after: Optional[int] = None, hold_target: str = ""):
        self.answer, self.hold, self.cut_after = answer, hold, cut_after
        self.hold_target = hold_target
        self.held, self.gone = threading.Event(), threading.Event()
        self.tunnels = 0
        self.asked: list[str] = []
        self.auth: list[str] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stopping = False

    def __enter__(self) -> "ConnectProxy":
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping = True
        if self.hold is not None:
            self.hold.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)   # (wakes its accept: a close does not)
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            shut(*self._socks)
        for t in list(self._threads):
            t.join(10)
        with self._lock:
            for sock in self._socks:
                sock.close()

    def _spawn(self, target, *args) -> None:
        t = threading.Thread(target=target, args=args, daemon=True, name="test-connect-proxy")
        self._threads.append(t)
        t.start()

    def _kept(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._socks.append(sock)
        return sock

    def _accept(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._spawn(self._serve, self._kept(client))

    def _serve(self, client: socket.socket) -> None:
        try:
            head = read_head(client)
        except OSError:
            return
        if END not in head:
            return
        lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        with self._lock:
            self.asked.append(lines[0])
            self.auth += [line.split(":", 1)[1].strip() for line in lines[1:]
                          if line.lower().startswith("proxy-authorization:")]
        target = lines[0].split(" ")[1] if lines[0].count(" ") >= 2 else ""
        if self.hold is not None and target.startswith(self.hold_target):
            self.held.set()
            self._held_until_gone(client)
            return
        if self.answer is not None:
            body = b"refused by the test's proxy\n"
            client.sendall(f"HTTP/1.1 {self.answer}\r\nContent-Length: {len(body)}\r\n"
                           "Connection: close\r\n\r\n".encode() + body)
            return
        method, target, _ = lines[0].split(" ")
        host, port = target.rsplit(":", 1)
        assert method == "CONNECT", lines[0]
        upstream = self._kept(socket.create_connection((host, int(port)), timeout=30))
        with self._lock:
            self.tunnels += 1
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self._spawn(pump, client, upstream)
        pump(upstream, client, limit=self.cut_after)

    def _held_until_gone(self, client: socket.socket) -> None:
        """Answer nothing; :attr:`gone` set once the client's end closes (30 s at most)."""
        client.settimeout(30)
        try:
            while client.recv(4096):
                pass
        except socket.timeout:
            return
        except OSError:   # (a reset: its end closed too)
            pass
        self.gone.set()


@pytest.fixture
def behind(emulator, drive_env, local_state, monkeypatch):
    """``behind(proxy)``: the commands in this process reach the emulator through ``proxy``
    (NO_PROXY empty: loopback is not left out), PySocks out of reach."""
    import httplib2

    monkeypatch.setitem(sys.modules, "socks", None)
    monkeypatch.setattr(httplib2, "socks", None)   # (bound as httplib2 was imported)
    for name in _VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DRIVESTAGE_RETRY_JITTER", "0")

    def use(proxy: ConnectProxy, no_proxy: str = "") -> ConnectProxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", no_proxy)
        return proxy
    return use
