"""The read-back of a replacement's new copy (push: one files.get before the same-named copies
it replaces go, attackserver42) at its two edges: answered with another md5 than the upload's
answer (a lying server, or the file changed on Drive in between), and cut off by a SIGTERM
while awaited. Either way the old copy stays until a push has seen the new one whole, and the
next push replaces it: one copy, the new bytes."""
from __future__ import annotations

import hashlib
import json
import os
import time

import pytest

from _cli import run
from _forkcli import cli_server
from _messages import error_line
from _proxy import Reply
from _sigpush42 import child, ended, live, md5, settled, stale, until


@pytest.fixture(autouse=True)
def _fast(fast_retries):
    """Backoffs of a millisecond."""


@pytest.fixture(scope="session", autouse=True)
def _cli_server():
    """The fork server, started before any test's leak check (tests/_forkcli.py)."""
    return cli_server()


def _replaced(emulator, src) -> tuple[bytes, bytes]:
    """epoch_001.pt pushed to runs/a, then changed in SRC: (old bytes, new bytes)."""
    src.mkdir()
    ckpt = src / "epoch_001.pt"
    old, new = os.urandom(50_000), os.urandom(50_000)
    ckpt.write_bytes(old)
    rc, _, err = run("push", str(src), "drive:runs/a")
    assert rc == 0, err
    ckpt.write_bytes(new)
    os.utime(ckpt, (time.time() + 5, time.time() + 5))
    return old, new


def test_a_read_back_with_another_md5_keeps_the_old_copy(emulator, proxy, monkeypatch,
                                                          local_state, tmp_path):
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
    src = tmp_path / "run"
    old, new = _replaced(emulator, src)
    other = "0" * 32

    def lie(status: int, headers: dict, body: bytes) -> Reply:
        res = json.loads(body) if status == 200 else {}
        if res.get("md5Checksum") == md5(new):   # (the new copy's files.get only)
            body = json.dumps(dict(res, md5Checksum=other)).encode()
        out = {k: v for k, v in headers.items() if k.lower() != "content-length"}
        return Reply(status, dict(out, **{"Content-Length": str(len(body))}), [body])

    proxy.on("GET", r"^/drive/v2/files/[^/?]+\?", lie)
    code, _, err = run("push", str(src), "drive:runs/a")
    assert code == 1, err
    line = error_line(err)
    assert line.startswith("Error: epoch_001.pt: the copy the upload's answer named ("), line
    assert line.endswith(f") is there with md5 {other}, not {md5(new)}; its old copies were "
                         "kept. Push again; if it persists, something between here and Drive "
                         "answers in its place: check --api-root / DRIVESTAGE_API_ROOT and "
                         "any proxy"), line
    assert live(emulator) == sorted([("epoch_001.pt", md5(old)), ("epoch_001.pt", md5(new))])
    proxy.rules.clear()
    code, _, err = run("push", str(src), "drive:runs/a")
    assert code == 0, err
    assert live(emulator) == [("epoch_001.pt", md5(new))]


def test_a_sigterm_while_the_read_back_is_awaited(emulator, local_state, drive_env, tmp_path):
    """The server holds the read-back (the new copy's files.get) 1 s: the push stopped there
    has deleted nothing; the rerun removes the old copy."""
    src = tmp_path / "run"
    old, new = _replaced(emulator, src)
    emulator.faults.latency(1.0, method="GET", path=r"^/drive/v2/files/[^/]+$")
    seen = len(emulator.requests)

    first = emulator.find("runs/a/epoch_001.pt")["id"]

    def reading_back() -> bool:
        # (a files.get of the new copy, not the old one's: the guard before a removal reads
        # that one too)
        new_ids = {f["id"] for f in emulator.files()
                   if f["title"] == "epoch_001.pt" and f["id"] != first}
        return any(r.kind == "files.get" and r.path.rsplit("/", 1)[-1] in new_ids
                   for r in emulator.requests[seen:])

    proc = child(emulator, "push", str(src), "drive:runs/a")
    until(proc, reading_back, "no read-back")
    proc.send_signal(15)
    got, err = ended(proc)
    assert got == 143 and err.endswith("\nInterrupted by SIGTERM.\n"), err
    assert stale(tmp_path / "state") == []
    settled(emulator, seen)
    assert live(emulator) == sorted([("epoch_001.pt", md5(old)), ("epoch_001.pt", md5(new))])
    emulator.faults.clear()
    rc, _, err = run("push", str(src), "drive:runs/a")
    assert rc == 0, err
    assert live(emulator) == [("epoch_001.pt", md5(new))]
