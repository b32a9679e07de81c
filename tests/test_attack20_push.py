"""Attacks on today's ``drivestage push`` changes: the halt once one upload gave up, and the
folder trashed while a push wrote into it. A hostile proxy in front of the emulator, a dedupe
run in another process at one request of the push. Each test asserts what is live under the
path (bytes, md5), what is in the trash, what was deleted for good, and the exit code."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from _drive_state import live_md5s
from _proxy import Proxy
from test_attack20_bounds import _one_error_line, _run, _unavailable


@pytest.fixture
def proxy(emulator):
    with Proxy(emulator.url) as p:
        yield p


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# --- 1. one file that Drive fails for ever -------------------------------------------------

@pytest.mark.parametrize("jobs", [1, 3])
def test_one_file_drive_fails_for_ever_does_not_stop_the_rest(emulator, proxy, tmp_path, jobs):
    """Drive answers 500/503 to every update of one file (PyDrive's "HttpError 500 when
    overwriting files", a session Drive broke) and takes every other upload. The push gave up
    on the first file, then started no other: every push of the log folder stopped at the
    same file, and a new checkpoint behind it never reached Drive. The rest must go; the
    error names the one file (exit 1)."""
    emulator.add_file("runs/a/a_events.out", b"old events")
    broken = emulator.find("runs/a/a_events.out")["id"]
    src = tmp_path / "run"
    src.mkdir()
    (src / "a_events.out").write_bytes(b"new events")
    files = {f"f{i}.txt": b"new %d" % i for i in range(5)}
    files["epoch_002.pt"] = os.urandom(3000)
    for name, data in files.items():
        (src / name).write_bytes(data)
    proxy.on("PUT", rf"^/upload/drive/v2/files/{broken}\?", _unavailable, forward=False)
    res = _run(proxy, tmp_path, "push", str(src), "drive:runs/a", "--jobs", str(jobs))
    line = _one_error_line(res)
    assert "still failing after 3 attempts" in line and "a_events.out" in line, line
    want = {n: [md5(d)] for n, d in files.items()}
    want["a_events.out"] = [md5(b"old events")]
    assert live_md5s(emulator, "runs/a") == want
