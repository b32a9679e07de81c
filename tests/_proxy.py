"""A small mutating HTTP proxy for tests: a hostile or broken server in front of the emulator.

Requests are forwarded unchanged (the ``Host`` header included, so the emulator's absolute
URLs - resumable-upload ``Location``, ``downloadUrl`` - keep pointing at the proxy). A rule
picks requests by method and path/query regex and rewrites the emulator's answer: a body that
never ends, a body that trickles, a page token that repeats, an upload that never progresses.
The proxy counts the requests each rule saw, so tests bound a client's behaviour by requests,
not by wall-clock guesses.
"""
from __future__ import annotations

import http.client
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterable, Optional
from urllib.parse import urlsplit

#: ``(status, headers, body)`` of the emulator's answer -> what the client gets.
Mutation = Callable[[int, dict, bytes], "Reply"]


@dataclass
class Reply:
    """An answer for the client; ``body`` may be endless; ``pace`` seconds between chunks."""

    status: int
    headers: dict
    body: Iterable[bytes] = ()
    pace: float = 0.0


@dataclass
class Rule:
    method: str
    pattern: "re.Pattern[str]"
    mutate: Mutation
    times: Optional[int] = None     # None: every matching request
    forward: bool = True            # False: answer without asking the emulator at all
    seen: int = 0


@dataclass
class Proxy:
    """``with Proxy(emulator.url) as proxy: ...``; point the client at ``proxy.url``."""

    upstream: str
    rules: list = field(default_factory=list)
    rewrites: list = field(default_factory=list)   # (regex, replacement) on forwarded paths
    manglers: list = field(default_factory=list)   # (method, regex, fn) on forwarded bodies
    requests: list = field(default_factory=list)   # (method, path-with-query) in order
    tls: Optional[tuple] = None    # (certificate file, key file): serve https
    dropped: set = field(default_factory=set)   # request headers (lower case) not forwarded

    def __post_init__(self) -> None:
        parts = urlsplit(self.upstream)
        self._up_host, self._up_port = parts.hostname or "127.0.0.1", parts.port or 80
        self._lock = threading.Lock()
        self._server: Optional[ThreadingHTTPServer] = None

    # -- control
    def on(self, method: str, pattern: str, mutate: Mutation, times: Optional[int] = None,
           *, forward: bool = True) -> Rule:
        """Rewrite answers to ``method`` requests whose path+query matches ``pattern``
        (with ``forward=False`` the emulator never sees them: ``mutate(0, {}, b"")``)."""
        rule = Rule(method.upper(), re.compile(pattern), mutate, times, forward)
        with self._lock:
            self.rules.append(rule)
        return rule

    def rewrite(self, pattern: str, replacement: str) -> None:
        """Forward paths with ``pattern`` replaced (the client still sees its own request)."""
        with self._lock:
            self.rewrites.append((re.compile(pattern), replacement))

    def mangle(self, method: str, pattern: str, fn: Callable[[bytes], bytes]) -> None:
        """Forward request bodies of matching requests as ``fn(body)`` (e.g. flip a byte of
        an upload chunk: the server then stores other bytes than the client sent)."""
        with self._lock:
            self.manglers.append((method.upper(), re.compile(pattern), fn))

    def drop(self, header: str) -> None:
        """Forward no ``header`` of any request (a proxy that drops ``If-Match``: lease49)."""
        with self._lock:
            self.dropped.add(header.lower())

    def count(self, method: str, pattern: str = "") -> int:
        """Requests seen so far with this method whose path+query matches ``pattern``."""
        rx = re.compile(pattern)
        with self._lock:
            return sum(1 for m, p in self.requests if m == method.upper() and rx.search(p))

    @property
    def url(self) -> str:
        assert self._server is not None
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}/"

    def start(self) -> "Proxy":
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes: without TCP_NODELAY each answer
            # waited ~40 ms for the client's delayed ACK (Nagle), as the emulator's did.
            disable_nagle_algorithm = True

            def log_message(self, *args) -> None:  # quiet
                pass

            def _any(self) -> None:
                proxy._handle(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address) -> None:
                # A client hanging up on a hostile answer is what these tests do; the
                # default prints a traceback into the stderr of the command under test.
                pass

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "Proxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- the work
    def _rule_for(self, method: str, path: str) -> Optional[Rule]:
        with self._lock:
            self.requests.append((method, path))
            for rule in self.rules:
                if rule.method == method and rule.pattern.search(path) and (
                        rule.times is None or rule.seen < rule.times):
                    rule.seen += 1
                    return rule
        return None

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        rule = self._rule_for(h.command, h.path)
        if rule is not None and not rule.forward:
            self._send(h, rule.mutate(0, {}, b""))
            return
        conn = http.client.HTTPConnection(self._up_host, self._up_port, timeout=60)
        try:
            headers = {k: v for k, v in h.headers.items()
                       if k.lower() not in ("connection", "keep-alive", "proxy-connection")
                       and k.lower() not in self.dropped}
            path = h.path
            with self._lock:
                for rx, repl in self.rewrites:
                    path = rx.sub(repl, path)
                for method, rx, fn in self.manglers:
                    if method == h.command and rx.search(h.path) and body:
                        body = fn(body)
            conn.request(h.command, path, body=body or None, headers=headers)
            resp = conn.getresponse()
            status, resp_headers, data = resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()
        if rule is None:
            reply = Reply(status, resp_headers, [data])
        else:
            reply = rule.mutate(status, resp_headers, data)
        self._send(h, reply)

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, reply: Reply) -> None:
        drop = ("transfer-encoding", "connection", "keep-alive", "content-length")
        if any(k.lower() == "date" for k in reply.headers):
            # A proxy forwards the origin's Date (RFC 9110 6.6.1), adding its own only where
            # none came: send_response's own went first, and a client read the proxy's clock.
            h.send_response_only(reply.status)
            h.send_header("Server", h.version_string())
        else:
            h.send_response(reply.status)
        for k, v in reply.headers.items():
            if k.lower() not in drop:
                h.send_header(k, v)
        length = reply.headers.get("Content-Length") or reply.headers.get("content-length")
        if length is not None:
            h.send_header("Content-Length", str(length))
        else:
            h.send_header("Connection", "close")  # the body ends when the connection does
            h.close_connection = True
        h.end_headers()
        try:
            for chunk in reply.body:
                h.wfile.write(chunk)
                h.wfile.flush()
                if reply.pace:
                    time.sleep(reply.pace)
        except (BrokenPipeError, ConnectionResetError, OSError):
            h.close_connection = True


# --------------------------------------------------------------------------- mutations

def endless(status: int, headers: dict, body: bytes) -> Reply:
    """The same headers, but no length and a body that never ends (1 MiB blocks)."""
    block = (body[:1] or b"x") * (1 << 20)

    def forever():
        while True:
            yield block

    return Reply(status, {k: v for k, v in headers.items() if k.lower() != "content-length"},
                 forever())


def oversized(factor: int) -> Mutation:
    """A body ``factor`` times longer than the emulator's, with a Content-Length to match."""
    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        out = {k: v for k, v in headers.items() if k.lower() != "content-length"}
        out["Content-Length"] = str(len(body) * factor)
        return Reply(status, out, (body for _ in range(factor)))  # never whole in memory
    return mutate


def trickle(pace: float) -> Mutation:
    """The emulator's answer, one byte every ``pace`` seconds."""
    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        return Reply(status, headers, (body[i:i + 1] for i in range(len(body))), pace=pace)
    return mutate


def held_half(reached: threading.Event, gate: threading.Event, wait: float = 60) -> Mutation:
    """The answer without its length (it ends with its connection: ``Connection: close``):
    its first half, then ``reached`` set and the rest held until ``gate`` (``wait`` s at
    most)."""
    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        def parts():
            yield body[:len(body) // 2]
            reached.set()
            gate.wait(wait)
            yield body[len(body) // 2:]
        return Reply(status, {k: v for k, v in headers.items()
                              if k.lower() != "content-length"}, parts())
    return mutate


REPEATED_TOKEN = "the-same-token"


def repeat_page_token(status: int, headers: dict, body: bytes) -> Reply:
    """A listing page that always says there is a next page, with the same token (use with
    ``proxy.rewrite("&pageToken=" + REPEATED_TOKEN, "")`` so that token gets the first page)."""
    import json

    obj = json.loads(body)
    obj["nextPageToken"] = REPEATED_TOKEN
    data = json.dumps(obj).encode()
    out = {k: v for k, v in headers.items() if k.lower() != "content-length"}
    out["Content-Length"] = str(len(data))
    return Reply(status, out, [data])


def flip_first_byte(body: bytes) -> bytes:
    """A body with its first byte changed (same length)."""
    return bytes([body[0] ^ 0xFF]) + body[1:]


def no_progress_308(status: int, headers: dict, body: bytes) -> Reply:
    """Every upload chunk answered "resume incomplete" with nothing kept."""
    return Reply(308, {"Content-Length": "0"}, [b""])


def pushed_meanwhile(store, folder: str, paths: Callable[[], Iterable[str]], *,
                     cut: bool = False) -> Mutation:
    """Another machine pushes ``paths()`` into ``folder`` (each in place of its same-named
    file, in that order) while the answer passes by; ``cut``: that answer then breaks off
    halfway (the rest of a download comes from the new version)."""
    import os

    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        target = store.resolve(folder)
        for path in paths():
            old = store.resolve(f"{folder}/{os.path.basename(path)}")
            store.upload(path, target, old.name, replace=old)
        if not cut:
            return Reply(status, headers, [body])
        kept = {k: v for k, v in headers.items() if k.lower() != "content-length"}
        return Reply(status, kept, [body[:len(body) // 2]])
    return mutate


def when_sending(proxy, act) -> list:
    """Run ``act`` once, as a push's first upload starts (after its plan): what another
    machine does meanwhile. The list gets ``act``'s result once it ran."""
    done: list = []
    once = threading.Lock()

    def meanwhile(status, headers, body):
        with once:   # (uploads start in parallel: the other machine acts once)
            if not done:
                done.append(act())
        return Reply(status, headers, [body])
    proxy.on("POST", r"uploadType=resumable", meanwhile)
    return done
