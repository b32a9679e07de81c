"""An upload of unknown length on a small disk is refused before the disk fills (emul47): its
bytes were checked against the disk's reserve every 16 MiB, more than the default reserve (a
tenth) of a disk under 160 MiB, so such a body filled the disk first and was answered 500
"No space left on device". The step is now a quarter of the reserve (at most 16 MiB)."""
from __future__ import annotations

import json
import os

import pytest

from _tmpfs import small_disk  # noqa: F401 (a fixture)
from test_emulefts46_bounds import _exchange
from drivestage.emulator import Emulator

MiB = 1 << 20


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@pytest.mark.parametrize("kind", ["media", "multipart"])
def test_an_endless_upload_on_a_small_disk_is_refused_before_it_fills(small_disk, kind):  # noqa: F811
    disk = small_disk(32 * MiB)
    with Emulator(data_dir=str(disk / "d")) as emu:   # (the default reserve: 3.2 MiB)
        emu.refusal_drain_bytes = MiB
        ctype, first = "application/octet-stream", b""
        if kind == "multipart":
            ctype = "multipart/related; boundary=b"
            first = _chunk(b"--b\r\nContent-Type: application/json\r\n\r\n{\"title\": \"f\"}\r\n"
                           b"--b\r\nContent-Type: application/octet-stream\r\n\r\n")
        head = (f"POST /upload/drive/v2/files?uploadType={kind} HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{emu.port}\r\nAuthorization: Bearer t\r\n"
                f"Content-Type: {ctype}\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
        status, headers, body, ended = _exchange(emu, head, first, _chunk(b"y" * MiB), seconds=8)
        error = json.loads(body)["error"]
        assert (status, error["errors"][0]["reason"]) == (403, "storageQuotaExceeded"), error
        assert headers["connection"] == "close" and ended
        assert "keeps 3355443 bytes free" in error["message"]
        assert os.listdir(emu.store.upload_dir) == [] and emu.files() == []
        assert emu.wait_idle(10)
