"""push23: a checkpoint's sidecar goes only with the checkpoint it names, and what the store
left alone is never counted as room a push made.

The user renames epoch_001.pt to keep_me.pt on Drive, to keep it, after the listing the plan
was made from. The checkpoint's deletion is left alone (the files.get before it sees the new
name), but its sidecar was deleted all the same: by ``prune`` (its check looked for a copy of
``epoch_001.pt`` by name in a new listing, and found none: the file is ``keep_me.pt`` now)
and by a push pruning for room (no check at all). The kept checkpoint had lost its sidecar:
no longer verified, its epoch and metrics gone."""
from __future__ import annotations

import os

import pytest

import _cli
from _checkpoints import md5, sidecar_json
from _envs import env_local_retries  # noqa: F401  (the env fixture)

FOLDER = "Models/logs"


def _seed(emu, sizes: dict[int, int]) -> dict[int, bytes]:
    """epoch_NNN.pt (``sizes[N]`` bytes) and its sidecar, for each epoch, oldest first."""
    out = {}
    for epoch, size in sorted(sizes.items()):
        data = os.urandom(size)
        emu.add_file(f"{FOLDER}/epoch_{epoch:03d}.pt", data)
        emu.add_file(f"{FOLDER}/epoch_{epoch:03d}.json", sidecar_json(epoch, data))
        out[epoch] = data
    return out


def _live(emu) -> dict[str, list[str]]:
    top = emu.find(FOLDER)["id"]
    out: dict[str, list[str]] = {}
    for f in emu.files():
        if not f["labels"]["trashed"] and any(p["id"] == top for p in f["parents"]) \
                and "md5Checksum" in f:
            out.setdefault(f["title"], []).append(f["md5Checksum"])
    return out


def _rename(emu, name: str, to: str) -> None:
    emu.store.update_meta(emu.find(f"{FOLDER}/{name}")["id"], {"title": to})


def test_prune_keeps_the_sidecar_of_a_checkpoint_renamed_since_the_listing(emulator, env):
    """The listing the plan is made from shows epoch_001.pt; the one prune lists again before
    a sidecar goes shows it as keep_me.pt (Drive's listing caught up)."""
    data = _seed(emulator, {1: 3000, 2: 3000, 3: 3000})
    emulator.faults.lag_listing(updated=1)
    _rename(emulator, "epoch_001.pt", "keep_me.pt")
    code, out, err = _cli.run("prune", f"drive:{FOLDER}", "--keep-last", "1")
    assert "Traceback" not in err
    assert "was renamed 'keep_me.pt' on Drive since it was listed; not deleted" in err, err
    assert _live(emulator) == {
        "keep_me.pt": [md5(data[1])], "epoch_001.json": [md5(sidecar_json(1, data[1]))],
        "epoch_003.pt": [md5(data[3])], "epoch_003.json": [md5(sidecar_json(3, data[3]))]}, err
    assert code == 0, err


def _push_for_room(emu, tmp_path, free: int, move: bool = False):
    """Drive nearly full (``free`` bytes left); epochs 1-3 there (epoch 1 larger); the push
    (``--keep-last 1``) of epoch 4 must prune first. epoch_001.pt was renamed keep_me.pt
    (``move``: moved into Models/keep) since the listing (which lags)."""
    from drivestage.drive import connect

    data = _seed(emu, {1: 6000, 2: 3000, 3: 3000})
    keep = emu.add_folder("Models/keep")
    used = sum(len(d) + len(sidecar_json(e, d)) for e, d in data.items())
    emu.quota_bytes = emu.store.quota_bytes = used + free   # (the about and the uploads)
    emu.faults.lag_listing(updated=5)
    if move:
        emu.store.update_meta(emu.find(f"{FOLDER}/epoch_001.pt")["id"], {},
                              add_parents=[keep], remove_parents=[emu.find(FOLDER)["id"]])
    else:
        _rename(emu, "epoch_001.pt", "keep_me.pt")
    src = tmp_path / "run"
    src.mkdir()
    new = os.urandom(4000)
    (src / "epoch_004.pt").write_bytes(new)
    (src / "epoch_004.json").write_bytes(sidecar_json(4, new))
    return emu, data, new, str(src), connect(api_root=emu.url, token="test-token")


def test_a_push_pruning_for_room_keeps_the_sidecar_of_a_renamed_checkpoint(
        emulator, local_state, tmp_path):
    """Room enough once epoch 2 is gone. The renamed epoch_001.pt stays, and so does its
    sidecar; neither is counted as pruned (nor as room made: what the store left alone
    freed nothing)."""
    from drivestage.retention import RetentionPolicy
    from drivestage.upload_tree import push

    emu, data, new, src, store = _push_for_room(emulator, tmp_path, free=1500)
    result = push(src, FOLDER, RetentionPolicy(keep_last=1), store=store, jobs=1)
    assert sorted(result.uploaded) == ["epoch_004.json", "epoch_004.pt"]
    pruned = sorted(d.name for d in result.pruned)
    assert pruned == ["epoch_002.json", "epoch_002.pt", "epoch_003.json", "epoch_003.pt"]
    emu.faults.clear()
    assert _live(emu) == {
        "keep_me.pt": [md5(data[1])], "epoch_001.json": [md5(sidecar_json(1, data[1]))],
        "epoch_004.pt": [md5(new)], "epoch_004.json": [md5(sidecar_json(4, new))]}


def test_room_a_push_counted_on_from_a_checkpoint_the_store_left_alone_is_still_lacking(
        emulator, local_state, tmp_path, caplog):
    """Room enough only once epochs 1 and 2 are gone; epoch 1 (renamed) stays. The push
    says Drive is still short (before a byte is sent), and only what the plan deletes
    anyway went: epoch 2."""
    from drivestage.errors import QuotaExceededError
    from drivestage.retention import RetentionPolicy
    from drivestage.upload_tree import push

    emu, data, new, src, store = _push_for_room(emulator, tmp_path, free=500)
    with pytest.raises(QuotaExceededError, match="Not enough Drive storage for 2 file"):
        push(src, FOLDER, RetentionPolicy(keep_last=1), store=store, jobs=1)
    assert "pruning first" in caplog.text
    emu.faults.clear()
    assert _live(emu) == {
        "keep_me.pt": [md5(data[1])], "epoch_001.json": [md5(sidecar_json(1, data[1]))],
        "epoch_003.pt": [md5(data[3])], "epoch_003.json": [md5(sidecar_json(3, data[3]))]}


def test_push_for_room_counts_no_item_the_store_left_alone_as_pruned(emulator, env, tmp_path):
    """push_room filters out what the store left alone (LeftAloneError: epoch_001.pt moved
    into Models/keep since the listing): it freed no room in DEST's plan and was not
    deleted, so the push's line counts 4 pruned (epochs 2 and 3 with their sidecars), not
    epoch 1 too."""
    emu, data, new, src, _ = _push_for_room(emulator, tmp_path, free=1500, move=True)
    code, out, err = _cli.run("push", src, f"drive:{FOLDER}", "--keep-last", "1")
    assert code == 0, err
    assert "pruning first" in err
    assert "was moved into another folder" in err and "not deleted" in err, err
    assert ": 2 uploaded (" in err and ", 4 pruned" in err, err
    emu.faults.clear()
    assert _live(emu) == {
        "epoch_001.json": [md5(sidecar_json(1, data[1]))],
        "epoch_004.pt": [md5(new)], "epoch_004.json": [md5(sidecar_json(4, new))]}
    assert emu.read_bytes(emu.find("Models/keep/epoch_001.pt")["id"]) == data[1]
