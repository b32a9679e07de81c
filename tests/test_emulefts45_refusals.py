"""A refused upload's body is drained within a bound (emulefts45): the emulator read a
refused request's whole body before it answered, so an endless chunked body, or one that
stopped coming, held its thread for good. Within the bound clients still get the refusal
as Drive's typed error."""
from __future__ import annotations

import io
import json
import os
import socket
import time

import pytest
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaIoBaseUpload

from _raw_http import answer, sent_for_ever
from drivestage.drive import connect
from drivestage.emulator import Emulator
from drivestage.emulator.routes_media import QUOTA_CHECK_STEP

MiB = 1 << 20


def _refused(data: bytes) -> tuple[int, str, str]:
    head, body = data.split(b"\r\n\r\n", 1)
    err = json.loads(body)["error"]
    return int(head.split(b" ", 2)[1]), err["errors"][0]["reason"], head.decode("latin-1")


def _endless(emu: Emulator, kind: str, ctype: str, first: bytes) -> tuple[int, str, str, int]:
    """Send an upload of ``kind`` whose chunked body never ends (``first``, then 64 KiB
    pieces until the emulator closes the connection): (status, reason, answer's head, body
    bytes the emulator read), the connection checked ended."""
    sock = socket.create_connection((emu.host, emu.port), timeout=10)
    sock.sendall(f"POST /upload/drive/v2/files?uploadType={kind} HTTP/1.1\r\n"
                 f"Host: 127.0.0.1:{emu.port}\r\nAuthorization: Bearer t\r\n"
                 f"Content-Type: {ctype}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
                 + (b"%x\r\n%s\r\n" % (len(first), first) if first else b""))
    piece = b"%x\r\n%s\r\n" % (64 * 1024, b"y" * 64 * 1024)
    with sent_for_ever(sock, piece, 20):
        data, ended = answer(sock, time.monotonic() + 15)
    sock.close()
    assert ended, kind
    rec = [r for r in emu.requests if r.query.get("uploadType") == kind][-1]
    return (*_refused(data), rec.bytes_in)


def test_a_refused_upload_is_answered_after_a_bounded_drain(tmp_path):
    with Emulator(data_dir=str(tmp_path / "d"), quota_bytes=1000) as emu:
        emu.refusal_drain_bytes, emu.refusal_drain_seconds = 4 * MiB, 30.0
        # Within the bound: googleapiclient gets Drive's typed refusal, as before.
        service = connect(api_root=emu.url, token="t").service
        with pytest.raises(HttpError) as err:
            service.files().insert(body={"title": "big.bin"}, media_body=MediaIoBaseUpload(
                io.BytesIO(b"x" * (2 * MiB)), "application/octet-stream")).execute()
        assert err.value.resp.status == 403 and "storageQuotaExceeded" in str(err.value)

        # Endless chunked bodies: one refused as its (multipart) metadata is read, one as its
        # bytes pass the quota (both stored whole, or drained, for ever): answered once the
        # bound's 4 MiB more are read, the connection closed, nothing left on disk.
        meta = b"--b\r\nContent-Type: application/json\r\n\r\n{bad\r\n--b\r\n" \
               b"Content-Type: application/octet-stream\r\n\r\n"
        for kind, ctype, first, refusal, most in (
                ("multipart", "multipart/related; boundary=b", meta, (400, "parseError"), 5),
                ("media", "application/octet-stream", b"", (403, "storageQuotaExceeded"),
                 QUOTA_CHECK_STEP // MiB + 5)):
            status, reason, head, bytes_in = _endless(emu, kind, ctype, first)
            assert (status, reason) == refusal and "Connection: close" in head, kind
            assert 4 * MiB <= bytes_in < most * MiB, kind
        assert os.listdir(os.path.join(emu.store.data_dir, "uploads")) == []
        assert emu.files() == []

        # A body that stops coming: answered once the time bound is out.
        emu.refusal_drain_seconds = 1.0
        with socket.create_connection((emu.host, emu.port), timeout=10) as sock:
            began = time.monotonic()   # (before the emulator can start its clock)
            sock.sendall(f"POST /upload/drive/v2/files?uploadType=media HTTP/1.1\r\n"
                         f"Host: 127.0.0.1:{emu.port}\r\nAuthorization: Bearer t\r\n"
                         f"Content-Length: {100 * MiB}\r\n\r\n".encode() + b"z" * 1000)
            data, ended = answer(sock, began + 15)
            assert _refused(data)[:2] == (403, "storageQuotaExceeded") and ended
            assert 1.0 <= time.monotonic() - began < 10
        assert emu.wait_idle(10)   # no thread left holding either
