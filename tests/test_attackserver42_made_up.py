"""An upload's 200 that names a file Drive never stored (a lying server, a proxy that answers
in Drive's place). The push believed it: a checkpoint replaced by a new copy had its old copy
deleted, the only one left on Drive, and exited 0. Now the new copy is read back before an
old one goes: the old stays, one line, exit 1."""
from __future__ import annotations

import hashlib
import json
import os
import time

from _cli import run
from _messages import error_line
from _proxy import Reply


def _live(emulator, name: str) -> list[str]:
    """The md5 of each live file named ``name``."""
    return [r["md5"] for r in emulator.store.all_files()
            if r.get("title") == name and not r.get("trashed")]


def test_a_made_up_upload_answer_deletes_no_old_copy(emulator, through, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    ckpt = src / "epoch_001.pt"
    ckpt.write_bytes(b"v1" * 1000)
    code, _, err = run("push", str(src), "drive:D")
    assert code == 0, err
    v1 = hashlib.md5(b"v1" * 1000).hexdigest()
    v2 = b"v2" * 1000
    ckpt.write_bytes(v2)
    os.utime(ckpt, (time.time() + 5, time.time() + 5))
    folder = emulator.find("D")["id"]
    made_up = json.dumps({
        "kind": "drive#file", "id": "1MadeUpMadeUpMadeUpMadeUpMadeUp00", "title": ckpt.name,
        "mimeType": "application/octet-stream", "md5Checksum": hashlib.md5(v2).hexdigest(),
        "fileSize": str(len(v2)), "parents": [{"id": folder, "isRoot": False}],
        "labels": {"trashed": False}, "modifiedDate": "2030-01-01T00:00:00.000Z",
        "createdDate": "2030-01-01T00:00:00.000Z"}).encode()
    through.on("PUT", r"^/upload/drive/v2/files\?", lambda *_: Reply(
        200, {"Content-Type": "application/json", "Content-Length": str(len(made_up))},
        [made_up]), forward=False)
    code, _, err = run("push", str(src), "drive:D")
    assert code == 1, err
    assert _live(emulator, ckpt.name) == [v1]   # the old copy stays: nothing lost
    line = error_line(err)
    assert line.startswith("Error: epoch_001.pt: the copy the upload's answer named "
                           "(1MadeUpMadeUpMadeUpMadeUpMadeUp00) is not there ("), line
    assert line.endswith("its old copies were kept. Push again; if it persists, something "
                         "between here and Drive answers in its place: check --api-root / "
                         "DRIVESTAGE_API_ROOT and any proxy"), line
    through.rules.clear()
    code, _, err = run("push", str(src), "drive:D")   # and the next push replaces it
    assert code == 0, err
    assert _live(emulator, ckpt.name) == [hashlib.md5(v2).hexdigest()]
