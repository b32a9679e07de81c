"""What a request may make the emulator read, hold or parse is bounded (emulefts46): a batch
body of many tiny parts (minutes of the email parser's CPU), a multipart upload whose first
boundary never comes (read for as long as it came), and, pinned here, the request line and
headers (http.server's bounds: 414, 431)."""
from __future__ import annotations

import http.client
import json
import os
import socket

from _raw_http import parsed, sent_for_ever
from drivestage.emulator import Emulator
from drivestage.emulator.batch import MAX_DELIMITERS

MiB = 1 << 20


def _exchange(emu: Emulator, head: bytes, body: bytes = b"", endless: bytes = b"",
              seconds: float = 8.0) -> tuple[int, dict, bytes, bool]:
    """Send ``head`` and ``body``, then ``endless`` over and over until the emulator closes
    (or ``seconds``): (status, the answer's headers, its body, whether the connection ended)."""
    sock = socket.create_connection((emu.host, emu.port), timeout=10)
    sock.sendall(head + body)
    data, ended = b"", False
    sock.settimeout(seconds + 2)
    with sent_for_ever(sock, endless, seconds):
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    ended = True
                    break
                data += chunk
        except socket.timeout:
            pass
        except ConnectionResetError:
            ended = True
    sock.close()
    assert data, "no answer"
    return (*parsed(data), ended)


def _error(body: bytes) -> tuple[str, str]:
    err = json.loads(body)["error"]
    return err["errors"][0]["reason"], err["message"]


def test_a_batch_of_many_tiny_parts_is_refused_before_it_is_parsed(tmp_path):
    with Emulator(data_dir=str(tmp_path / "d")) as emu:
        body = b"--b\r\nContent-Type: application/http\r\n\r\nGET /drive/v2/about\r\n" * 20_000 \
            + b"--b--\r\n"
        head = (f"POST /batch/drive/v2 HTTP/1.1\r\nHost: 127.0.0.1:{emu.port}\r\n"
                f"Authorization: Bearer t\r\nContent-Type: multipart/mixed; boundary=b\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        status, _, answer, _ = _exchange(emu, head, body)
        assert (status, *_error(answer)) == (
            400, "badRequest", f"A batch request may hold at most 100 calls; this one holds more "
                               f"than {MAX_DELIMITERS} parts.")
        # None of its calls was served.
        assert [r.kind for r in emu.requests] == ["batch"]


def test_a_multipart_upload_without_a_boundary_is_refused_within_a_bound(tmp_path):
    with Emulator(data_dir=str(tmp_path / "d")) as emu:
        emu.refusal_drain_bytes = 1 * MiB
        head = (f"POST /upload/drive/v2/files?uploadType=multipart HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{emu.port}\r\nAuthorization: Bearer t\r\n"
                f"Content-Type: multipart/related; boundary=b\r\n"
                f"Transfer-Encoding: chunked\r\n\r\n").encode()
        status, headers, answer, ended = _exchange(
            emu, head, endless=b"%x\r\n%s\r\n" % (64 * 1024, b"p" * 64 * 1024))
        assert (status, *_error(answer)) == (
            400, "badContent", "Malformed multipart body: no boundary in its first 1 MiB.")
        assert headers["connection"] == "close" and ended
        assert 2 * MiB <= emu.requests[-1].bytes_in < 3 * MiB + 64 * 1024
        assert emu.files() == []
        assert emu.wait_idle(10)


def test_the_request_line_and_headers_are_bounded(tmp_path):
    with Emulator(data_dir=str(tmp_path / "d")) as emu:
        start = f"GET /drive/v2/about HTTP/1.1\r\nHost: 127.0.0.1:{emu.port}\r\n"
        for head, want in (
                # http.server's bounds: 65,536 bytes a line, 100 headers.
                (f"GET /drive/v2/about?q={'a' * 70_000} HTTP/1.1\r\n\r\n", 414),
                (start + f"X-Long: {'a' * 70_000}\r\n\r\n", 431),
                (start + "".join(f"X-{i}: a\r\n" for i in range(101)) + "\r\n", 431)):
            status, headers, answer, ended = _exchange(emu, head.encode())
            assert status == want and headers["connection"] == "close" and ended
            assert json.loads(answer)["error"]["code"] == want
        assert emu.requests == []


def test_upload_sessions_are_kept_up_to_max_upload_sessions(tmp_path):
    with Emulator(data_dir=str(tmp_path / "d")) as emu:
        emu.max_upload_sessions = 3
        conn = http.client.HTTPConnection(emu.host, emu.port, timeout=10)
        auth = {"Authorization": "Bearer t"}

        def start(title: str) -> str:
            conn.request("POST", "/upload/drive/v2/files?uploadType=resumable",
                         json.dumps({"title": title}).encode(),
                         {**auth, "Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            location = resp.getheader("Location")
            return location[location.index("/upload/"):]

        def send(target: str) -> int:
            conn.request("PUT", target, b"abc", {**auth, "Content-Range": "bytes 0-2/3"})
            resp = conn.getresponse()
            resp.read()
            return resp.status

        first, second = start("1"), start("2")
        assert send(second) == 200          # (complete: still kept, and counted)
        later = [start(t) for t in ("3", "4")]
        # Four opened, three kept: the least recently used (the first) is forgotten.
        assert [send(t) for t in [first, *later]] == [404, 200, 200]
        assert len(emu.store.sessions) == 3
        assert sorted(f["title"] for f in emu.files()) == ["2", "3", "4"]
        assert os.listdir(emu.store.upload_dir) == []
        conn.close()
