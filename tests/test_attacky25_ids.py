"""Attacks on creates named by Drive's generated ids (drivestage/drive/ids.py): a server
whose generateIds answers are hostile or broken (ids already in use, a few ids at a time,
no JSON) must never cost a push its files, a duplicate, or a loop of requests. The real
PyDrive2/googleapiclient stack talks to the emulator through tests/_proxy.py."""
from __future__ import annotations

import hashlib
import json
import os

import pytest

from _proxy import Proxy, Reply

DEST = "Models/run"


@pytest.fixture(autouse=True)
def _fast(fast_retries):
    """Backoffs of a millisecond, without jitter, for every test here."""


def _push(url, src, dest=DEST):
    from drivestage.drive import connect
    from drivestage.upload_tree import push

    return push(str(src), dest, store=connect(api_root=url, token="test-token"))


def _write(path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.md5(data).hexdigest()


def _live(emu):
    """{title: [md5, ...]} of the files not trashed."""
    out: dict = {}
    for f in emu.files():
        if not f["labels"]["trashed"] and f.get("md5Checksum"):
            out.setdefault(f["title"], []).append(f["md5Checksum"])
    return out


def _ids_answer(ids):
    def mutate(status, headers, body):
        data = json.dumps({"kind": "drive#generatedIds", "space": "drive",
                           "ids": list(ids)}).encode()
        return Reply(200, {"Content-Type": "application/json",
                           "Content-Length": str(len(data))}, [data])
    return mutate


def test_generate_ids_answering_ids_already_in_use_still_pushes(emulator, env, tmp_path):
    """generateIds hands out ids of files that exist elsewhere (a buggy or replaying server):
    each create naming one is answered 409, the file read is another: the push still makes
    each new file once, and leaves the files those ids name as they were."""
    other = tmp_path / "other"
    _write(other / "a.bin", b"a" * 100)
    _write(other / "b.bin", b"b" * 100)
    _push(emulator.url, other, "Elsewhere")
    used = [f["id"] for f in emulator.files() if f["title"] in ("a.bin", "b.bin")]
    before = {f["id"]: (f["title"], f["md5Checksum"], f["parents"][0]["id"])
              for f in emulator.files() if f["id"] in used}
    src = tmp_path / "src"
    _write(src / "keep.txt", b"k")
    _push(emulator.url, src)   # DEST's folders exist: the files' own ids are tried
    want = {"x.bin": _write(src / "x.bin", os.urandom(3000)),
            "y.bin": _write(src / "y.bin", os.urandom(3000))}
    with Proxy(emulator.url) as proxy:
        proxy.on("GET", r"generateIds", _ids_answer(used), forward=False)
        _push(proxy.url, src)
        creates = proxy.count("POST", r"/files")
    live = _live(emulator)
    assert {n: live.get(n) for n in want} == {n: [m] for n, m in want.items()}
    assert {f["id"]: (f["title"], f["md5Checksum"], f["parents"][0]["id"])
            for f in emulator.files() if f["id"] in used} == before
    assert creates <= 2 * 3   # (each file: its id, another, none; never a loop of 409s)


def test_generate_ids_answering_ids_already_in_use_for_folders(emulator, env, tmp_path):
    """The same for the folders a push makes: each made once, nothing else touched."""
    other = tmp_path / "other"
    _write(other / "a.bin", b"a" * 100)
    _push(emulator.url, other, "Elsewhere")
    used = [f["id"] for f in emulator.files() if f["title"] in ("a.bin", "Elsewhere")]
    src = tmp_path / "src"
    want = _write(src / "sub" / "x.bin", b"x" * 10)
    with Proxy(emulator.url) as proxy:
        proxy.on("GET", r"generateIds", _ids_answer(used), forward=False)
        _push(proxy.url, src)
    names = [f["title"] for f in emulator.files() if not f["labels"]["trashed"]]
    assert sorted(n for n in names if n in ("Models", "run", "sub", "Elsewhere")) == \
        ["Elsewhere", "Models", "run", "sub"]
    assert _live(emulator)["x.bin"] == [want]


_DUPLICATE = json.dumps({"error": {"code": 409, "message": "A file already exists with the "
                                   "provided ID.", "errors": [{"domain": "global", "reason":
                                                               "duplicate", "message": "A file "
                                                               "already exists with the "
                                                               "provided ID."}]}}).encode()


def _conflict(status, headers, body):
    return Reply(409, {"Content-Type": "application/json",
                       "Content-Length": str(len(_DUPLICATE))}, [_DUPLICATE])


def test_a_409_for_ids_never_used_then_404_on_the_read_makes_the_file_once(emulator, env,
                                                                           tmp_path):
    """A server answers 409 to creates naming ids it never saw, and the read by id finds
    nothing (404): the file is still made, once, in a bounded number of creates."""
    src = tmp_path / "src"
    _write(src / "keep.txt", b"k")
    _push(emulator.url, src)
    want = _write(src / "z.bin", os.urandom(2000))
    with Proxy(emulator.url) as proxy:
        proxy.on("POST", r"^/upload/drive/v2/files\?", _conflict, times=2, forward=False)
        _push(proxy.url, src)
        creates = proxy.count("POST", r"^/upload/drive/v2/files\?")
    assert _live(emulator)["z.bin"] == [want]
    assert creates == 3


def test_generate_ids_giving_one_id_at_a_time_is_not_asked_once_per_file(emulator, env,
                                                                         tmp_path):
    """A server whose generateIds gives fewer ids than asked (one): a push of 20 new files
    asks it a bounded number of times, never once per file; every file made once."""
    src = tmp_path / "src"
    _write(src / "keep.txt", b"k")
    _push(emulator.url, src)
    want = {f"f{i:02d}.bin": _write(src / f"f{i:02d}.bin", os.urandom(100)) for i in range(20)}

    def one(status, headers, body):
        data = json.loads(body)
        data["ids"] = data["ids"][:1]
        out = json.dumps(data).encode()
        return Reply(status, {"Content-Type": "application/json",
                              "Content-Length": str(len(out))}, [out])
    with Proxy(emulator.url) as proxy:
        proxy.on("GET", r"generateIds", one)
        _push(proxy.url, src)
        asked = proxy.count("GET", r"generateIds")
    live = _live(emulator)
    assert {n: live.get(n) for n in want} == {n: [m] for n, m in want.items()}
    assert asked <= 2


def test_generate_ids_answering_no_json_still_pushes(emulator, env, tmp_path):
    """generateIds answered with a body that is no JSON (a captive portal, a broken proxy):
    the push goes on without ids, every file made once."""
    src = tmp_path / "src"
    want = _write(src / "a.bin", b"a" * 10)

    def garbage(status, headers, body):
        data = b"<html>not json"
        return Reply(200, {"Content-Type": "application/json",
                           "Content-Length": str(len(data))}, [data])
    with Proxy(emulator.url) as proxy:
        proxy.on("GET", r"generateIds", garbage, forward=False)
        _push(proxy.url, src)
    assert _live(emulator) == {"a.bin": [want]}
