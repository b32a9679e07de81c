"""Uploads leave room on the emulator's disk (emulefts46): without a quota (the default) an
endless simple upload was written until the disk was full. Now one that would leave less
than ``Emulator.min_free_bytes`` free (default: 1 GiB or a tenth of the file system) is
refused as Drive refuses an upload past the storage quota, 403 storageQuotaExceeded."""
from __future__ import annotations

import io
import json
import os
import shutil
import socket

import pytest
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaIoBaseUpload

from _tmpfs import small_disk  # noqa: F401 (a fixture)
from _raw_http import sent_for_ever
from drivestage.drive import connect
from drivestage.emulator import Emulator

MiB = 1 << 20


def _upload(emu: Emulator, data: bytes, resumable: bool) -> dict:
    service = connect(api_root=emu.url, token="t").service
    return service.files().insert(body={"title": "f.bin"}, media_body=MediaIoBaseUpload(
        io.BytesIO(data), "application/octet-stream", resumable=resumable)).execute()


def test_the_default_reserve_refuses_what_the_disk_cannot_hold(small_disk):  # noqa: F811
    with Emulator(data_dir=str(small_disk(16 * MiB) / "d")) as emu:
        # 1.6 MiB kept free on a 16 MiB disk: 12 MiB fit, 15 MiB more do not.
        assert _upload(emu, b"a" * MiB, resumable=False)["fileSize"] == str(MiB)
        for resumable in (True, False):
            with pytest.raises(HttpError) as err:
                _upload(emu, b"b" * (15 * MiB), resumable=resumable)
            assert err.value.resp.status == 403, resumable
            reason = json.loads(err.value.content)["error"]["errors"][0]
            assert reason["reason"] == "storageQuotaExceeded", resumable
            assert "lower --min-free-bytes" in reason["message"]
        assert _upload(emu, b"c" * (12 * MiB), resumable=True)["fileSize"] == str(12 * MiB)
        assert sorted(f["fileSize"] for f in emu.files()) == [str(MiB), str(12 * MiB)]
        assert os.listdir(emu.store.upload_dir) == []


def test_an_endless_upload_is_refused_before_the_disk_fills(small_disk):  # noqa: F811
    disk = small_disk(64 * MiB)
    with Emulator(data_dir=str(disk / "d")) as emu:
        emu.min_free_bytes, emu.refusal_drain_bytes = 40 * MiB, 1 * MiB
        sock = socket.create_connection((emu.host, emu.port), timeout=10)
        sock.sendall(f"POST /upload/drive/v2/files?uploadType=media HTTP/1.1\r\n"
                     f"Host: 127.0.0.1:{emu.port}\r\nAuthorization: Bearer t\r\n"
                     f"Transfer-Encoding: chunked\r\n\r\n".encode())
        piece = b"%x\r\n%s\r\n" % (MiB, b"y" * MiB)
        data = b""
        sock.settimeout(12)
        with sent_for_ever(sock, piece, 10):
            try:
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except (socket.timeout, ConnectionResetError):
                pass
        sock.close()
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.split(b" ", 2)[1] == b"403" and b"Connection: close" in head, data[:300]
        assert json.loads(body)["error"]["errors"][0]["reason"] == "storageQuotaExceeded"
        # Checked every 16 MiB, before the piece that reaches the step is written: refused
        # as the 32nd MiB comes (some 31 MiB written: 33 MiB free, less 1 MiB, < 40).
        rec = [r for r in emu.requests if r.query.get("uploadType") == "media"][-1]
        assert 31 * MiB <= rec.bytes_in < 33 * MiB
        assert os.listdir(emu.store.upload_dir) == [] and emu.files() == []
        assert shutil.disk_usage(disk).free > 60 * MiB
        assert emu.wait_idle(10)
