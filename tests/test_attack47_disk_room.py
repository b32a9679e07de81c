"""The disk reserve (``min_free_bytes``) holds for uploads at once, not only one by one: each
upload's start was checked against the free space alone, so two uploads of 60 MiB started
together with 100 MiB of room above the reserve both passed, and both wrote (a one-off run
with 15 MiB each and 20 MiB of room: 200, 200, 30 MiB written). An upload under way now
keeps what it declared promised until its request ends, and a start that does not fit
beside it is refused: 403 storageQuotaExceeded, as Drive refuses one past the quota.
Nothing large is written: the two bodies are left unsent (attack47)."""
from __future__ import annotations

import json
import select
import shutil
import socket

from drivestage.emulator import Emulator

MiB = 1 << 20


def test_two_uploads_at_once_that_do_not_both_fit_the_room_are_not_both_taken(tmp_path):
    with Emulator(data_dir=str(tmp_path / "d")) as emu:
        emu.refusal_drain_seconds = 0.2    # (the refused one's body: not waited for)
        free = shutil.disk_usage(emu.store.upload_dir).free
        emu.min_free_bytes = free - 100 * MiB
        socks = []
        for _ in range(2):
            sock = socket.create_connection((emu.host, emu.port), timeout=10)
            sock.sendall(b"POST /upload/drive/v2/files?uploadType=media HTTP/1.1\r\n"
                         b"Host: 127.0.0.1\r\nAuthorization: Bearer t\r\n"
                         b"Content-Type: application/octet-stream\r\n"
                         + f"Content-Length: {60 * MiB}\r\n\r\n".encode() + b"x" * 1024)
            socks.append(sock)
        try:
            answered, _, _ = select.select(socks, [], [], 5)
            assert len(answered) == 1, "both uploads of 60 MiB taken with 100 MiB of room"
            head, _, body = answered[0].recv(65536).partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 403"), head
            while len(body) < int(next(v for k, v in (
                    line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
                    if k.lower() == b"content-length")):
                body += answered[0].recv(65536)
            assert json.loads(body)["error"]["errors"][0]["reason"] == "storageQuotaExceeded"
            other = socks[1 - socks.index(answered[0])]
            assert select.select([other], [], [], 0.3)[0] == []   # (still taking its body)
        finally:
            for sock in socks:
                sock.close()
