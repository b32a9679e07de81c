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
def _fast(fast_retries, monkeypatch):
    """Backoffs of a millisecond, without jitter, for every test here; the process's memory
    of servers without generateIds (``ids._WITHOUT``) this test's alone: a proxy answering
    no JSON is remembered by its URL, and a later test's emulator of this worker on the same
    port made its creates without ids (a cut create's rerun made a second file)."""
    from drivestage.drive import ids

    monkeypatch.setattr(ids, "_WITHOUT", set())


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


@pytest.mark.parametrize("how", ["moved", "renamed", "trashed"])
def test_a_recorded_id_whose_file_the_user_moved_is_never_updated_there(emulator, env,
                                                                         tmp_path, how):
    """A push cut while Drive made the file (its id recorded here); the user then moves,
    renames or trashes that file, and the local file changes: the rerun never writes the
    new bytes into the file the user moved away (nor deletes or untrashes it); it makes
    the file anew in DEST, once."""
    src = tmp_path / "src"
    _write(src / "keep.txt", b"k")
    _push(emulator.url, src)
    old = _write(src / "m.bin", b"first version")
    emulator.faults.drop("PUT", r"upload_id=", after_bytes=0, direction="response")
    from drivestage.drive import connect
    from drivestage.upload_tree import push

    store = connect(api_root=emulator.url, token="test-token")
    store.set_retries(1)
    with pytest.raises(Exception):
        push(str(src), DEST, store=store)   # the answer lost: as a Ctrl-C leaves it
    made = [f for f in emulator.files() if f["title"] == "m.bin"]
    assert len(made) == 1
    fid, dest_id = made[0]["id"], made[0]["parents"][0]["id"]
    if how == "moved":
        elsewhere = emulator.add_folder("Elsewhere")
        emulator.store.update_meta(fid, {}, add_parents=[elsewhere], remove_parents=[dest_id])
    elif how == "renamed":
        emulator.store.update_meta(fid, {"title": "mine.bin"})
    else:
        emulator.store.update_meta(fid, {"labels": {"trashed": True}})
    new = _write(src / "m.bin", b"second version, longer")
    _push(emulator.url, src)
    theirs = [f for f in emulator.files() if f["id"] == fid]
    assert [f["md5Checksum"] for f in theirs] == [old]
    assert bool(theirs[0]["labels"]["trashed"]) == (how == "trashed")
    assert [(f["md5Checksum"], f["parents"][0]["id"]) for f in emulator.files()
            if f["title"] == "m.bin" and f["id"] != fid and not f["labels"]["trashed"]] == \
        [(new, dest_id)]


def _made_id(emu, title: str) -> str:
    (made,) = [f["id"] for f in emu.files() if f["title"] == title and not f["labels"]["trashed"]]
    return made


@pytest.mark.parametrize("state", ["garbage", "truncated", "a list", "symlink",
                                   "another server's id", "the id of another file here"])
def test_a_state_file_not_of_this_push_never_costs_a_file(emulator, env, tmp_path, state):
    """create-ids.json damaged, a link to a file elsewhere, or holding records written
    against another server or account (an id this server never gave; the id of another
    file in DEST): the push makes the file once, leaves every other file (and the link's
    target) as it was."""
    from drivestage.create_ids import CreateIds

    src = tmp_path / "src"
    keep = _write(src / "keep.txt", b"k")
    _push(emulator.url, src)
    want = _write(src / "n.bin", os.urandom(500))
    path = tmp_path / "state" / "create-ids.json"
    target = tmp_path / "precious.txt"
    target.write_bytes(b"not drivestage's")
    dest = next(f for f in emulator.files() if f["title"] == "keep.txt")
    key = CreateIds.key(str(src / "n.bin"), dest["parents"][0]["id"], "n.bin")
    record = {"folder": dest["parents"][0]["id"], "t": __import__("time").time()}
    if state == "garbage":
        path.write_bytes(b"\x00\xff{{{")
    elif state == "truncated":
        path.write_text(json.dumps({key: dict(record, id=dest["id"])})[:-7])
    elif state == "a list":
        path.write_text("[1, 2]")
    elif state == "symlink":
        path.unlink(missing_ok=True)
        path.symlink_to(target)
    else:
        fid = "0B-never-given-here-123" if state == "another server's id" else dest["id"]
        path.write_text(json.dumps({key: dict(record, id=fid)}))
    _push(emulator.url, src)
    assert _live(emulator) == {"keep.txt": [keep], "n.bin": [want]}
    assert target.read_bytes() == b"not drivestage's"
    # What is left is n.bin's record, verified (its file is not sent again while a
    # listing may not show it), whatever the damaged file held.
    assert [(k.rsplit("|", 1)[1], r["id"], r["md5"]) for k, r in CreateIds().recorded().items()] \
        == [("n.bin", _made_id(emulator, "n.bin"), want)]


def test_a_push_with_include_between_a_cut_and_the_rerun_keeps_the_record(emulator, env,
                                                                           tmp_path):
    """A push cut while Drive made b.bin (its listing lags), then a push of the logs only
    (``--include '*.log'``), then a full push: b.bin is made once; the filtered push kept
    the record of the create it did not send."""
    from drivestage.upload_tree import push

    def _store(emu, retries=None):
        from drivestage.drive import connect
        s = connect(api_root=emu.url, token="test-token")
        if retries:
            s.set_retries(retries)
        return s
    src = tmp_path / "src"
    src.mkdir()
    (src / "keep.txt").write_bytes(b"k")
    push(str(src), DEST, store=_store(emulator))
    (src / "b.bin").write_bytes(os.urandom(5000))
    (src / "a.log").write_bytes(b"log1")
    emulator.faults.lag_listing(created=50, titles=r"^b\.bin$")
    emulator.faults.drop("PUT", r"upload_id=", after_bytes=0, direction="response")
    with pytest.raises(Exception):
        push(str(src), DEST, store=_store(emulator, 1), include=["b.bin"])
    (src / "a.log").write_bytes(b"log2, longer")
    push(str(src), DEST, store=_store(emulator), include=["*.log"])
    push(str(src), DEST, store=_store(emulator))
    made = [f for f in emulator.files() if f["title"] == "b.bin" and not f["labels"]["trashed"]]
    assert len(made) == 1, [f["id"] for f in made]
