"""An answer in chunked encoding that arrives in pieces, each after a short wait of the main
thread has ended empty (``interrupts.recv_into``): cut inside a chunk's size line, between
it and its data, inside the data, before its CRLF and inside the last chunk, it is read
whole, once, and the connection serves the next request. The server sends each piece once
the client has seen two waits end empty (the waits are counted where they end: the hook
``pool.check`` is called there); nothing is timed."""
from __future__ import annotations

import json
import socket
import threading

import pytest


def _chunked(body: bytes, size: int) -> bytes:
    out = b""
    for i in range(0, len(body), size):
        part = body[i:i + size]
        out += b"%x\r\n" % len(part) + part + b"\r\n"
    return out + b"0\r\n\r\n"


def test_a_chunked_answer_cut_anywhere_between_waits_is_read_whole(monkeypatch):
    from drivestage import interrupts, pool
    from drivestage.drive.connections import bounded_connection, build_http

    monkeypatch.setattr(interrupts, "SLICE", 0.02)
    empty = {"n": 0}
    waited = threading.Condition()
    check = pool.check

    def counted() -> None:
        with waited:
            empty["n"] += 1
            waited.notify_all()
        check()
    monkeypatch.setattr(pool, "check", counted)

    answer = json.dumps({"items": [{"id": f"f{i}", "title": "x" * i} for i in range(40)]})
    stream = _chunked(answer.encode(), 300)
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    # Cuts: in the first size line, after it, inside the data, before a CRLF, in "0\r\n\r\n".
    first_data = stream.index(b"\r\n") + 2
    cuts = sorted({len(head) - 5, len(head) + 1, len(head) + first_data,
                   len(head) + first_data + 100, len(head) + first_data + 300,
                   len(head) + len(stream) - 3})
    wire = head + stream
    listener = socket.create_server(("127.0.0.1", 0))
    served = {"requests": 0}

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            for _ in range(2):
                got = b""
                while b"\r\n\r\n" not in got:
                    got += conn.recv(65536)
                served["requests"] += 1
                at = 0
                for cut in cuts:
                    conn.sendall(wire[at:cut])
                    at = cut
                    with waited:
                        seen = empty["n"]
                        assert waited.wait_for(lambda: empty["n"] >= seen + 2, 30)
                conn.sendall(wire[at:])
    server = threading.Thread(target=serve, daemon=True)
    server.start()
    url = "http://127.0.0.1:%d/drive/v2/files" % listener.getsockname()[1]
    http = build_http(30.0)
    try:
        for _ in range(2):
            before = empty["n"]
            resp, content = http.request(url, connection_type=bounded_connection(url))
            assert resp.status == 200 and content == answer.encode()
            assert empty["n"] - before >= 2 * len(cuts), "the pieces did not come apart"
    finally:
        http.close()
        server.join(30)
        listener.close()
    assert served["requests"] == 2, "the second request needed a connection of its own"
