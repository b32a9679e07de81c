"""push: incremental, verified mirroring of a local tree into Drive (the real stack + emulator)."""
from __future__ import annotations

import hashlib
import json
import os

import pytest

from drivestage.errors import NotFoundError, QuotaExceededError
from drivestage.upload_tree import push
from drivestage.retention import RetentionPolicy


def _write(path, data: bytes):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)


def _tree(root):
    files = {
        "results.csv": b"epoch,map50\n1,0.1\n",
        "epoch_001.pt": os.urandom(70_000),
        "epoch_001.pt.json": json.dumps({"epoch": 1, "metrics": {"map50": 0.1}}).encode(),
        "tb/events.out": os.urandom(1000),
        "tb/deeper/x.txt": b"x",
    }
    for rel, data in files.items():
        _write(os.path.join(root, rel), data)
    return files


def _remote(emu, top="Models/logs"):
    """{relative path: md5} of the live files under ``top``."""
    by_id = {f["id"]: f for f in emu.files()}
    top_id = emu.find(top)["id"]

    def rel(f):
        parts = [f["title"]]
        parent = f["parents"][0]["id"] if f.get("parents") else None
        while parent and parent != top_id:
            p = by_id.get(parent)
            if p is None:
                return None
            parts.append(p["title"])
            parent = p["parents"][0]["id"] if p.get("parents") else None
        return "/".join(reversed(parts)) if parent == top_id else None

    out = {}
    for f in emu.files():
        if f["labels"]["trashed"] or f["mimeType"].endswith(".folder"):
            continue
        r = rel(f)
        if r is not None:
            out[r] = f.get("md5Checksum")
    return out


def _md5s(files):
    return {k: hashlib.md5(v).hexdigest() for k, v in files.items()}


def _requests(emu):
    """The API requests since the last ``clear_requests()``: the emulator logs a request when
    it arrives and completes the record before answering, so the log is whole on return."""
    return [r for r in emu.requests if not r.path.startswith("/_emulator")]


def _uploads(emu):
    return [r for r in _requests(emu) if r.path.startswith("/upload/")]


def test_first_push_mirrors_the_tree_exactly(emulator, store, env):
    src = str(env / "logs")
    files = _tree(src)
    result = push(src, "Models/logs", store=store)
    assert _remote(emulator) == _md5s(files)
    assert sorted(result.uploaded) == sorted(files)
    assert result.bytes_sent == sum(len(v) for v in files.values())


def test_unchanged_tree_uploads_nothing_and_lists_once_per_folder(emulator, store, env):
    src = str(env / "logs")
    _tree(src)
    push(src, "Models/logs", store=store)
    emulator.clear_requests()
    result = push(src, "Models/logs", store=store)
    assert result.uploaded == [] and result.bytes_sent == 0 and result.unchanged == 5
    assert _uploads(emulator) == []
    # 4 folders (logs, tb, tb/deeper + the path to logs is cached by the store): 1 list each
    api = _requests(emulator)
    assert len(api) <= 3 * 4, [(r.method, r.path) for r in api]


def test_a_fresh_process_pushing_an_unchanged_tree_sends_nothing(emulator, store, env):
    from drivestage.drive import connect

    src = str(env / "logs")
    _tree(src)
    push(src, "Models/logs", store=store)
    emulator.clear_requests()
    push(src, "Models/logs", store=connect(api_root=emulator.url, token="test-token"))
    assert _uploads(emulator) == []


def test_only_changed_and_new_files_are_sent_and_replaced_in_place(emulator, store, env):
    src = str(env / "logs")
    files = _tree(src)
    push(src, "Models/logs", store=store)
    old_id = emulator.find("Models/logs/results.csv")["id"]
    files["results.csv"] = b"epoch,map50\n1,0.1\n2,0.2\n"
    files["epoch_002.pt"] = os.urandom(50_000)
    for rel in ("results.csv", "epoch_002.pt"):
        _write(os.path.join(src, rel), files[rel])
    emulator.clear_requests()
    result = push(src, "Models/logs", store=store)
    assert sorted(result.uploaded) == ["epoch_002.pt", "results.csv"]
    assert emulator.find("Models/logs/results.csv")["id"] == old_id
    assert _remote(emulator) == _md5s(files)
    want = len(files["results.csv"]) + len(files["epoch_002.pt"])
    sent = sum(r.bytes_in for r in _uploads(emulator) if "upload_id" in r.query)
    assert sent == want


def test_same_size_different_content_is_detected_by_md5(emulator, store, env):
    src = str(env / "logs")
    _write(os.path.join(src, "a.bin"), b"A" * 1000)
    push(src, "Models/logs", store=store)
    _write(os.path.join(src, "a.bin"), b"B" * 1000)
    result = push(src, "Models/logs", store=store)
    assert result.uploaded == ["a.bin"]
    assert _remote(emulator) == {"a.bin": hashlib.md5(b"B" * 1000).hexdigest()}


def test_include_and_exclude(emulator, store, env):
    src = str(env / "logs")
    _tree(src)
    _write(os.path.join(src, ".epoch_009.pt.abc.tmp"), b"half-written")
    push(src, "Models/logs", store=store, include=["*.pt", "*.json"], exclude=["tb"])
    assert set(_remote(emulator)) == {"epoch_001.pt", "epoch_001.pt.json"}


def test_delete_makes_the_remote_match_and_is_off_by_default(emulator, store, env):
    src = str(env / "logs")
    files = _tree(src)
    emulator.add_file("Models/logs/stale.txt", b"old")
    emulator.add_file("Models/logs/old/dir.txt", b"old")
    push(src, "Models/logs", store=store)
    assert {"stale.txt", "old/dir.txt"} <= set(_remote(emulator))
    result = push(src, "Models/logs", store=store, delete=True)
    assert sorted(result.deleted) == ["old", "stale.txt"]
    assert _remote(emulator) == _md5s(files)
    # moved to the trash (issue 10: --delete-permanently is the permanent form)
    assert {"old", "stale.txt"} <= {f["title"] for f in emulator.files() if f["labels"]["trashed"]}


def test_missing_source_is_a_clear_error(store, env):
    with pytest.raises(NotFoundError, match="not a local folder"):
        push(str(env / "nope"), "Models/logs", store=store)


def _save(src, epoch, metric, size=20_000):
    """What a training loop does: checkpoint first, then its sidecar."""
    _write(os.path.join(src, f"epoch_{epoch:03d}.pt"), os.urandom(size))
    _write(os.path.join(src, f"epoch_{epoch:03d}.pt.json"),
           json.dumps({"epoch": epoch, "metrics": {"map50": metric}}).encode())


def _ckpts(emu):
    return sorted(n for n in _remote(emu) if n.endswith(".pt"))


@pytest.mark.parametrize("policy, expected", [
    (RetentionPolicy(keep_last=2), ["epoch_005.pt", "epoch_006.pt"]),
    (RetentionPolicy(keep_last=1, keep_best=1, metric="map50", mode="max"),
     ["epoch_003.pt", "epoch_006.pt"]),
    pytest.param(RetentionPolicy(keep_last=1, keep_best=1, metric="map50", mode="min"),
                 ["epoch_001.pt", "epoch_006.pt"], marks=pytest.mark.slow),
    pytest.param(RetentionPolicy(keep_last=1, keep_every=2),
                 ["epoch_002.pt", "epoch_004.pt", "epoch_006.pt"], marks=pytest.mark.slow),
    pytest.param(RetentionPolicy(max_bytes=3 * 20_100),
                 ["epoch_004.pt", "epoch_005.pt", "epoch_006.pt"], marks=pytest.mark.slow),
])
def test_exact_remote_set_after_a_sequence_of_saves(emulator, store, env, policy, expected):
    src = str(env / "logs")
    metrics = [0.1, 0.3, 0.9, 0.2, 0.4, 0.5]
    _write(os.path.join(src, "last.pt"), b"last")
    for epoch, m in enumerate(metrics, start=1):
        _save(src, epoch, m)
        _write(os.path.join(src, "last.pt"), f"last {epoch}".encode())
        push(src, "Models/logs", policy, store=store)
        # the trainer's own local pruning (it keeps only the newest locally)
        if epoch > 1:
            for name in (f"epoch_{epoch - 1:03d}.pt", f"epoch_{epoch - 1:03d}.pt.json"):
                os.remove(os.path.join(src, name))
    assert _ckpts(emulator) == sorted(["last.pt"] + expected)
    remote = _remote(emulator)
    # every kept checkpoint kept its sidecar; no orphans
    assert sorted(n for n in remote if n.endswith(".json")) == sorted(e + ".json" for e in expected)


def test_checkpoints_the_policy_would_delete_are_never_uploaded(emulator, store, env):
    src = str(env / "logs")
    for epoch in range(1, 6):
        _save(src, epoch, 0.1 * epoch)
    emulator.clear_requests()
    result = push(src, "Models/logs", RetentionPolicy(keep_last=2), store=store)
    assert sorted(result.uploaded) == ["epoch_004.pt", "epoch_004.pt.json",
                                       "epoch_005.pt", "epoch_005.pt.json"]
    assert sorted(result.skipped_by_policy) == sorted(
        f"epoch_00{e}.pt{s}" for e in (1, 2, 3) for s in ("", ".json"))
    assert not [r for r in _requests(emulator) if r.method == "DELETE"]


def test_trainer_style_stem_sidecars_follow_their_checkpoint(emulator, store, env):
    src = str(env / "logs")
    for epoch in range(1, 4):
        _write(os.path.join(src, f"epoch_{epoch:03d}.pt"), os.urandom(1000))
        _write(os.path.join(src, f"epoch_{epoch:03d}.json"),
               json.dumps({"epoch": epoch, "metrics": {"map50": [0.5, 0.1, 0.2][epoch - 1]}}).encode())
        push(src, "Models/logs", RetentionPolicy(keep_last=1, keep_best=1, metric="map50"),
             store=store)
    assert sorted(_remote(emulator)) == ["epoch_001.json", "epoch_001.pt",
                                         "epoch_003.json", "epoch_003.pt"]


def test_use_trash_keeps_pruned_files_in_the_trash(emulator, store, env):
    src = str(env / "logs")
    for epoch in (1, 2):
        _save(src, epoch, 0.1)
        push(src, "Models/logs", RetentionPolicy(keep_last=1), store=store, use_trash=True)
    trashed = sorted(f["title"] for f in emulator.files() if f["labels"]["trashed"])
    assert trashed == ["epoch_001.pt", "epoch_001.pt.json"]


def _quota_store(emulator_factory, quota):
    from drivestage.drive import connect

    emu = emulator_factory(quota_bytes=quota)
    return emu, connect(api_root=emu.url, token="t")


def test_quota_too_small_prunes_first_then_succeeds(emulator_factory, env):
    emu, store = _quota_store(emulator_factory, 100_000)
    src = str(env / "logs")
    policy = RetentionPolicy(keep_last=2)
    for epoch in (1, 2):
        _save(src, epoch, 0.1, size=30_000)
    push(src, "Models/logs", policy, store=store)
    _save(src, 3, 0.1, size=30_000)          # 3 x 30 kB + sidecars > 100 kB
    result = push(src, "Models/logs", policy, store=store)
    assert [d.name for d in result.pruned][:2] == ["epoch_001.pt", "epoch_001.pt.json"]
    assert _ckpts(emu) == ["epoch_002.pt", "epoch_003.pt"]


def test_quota_that_cannot_fit_fails_before_a_byte_and_deletes_nothing(emulator_factory, env):
    emu, store = _quota_store(emulator_factory, 100_000)
    src = str(env / "logs")
    policy = RetentionPolicy(keep_last=3)
    for epoch in (1, 2, 3):
        _save(src, epoch, 0.1, size=30_000)
    push(src, "Models/logs", policy, store=store)
    before = _remote(emu)
    _save(src, 4, 0.1, size=60_000)
    emu.clear_requests()
    with pytest.raises(QuotaExceededError) as info:
        push(src, "Models/logs", policy, store=store)
    msg = str(info.value)
    assert "needed" in msg and "free" in msg and "prune" in msg
    assert _remote(emu) == before
    assert _uploads(emu) == []


# --------------------------------------------------------------------------- a directory as DEST

def _dir_files(root):
    out = {}
    for r, _, fs in os.walk(root):
        for f in fs:
            rel = os.path.relpath(os.path.join(r, f), root).replace(os.sep, "/")
            if not rel.startswith(".trash") and not rel.startswith(".drivestage"):
                with open(os.path.join(r, f), "rb") as fh:
                    out[rel] = hashlib.md5(fh.read()).hexdigest()
    return out


def test_push_to_a_directory_is_incremental_and_exact(env):
    src, dest = str(env / "logs"), str(env / "mount" / "Models" / "logs")
    files = _tree(src)
    first = push(src, dest)
    assert _dir_files(dest) == _md5s(files) and len(first.uploaded) == 5
    again = push(src, dest)
    assert again.uploaded == [] and again.unchanged == 5
    _write(os.path.join(src, "results.csv"), b"changed")
    os.remove(os.path.join(src, "tb", "events.out"))
    third = push(src, dest, delete=True)
    assert third.uploaded == ["results.csv"] and third.deleted == ["tb/events.out"]
    files["results.csv"] = b"changed"
    del files["tb/events.out"]
    assert _dir_files(dest) == _md5s(files)


def test_policy_sequence_on_a_directory(env):
    src, dest = str(env / "logs"), str(env / "mount" / "logs")
    policy = RetentionPolicy(keep_last=1, keep_best=1, metric="map50")
    for epoch, m in enumerate([0.2, 0.9, 0.1, 0.3], start=1):
        _save(src, epoch, m, size=1000)
        push(src, dest, policy)
    assert sorted(n for n in _dir_files(dest) if n.endswith(".pt")) == \
        ["epoch_002.pt", "epoch_004.pt"]
    assert sorted(n for n in _dir_files(dest) if n.endswith(".json")) == \
        ["epoch_002.pt.json", "epoch_004.pt.json"]


@pytest.mark.slow
def test_push_through_chaos_gives_the_exact_tree(emulator, store, env, monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "10")
    src = str(env / "logs")
    files = _tree(src)
    files["big.pt"] = os.urandom(3 * 256 * 1024 + 7)
    _write(os.path.join(src, "big.pt"), files["big.pt"])
    emulator.faults.chaos(rate=0.15, seed=3, kinds=("429", "500", "503", "reset"))
    push(src, "Models/logs", store=store, chunk_size=256 * 1024)
    emulator.faults.clear()
    assert _remote(emulator) == _md5s(files)
    names = [f["title"] for f in emulator.files() if not f["labels"]["trashed"]]
    assert len(names) == len(set(names)), "no duplicates after retries"


def test_folders_inside_dest_are_never_pruned(emulator, store, env):
    src = str(env / "logs")
    emulator.add_file("Models/logs/epoch_000/notes.txt", b"a folder whose name matches")
    for epoch in (1, 2, 3):
        _save(src, epoch, 0.1)
    push(src, "Models/logs", RetentionPolicy(keep_last=1), store=store)
    assert emulator.find("Models/logs/epoch_000/notes.txt") is not None
    assert _ckpts(emulator) == ["epoch_003.pt"]


def test_the_names_of_0_1_0_still_open_and_push(env):
    """``drivestage.mirror.open_dest`` / ``push`` and ``drivestage.upload.Md5Cache``: what
    code written against 0.1.0 (the trainer's drive.py) imports."""
    from drivestage.mirror import open_dest
    from drivestage.mirror import push as mirror_push
    from drivestage.upload import Md5Cache

    src = str(env / "logs")
    files = _tree(src)
    cache = Md5Cache()
    store, path = open_dest(str(env / "mount" / "logs"), None, cache)
    result = mirror_push(src, path, None, store=store, md5_cache=cache)
    assert sorted(result.uploaded) == sorted(files)
    assert sorted(os.listdir(env / "mount" / "logs")) == sorted(
        {rel.split("/")[0] for rel in files})
