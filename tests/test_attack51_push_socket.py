"""attack51: a socket put at the name of a file a push sends, after the push looked at it.

pushfollow46 made a link or a FIFO planted between the push's check and the upload's open
say so (``… became a FIFO, socket or device while the push ran …``, exit 1). A socket
cannot be opened at all (ENXIO): the push said ``could not read …/train.log (No such device
or address)``, as for a disk's failure, and told the user to check the disk. It is said as a
FIFO is now (``localfs.open_regular``). Planted as pushfollow46's test plants its link: at
the files.get of the copy updated in place."""
from __future__ import annotations

import os
import socket

import pytest

from _cli import run
from _drive_state import live_md5s
from _checkpoints import md5
from _swaps import once_at, pushed_log

FIRST = b"step 1 loss 0.5\n" * 100


@pytest.mark.timeout(60)
def test_a_socket_planted_between_the_check_and_the_upload_is_said_as_a_fifo(
        emulator, penv, proxy, tmp_path):
    src, log = pushed_log(tmp_path, FIRST)
    with open(log, "ab") as fh:
        fh.write(b"step 2 loss 0.4\n")
    held = socket.socket(socket.AF_UNIX)

    def plant() -> None:   # (bound by its folder's descriptor: AF_UNIX's 108 bytes)
        os.unlink(log)
        fd = os.open(src, os.O_RDONLY)
        try:
            held.bind(f"/proc/self/fd/{fd}/train.log")
        finally:
            os.close(fd)

    log_id = emulator.find("runs/a/train.log")["id"]
    planted = once_at(proxy, "GET", rf"^/drive/v2/files/{log_id}\?", plant)
    try:
        code, _, err = run("push", src, "drive:runs/a", "--jobs", "1")
    finally:
        held.close()
    assert planted
    assert live_md5s(emulator, "runs/a") == {"train.log": [md5(FIRST)]}
    assert code == 1, err
    assert err.strip().splitlines()[-1] == (
        f"Error: {log} became a FIFO, socket or device while the push ran (a file when it "
        "began); not sent again: push again once it is a file"), err
