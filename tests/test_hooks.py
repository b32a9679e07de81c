"""CheckpointSync driven by a small fake training loop (checkpoints written atomically)."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile

import pytest

from drivestage.errors import MirrorError
from drivestage.hooks import CheckpointSync
from drivestage.retention import RetentionPolicy


@pytest.fixture
def env(local_state, monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "3")
    return local_state


def _atomic(path, data: bytes):
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=os.path.dirname(path))
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _train(sync, run_dir, epochs, metrics, start=1):
    """A training loop: every epoch writes epoch_NNN.pt, last.pt and results.csv."""
    saved = {}
    for epoch in range(start, start + epochs):
        data = f"weights of epoch {epoch}".encode() * 500
        path = os.path.join(run_dir, f"epoch_{epoch:03d}.pt")
        _atomic(path, data)
        _atomic(os.path.join(run_dir, "last.pt"), data)
        with open(os.path.join(run_dir, "results.csv"), "a") as fh:
            fh.write(f"{epoch},{metrics[epoch - 1]}\n")
        sync.on_save(path, epoch, {"map50": metrics[epoch - 1]})
        saved[epoch] = data
    return saved


def _live(emu):
    return sorted(f["title"] for f in emu.files()
                  if not f["labels"]["trashed"] and not f["mimeType"].endswith(".folder"))


POLICY = RetentionPolicy(keep_last=2, keep_best=1, metric="map50", mode="max")


def test_training_loop_mirrors_with_the_policy(emulator, store, env):
    run = str(env / "runs" / "x")
    sync = CheckpointSync((store, "Models/yolov4-tiny/logs"), POLICY, local_dir=run)
    saved = _train(sync, run, 5, [0.1, 0.6, 0.2, 0.3, 0.4])
    sync.on_train_end()
    assert _live(emulator) == ["epoch_002.json", "epoch_002.pt", "epoch_004.json",
                               "epoch_004.pt", "epoch_005.json", "epoch_005.pt",
                               "last.pt", "results.csv"]
    f = emulator.find("Models/yolov4-tiny/logs/epoch_005.pt")
    assert f["md5Checksum"] == hashlib.md5(saved[5]).hexdigest()
    side = json.loads(emulator.read_bytes(
        emulator.find("Models/yolov4-tiny/logs/epoch_002.json")["id"]))
    # The sidecar names the bytes it vouches for: the checkpoint's md5 and size.
    # ``saved``: the checkpoint's mtime, when the loop wrote it.
    assert side == {"format": 3, "epoch": 2, "iteration": None, "epoch_iteration": 0,
                    "metrics": {"map50": 0.6}, "run": None,
                    "md5": hashlib.md5(saved[2]).hexdigest(), "size": len(saved[2]),
                    "saved": os.path.getmtime(os.path.join(run, "epoch_002.pt"))}


def test_on_save_returns_at_once_while_drive_is_slow(emulator, store, env):
    run = str(env / "run")
    sync = CheckpointSync((store, "logs"), POLICY, local_dir=run)
    emulator.faults.latency(0.5, times=None)      # every Drive call takes half a second
    _train(sync, run, 3, [0.1, 0.2, 0.3])
    # The loop is done, the mirror is not: no on_save waited for an upload.
    assert "epoch_003.pt" not in _live(emulator)
    emulator.faults.clear()
    sync.on_train_end()
    assert "epoch_003.pt" in _live(emulator)


def test_resume_on_a_fresh_machine(emulator, store, env):
    run = str(env / "run1")
    sync = CheckpointSync((store, "logs"), POLICY, local_dir=run)
    saved = _train(sync, run, 3, [0.5, 0.2, 0.3])
    sync.on_train_end()

    fresh = str(env / "run2")              # the machine vanished; a new one starts empty
    sync2 = CheckpointSync((store, "logs"), RetentionPolicy(keep_last=1), local_dir=fresh)
    entry = sync2.latest_remote_checkpoint()
    assert entry is not None and entry.name == "epoch_003.pt"
    local = sync2.fetch(entry, os.path.join(fresh, entry.name))
    with open(local, "rb") as fh:
        assert fh.read() == saved[3]
    sync2.protect(entry.name)
    _train(sync2, fresh, 2, [0.5, 0.2, 0.3, 0.1, 0.1], start=4)
    sync2.on_train_end()
    # keep_last=1 keeps epoch 5; the checkpoint we resumed from survives too
    assert [n for n in _live(emulator) if n.startswith("epoch_") and n.endswith(".pt")] == \
        ["epoch_003.pt", "epoch_005.pt"]


def test_latest_is_none_on_an_empty_remote_and_ignores_unverified(emulator, store, env):
    sync = CheckpointSync((store, "nothing/here"), POLICY, local_dir=str(env / "r"))
    assert sync.latest_remote_checkpoint() is None
    emulator.add_file("nothing/here/epoch_009.pt", b"no sidecar: not verified")
    emulator.add_file("nothing/here/epoch_002.pt", b"x")
    emulator.add_file("nothing/here/epoch_002.pt.json", json.dumps({"epoch": 2}).encode())
    assert sync.latest_remote_checkpoint().name == "epoch_002.pt"
    emulator.add_file("nothing/here/last.pt", b"y")
    emulator.add_file("nothing/here/last.pt.json", json.dumps({"epoch": 3}).encode())
    assert sync.latest_remote_checkpoint().name == "last.pt"
    sync.on_train_end()


def test_failures_reach_the_caller_on_train_end(emulator, store, env):
    run = str(env / "run")
    sync = CheckpointSync((store, "logs"), POLICY, local_dir=run)
    emulator.faults.inject(None, r"^/upload/", status=500, times=None)
    _train(sync, run, 1, [0.1])
    with pytest.raises(MirrorError, match="failed"):
        sync.on_train_end()


def test_hooks_with_a_directory_as_the_remote(env):
    run, mount = str(env / "run"), str(env / "mount" / "logs")
    sync = CheckpointSync(mount, RetentionPolicy(keep_last=2), local_dir=run)
    saved = _train(sync, run, 4, [0.1, 0.2, 0.3, 0.4])
    sync.on_train_end()
    assert sorted(os.listdir(mount)) == [".drivestage",   # its run-folder mark (nasmark34)
                                         "epoch_003.json", "epoch_003.pt", "epoch_004.json",
                                         "epoch_004.pt", "last.pt", "results.csv"]
    assert os.listdir(os.path.join(mount, ".drivestage")) == ["run-folder"]
    sync2 = CheckpointSync(mount, RetentionPolicy(keep_last=2), local_dir=str(env / "fresh"))
    entry = sync2.latest_remote_checkpoint()
    assert entry.name == "epoch_004.pt"
    path = sync2.fetch(entry, str(env / "fresh" / "epoch_004.pt"))
    with open(path, "rb") as fh:
        assert fh.read() == saved[4]
    sync2.on_train_end()


def test_latest_understands_trainer_style_sidecars(emulator, store, env):
    sync = CheckpointSync((store, "t"), RetentionPolicy(keep_last=1), local_dir=str(env / "r"))
    emulator.add_file("t/epoch_003.pt", b"3")
    emulator.add_file("t/epoch_003.json", json.dumps({"epoch": 3}).encode())
    emulator.add_file("t/last.pt", b"3")
    emulator.add_file("t/last.json", json.dumps({"epoch": 3}).encode())
    assert sync.latest_remote_checkpoint().name == "epoch_003.pt"   # a tie: the named one
    emulator.add_file("t/epoch_002.pt", b"2")
    emulator.add_file("t/epoch_002.json", json.dumps({"epoch": 2}).encode())
    assert sync.latest_remote_checkpoint().name == "epoch_003.pt"
    sync.on_train_end()


def test_on_save_writes_the_stem_sidecar_with_md5_and_never_the_legacy_name(store, env):
    run = env / "run"
    sync = CheckpointSync((store, "logs"), RetentionPolicy(), local_dir=str(run))
    _atomic(str(run / "epoch_001.pt"), b"one")
    sync.on_save(str(run / "epoch_001.pt"), 1, {"map50": 0.5, "note": "not a number"})
    side = json.loads((run / "epoch_001.json").read_text())
    assert (side["epoch"], side["metrics"]) == (1, {"map50": 0.5})
    assert (side["md5"], side["size"]) == (hashlib.md5(b"one").hexdigest(), 3)
    # A checkpoint with a sidecar already (the trainer's, or a 0.1.0 one) keeps it as it is.
    _atomic(str(run / "epoch_002.pt"), b"two")
    (run / "epoch_002.pt.json").write_text('{"epoch": 2}')
    sync.on_save(str(run / "epoch_002.pt"), 2, {"map50": 0.6})
    assert not (run / "epoch_002.json").exists()
    assert not list(run.glob("epoch_001.pt.json"))
    sync.on_train_end()


def test_latest_skips_a_checkpoint_its_sidecar_does_not_vouch_for(emulator, store, env):
    sync = CheckpointSync((store, "v"), RetentionPolicy(), local_dir=str(env / "r"))
    emulator.add_file("v/epoch_001.pt", b"1")
    emulator.add_file("v/epoch_001.json", json.dumps(
        {"epoch": 1, "md5": hashlib.md5(b"1").hexdigest()}).encode())
    emulator.add_file("v/epoch_002.pt", b"replaced after the sidecar was written")
    emulator.add_file("v/epoch_002.json", json.dumps({"epoch": 2, "md5": "f" * 32}).encode())
    assert sync.latest_remote_checkpoint().name == "epoch_001.pt"
    emulator.add_file("v/epoch_003.pt", b"3")
    emulator.add_file("v/epoch_003.json", json.dumps({"epoch": 3, "run": "b"}).encode())
    assert sync.latest_remote_checkpoint().name == "epoch_003.pt"
    assert sync.latest_remote_checkpoint(run="a") is None
    sync.on_train_end()
