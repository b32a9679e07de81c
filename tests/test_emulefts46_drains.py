"""Answers that ignore a request's body read it within the refusal bounds (emulefts46): a
fault's canned answer and a chunk sent to a completed resumable session read the whole
body first, so an endless (or trickling) one held the thread for good, as a refused
upload's did before emulefts45. A chunked body's trailer is bounded in lines too."""
from __future__ import annotations

import http.client
import json
import socket
import time
from typing import Optional

from _raw_http import answer, parsed, sent_for_ever
from drivestage.emulator import Emulator

MiB = 1 << 20
PIECE = b"%x\r\n%s\r\n" % (64 * 1024, b"y" * 64 * 1024)


def _endless(emu: Emulator, head: str, first: bytes = b"", piece: Optional[bytes] = PIECE,
             seconds: float = 8.0) -> tuple[int, dict, bytes, bool]:
    """Send ``head`` (a request line and headers, chunked), ``first``, then ``piece`` over
    and over (None: nothing more: a body that stops coming) for up to ``seconds``, until the
    emulator closes: (status, the answer's headers, its body, whether the connection ended)."""
    sock = socket.create_connection((emu.host, emu.port), timeout=10)
    sock.sendall(head.encode("latin-1") + b"Transfer-Encoding: chunked\r\n\r\n" + first)
    with sent_for_ever(sock, piece, seconds):
        data, ended = answer(sock, time.monotonic() + seconds + 2)
    sock.close()
    assert data, "no answer: the emulator still reads the body"
    return (*parsed(data), ended)


def _head(emu: Emulator, method: str, target: str) -> str:
    return f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{emu.port}\r\nAuthorization: Bearer t\r\n"


def test_a_faults_canned_answer_reads_the_body_within_the_bound(tmp_path):
    with Emulator(data_dir=str(tmp_path / "d")) as emu:
        emu.refusal_drain_bytes, emu.refusal_drain_seconds = 1 * MiB, 30.0
        emu.faults.inject("POST", "/upload/", status=503, times=None)
        status, headers, body, ended = _endless(
            emu, _head(emu, "POST", "/upload/drive/v2/files?uploadType=media"))
        assert (status, json.loads(body)["error"]["errors"][0]["reason"]) == (503, "backendError")
        assert headers["connection"] == "close" and ended
        rec = emu.requests[-1]
        assert 1 * MiB <= rec.bytes_in < 2 * MiB

        # A body that stops coming: answered once the time bound is out.
        emu.refusal_drain_seconds = 0.5
        began = time.monotonic()
        status, headers, _, ended = _endless(
            emu, _head(emu, "POST", "/upload/drive/v2/files?uploadType=media"),
            b"%x\r\n%s\r\n" % (1000, b"z" * 1000), piece=None, seconds=6)
        assert status == 503 and headers["connection"] == "close" and ended
        assert 0.5 <= time.monotonic() - began < 5
        assert emu.files() == []
        assert emu.wait_idle(10)


def test_a_chunk_to_a_completed_session_reads_the_body_within_the_bound(tmp_path):
    with Emulator(data_dir=str(tmp_path / "d")) as emu:
        emu.refusal_drain_bytes, emu.refusal_drain_seconds = 1 * MiB, 30.0
        conn = http.client.HTTPConnection(emu.host, emu.port, timeout=10)
        conn.request("POST", "/upload/drive/v2/files?uploadType=resumable", b'{"title": "a.txt"}',
                     {"Authorization": "Bearer t", "Content-Type": "application/json",
                      "X-Upload-Content-Length": "3"})
        resp = conn.getresponse()
        resp.read()
        location = resp.getheader("Location")
        target = location[location.index("/upload/"):]
        conn.request("PUT", target, b"abc", {"Authorization": "Bearer t",
                                             "Content-Range": "bytes 0-2/3"})
        resp = conn.getresponse()
        done = json.loads(resp.read())
        assert resp.status == 200 and done["md5Checksum"] == "900150983cd24fb0d6963f7d28e17f72"
        conn.close()

        # The same chunk again, its body endless: the file's answer, after the bound.
        status, headers, body, ended = _endless(emu, _head(emu, "PUT", target)
                                                + "Content-Range: bytes 0-2/3\r\n")
        assert status == 200 and json.loads(body)["id"] == done["id"]
        assert headers["connection"] == "close" and ended
        assert 1 * MiB <= emu.requests[-1].bytes_in < 2 * MiB
        assert [(f["title"], f["md5Checksum"]) for f in emu.files()] == \
            [("a.txt", "900150983cd24fb0d6963f7d28e17f72")]
        assert emu.wait_idle(10)


def test_a_chunked_bodys_endless_trailer_is_refused(tmp_path):
    with Emulator(data_dir=str(tmp_path / "d")) as emu:
        status, headers, body, ended = _endless(
            emu, _head(emu, "POST", "/drive/v2/files") + "Content-Type: application/json\r\n",
            b"2\r\n{}\r\n0\r\n", piece=b"X-Trailer: y\r\n" * 64)
        assert (status, json.loads(body)["error"]["message"]) == \
            (400, "Malformed chunked request body: too many trailer lines.")
        assert headers["connection"] == "close" and ended
        assert emu.files() == []
        assert emu.wait_idle(10)
