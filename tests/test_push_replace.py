"""Replacing files on Drive (issues 10 and 12): a checkpoint is replaced by a new, verified
file before the old one goes; other files are updated in place without keeping a revision."""
from __future__ import annotations

import hashlib
import json
import os

import pytest

from drivestage.upload_tree import push


def _write(path, data: bytes):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)


def _live(emu, folder="Models/logs"):
    """name -> [file resources] of the live files directly in ``folder``."""
    top = emu.find(folder)["id"]
    out = {}
    for f in emu.files():
        if f["labels"]["trashed"] or not any(p["id"] == top for p in f.get("parents") or []):
            continue
        out.setdefault(f["title"], []).append(f)
    return out


def test_in_place_updates_keep_no_old_revisions(emulator, store, env):
    src = str(env / "logs")
    for n in range(3):
        _write(os.path.join(src, "results.csv"), b"epoch\n" + b"".join(b"%d\n" % i for i in range(n + 1)))
        _write(os.path.join(src, "tb", "events.out.tfevents.1"), os.urandom(100 + n))
        push(src, "Models/logs", store=store)
    for path in ("Models/logs/results.csv", "Models/logs/tb/events.out.tfevents.1"):
        f = emulator.find(path)
        revs = emulator.revisions(f["id"])
        assert len(revs) == 1, (path, revs)
        assert revs[0]["md5Checksum"] == f["md5Checksum"]
    updates = [r for r in emulator.requests if r.method == "PUT" and r.path.startswith(
        "/upload/drive/v2/files/") and "upload_id" not in r.query]
    assert updates and all(r.query.get("newRevision") == "false" for r in updates)


# --------------------------------------------------------------------------- checkpoints


@pytest.fixture
def proxied_store(proxy, env):
    from drivestage.drive import connect

    return connect(api_root=proxy.url, token="test-token")


def _best(src, epoch: int, data: bytes):
    """What the trainer does: best.pt, then its sidecar naming the md5."""
    _write(os.path.join(src, "best.pt"), data)
    _write(os.path.join(src, "best.json"), json.dumps(
        {"epoch": epoch, "md5": hashlib.md5(data).hexdigest(), "size": len(data)}).encode())


def _snapshot(emu, names=("best.pt", "best.json")):
    live = _live(emu)
    return {n: [(f["id"], f["md5Checksum"]) for f in live.get(n, [])] for n in names}


def test_a_replacement_failing_md5_twice_leaves_the_verified_copy(emulator, proxy,
                                                                   proxied_store, env):
    from _proxy import flip_first_byte
    from drivestage.errors import ChecksumMismatchError

    src = str(env / "logs")
    _best(src, 1, os.urandom(300_000))
    push(src, "Models/logs", store=proxied_store)
    before = _snapshot(emulator)
    _best(src, 2, os.urandom(300_000))
    proxy.mangle("PUT", r"upload_id=", flip_first_byte)    # Drive stores other bytes
    with pytest.raises(ChecksumMismatchError, match="after two uploads"):
        push(src, "Models/logs", store=proxied_store)
    assert _snapshot(emulator) == before                 # the old best.pt and its sidecar
    assert set(_live(emulator)) == {"best.pt", "best.json"}  # and nothing else left behind


def test_a_replacement_whose_source_keeps_changing_leaves_the_verified_copy(emulator, store,
                                                                             env):
    from drivestage.errors import SourceChangedError

    src = str(env / "logs")
    _best(src, 1, os.urandom(300_000))
    push(src, "Models/logs", store=store)
    before = _snapshot(emulator)
    _best(src, 2, os.urandom(600_000))

    def writer_appends(n: int) -> None:
        # A writer that keeps writing into the file while it is sent (after each chunk).
        with open(os.path.join(src, "best.pt"), "ab") as fh:
            fh.write(b"more")

    with pytest.raises(SourceChangedError, match="kept changing"):
        push(src, "Models/logs", store=store, chunk_size=256 << 10, progress=writer_appends)
    assert _snapshot(emulator) == before
    assert set(_live(emulator)) == {"best.pt", "best.json"}


def test_a_checkpoint_is_replaced_by_a_new_verified_file_then_the_old_one_goes(emulator, store,
                                                                                env):
    src = str(env / "logs")
    _best(src, 1, os.urandom(50_000))
    push(src, "Models/logs", store=store)
    old_id = emulator.find("Models/logs/best.pt")["id"]
    new = os.urandom(50_000)
    _best(src, 2, new)
    result = push(src, "Models/logs", store=store)
    assert sorted(result.uploaded) == ["best.json", "best.pt"]
    live = _live(emulator)
    assert [f["md5Checksum"] for f in live["best.pt"]] == [hashlib.md5(new).hexdigest()]
    assert live["best.pt"][0]["id"] != old_id
    # the old copy is deleted, not trashed, and no revision is kept anywhere
    assert old_id not in {f["id"] for f in emulator.files()}
    assert len(emulator.revisions(live["best.pt"][0]["id"])) == 1
    # in the order that keeps a copy the sidecar vouches for at every step: the new file
    # complete, then its sidecar, then the old copy deleted
    api = [r for r in emulator.requests if not r.path.startswith("/_emulator")]
    created = max(i for i, r in enumerate(api) if r.method == "PUT" and "upload_id" in r.query
                  and r.status in (200, 201) and r.bytes_in == len(new))
    deleted = next(i for i, r in enumerate(api) if r.method == "DELETE" and old_id in r.path)
    sidecar = max(i for i, r in enumerate(api) if r.method == "PUT" and "upload_id" in r.query
                  and r.status in (200, 201) and r.bytes_in != len(new))
    assert created < sidecar < deleted


def test_a_checkpoint_replaced_in_a_directory_store_is_the_new_file(env):
    src, dest = str(env / "logs"), env / "mount" / "logs"
    _best(src, 1, b"old weights")
    push(src, str(dest))
    _best(src, 2, b"new weights")
    result = push(src, str(dest))
    assert sorted(result.uploaded) == ["best.json", "best.pt"]
    assert (dest / "best.pt").read_bytes() == b"new weights"
    assert sorted(os.listdir(dest)) == ["best.json", "best.pt"]


def test_a_reader_during_the_swap_takes_the_copy_its_sidecar_vouches_for(emulator, store, env):
    """The window between the new file's creation and the old one's deletion: two files named
    best.pt, the sidecar still naming the old md5."""
    from drivestage.hooks import CheckpointSync

    old, new = os.urandom(1000), os.urandom(1000)
    emulator.add_file("Models/logs/best.pt", old)
    emulator.add_file("Models/logs/best.json", json.dumps(
        {"epoch": 3, "md5": hashlib.md5(old).hexdigest()}).encode())
    emulator.add_file("Models/logs/best.pt", new)   # the replacement, verified, old not yet gone
    sync = CheckpointSync("Models/logs", store=store, local_dir=str(env / "run"))
    try:
        entry = sync.latest_remote_checkpoint()
        assert entry is not None and entry.md5 == hashlib.md5(old).hexdigest()
    finally:
        sync.on_train_end()
