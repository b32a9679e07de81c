"""attackpush41: an upload whose answer says ``labels.trashed`` (not ``explicitlyTrashed``)
while its folder is live: a server that misreports, or a folder put back from the trash
between that answer and the push's check of its folders (trashed40 stops the uploads at
such an answer, then reads the folders). The push said the folder "is in the trash" and
that "Drive kept failing", both false, exit 1. Now it says what it knows (the answer, and
the folders read live), still exit 1, and the next push sends the rest. A proxy in front of
the emulator rewrites the first completed upload's answer."""
from __future__ import annotations

import hashlib
import json
import re

import pytest

from _cli import run
from _drive_state import live_md5s
from _proxy import Proxy, Reply

N = 4


def _says_trashed(status: int, headers: dict, body: bytes) -> Reply:
    """A completed upload's answer, saying the file is in the trash (as its folder's)."""
    if status in (200, 201):
        res = json.loads(body)
        res["labels"] = dict(res.get("labels") or {}, trashed=True)
        body = json.dumps(res).encode()
        headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
        headers["Content-Length"] = str(len(body))
    return Reply(status, headers, [body])


def _trashed_then_put_back(proxy: Proxy, emulator, folder_id: str) -> None:
    """The folder goes to the trash as the first upload starts (so the file arrives in it:
    Drive's answer says so), and is put back as that answer comes."""
    def trash(status: int, headers: dict, body: bytes) -> Reply:
        emulator.store.set_trashed(folder_id, True)
        return Reply(status, headers, [body])

    def put_back(status: int, headers: dict, body: bytes) -> Reply:
        if status in (200, 201):
            emulator.store.set_trashed(folder_id, False)   # (its file with it)
        return Reply(status, headers, [body])
    proxy.on("POST", r"^/upload/", trash, times=1)
    proxy.on("PUT", r"^/upload/", put_back, times=1)


@pytest.mark.parametrize("how", ["misreported", "put back"])
def test_an_upload_said_in_the_trash_while_its_folder_is_live_is_said_so(
        emulator, penv, proxy, tmp_path, how):
    emulator.add_file("runs/a/old.txt", b"old")
    src = tmp_path / "run"
    src.mkdir()
    want = {}
    for i in range(N):
        (src / f"f{i}.txt").write_bytes(b"bytes %d" % i)
        want[f"f{i}.txt"] = [hashlib.md5(b"bytes %d" % i).hexdigest()]
    if how == "misreported":
        proxy.on("PUT", r"^/upload/", _says_trashed, times=1)
    else:
        _trashed_then_put_back(proxy, emulator, emulator.find("runs/a")["id"])
    code, out, err = run("push", str(src), "drive:runs/a", "--jobs", "1")
    assert code == 1, err
    assert err.strip().splitlines()[-2:] == [
        f"ERROR drivestage.upload_tree: {N - 1} files not sent: the push stopped at an upload whose answer said it "
        "arrived in the trash; the next push sends them",
        f"Error: {src}/f0.txt -> f0.txt: Drive's answer to its upload said it arrived in the "
        "trash, but no folder this push wrote into is there now (put back since, or a server "
        "that misreports): check it on Drive, then push again"], err
    assert "kept failing" not in err and "is in the trash" not in err, err
    assert live_md5s(emulator, "runs/a") == {"old.txt": [hashlib.md5(b"old").hexdigest()],
                                             "f0.txt": want["f0.txt"]}
    code, out, err = run("push", str(src), "drive:runs/a", "--jobs", "1")
    assert code == 0, err
    want["old.txt"] = [hashlib.md5(b"old").hexdigest()]
    assert live_md5s(emulator, "runs/a") == want


def test_uploads_under_way_at_once_are_each_said_so(emulator, penv, proxy, tmp_path):
    """``--jobs 4``, every answer says so: each upload under way when the first halted the
    push failed so, and the one the push names (the first as it lists its files) is said in
    these words, not only the one that halted the push (which need not be that one)."""
    src = tmp_path / "run"
    src.mkdir()
    for i in range(N):
        (src / f"f{i}.txt").write_bytes(b"bytes %d" % i)
    proxy.on("PUT", r"^/upload/", _says_trashed)
    code, out, err = run("push", str(src), "drive:runs/a", "--jobs", str(N))
    assert code == 1, err
    assert "kept failing" not in err and "is in the trash" not in err, err
    # (Which uploads had started before the first answer halted the push is the pool's
    # race: whichever is first among them is said.)
    assert re.fullmatch(
        re.escape(f"Error: {src}/") + r"(f\d)\.txt -> \1\.txt" + re.escape(
            ": Drive's answer to its upload said it arrived in the trash, but no folder this "
            "push wrote into is there now (put back since, or a server that misreports): "
            "check it on Drive, then push again"), err.strip().splitlines()[-1]), err
