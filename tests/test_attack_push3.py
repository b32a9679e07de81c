"""Attacks on the upload side (push, prune, mirror, CheckpointSync): each test is a bug found
and fixed; what users rely on is that a verified remote checkpoint is never deleted before its
replacement is verified, that nothing is uploaded twice needlessly, and one clear error line."""
from __future__ import annotations

import hashlib
import json
import os

import pytest

from drivestage.pruning import prune
from drivestage.retention import RetentionPolicy
from drivestage.upload_tree import push
from _drive_state import live_md5s


def _write(path, data: bytes):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)


def _side(epoch: int, data: bytes, **extra) -> bytes:
    return json.dumps({"epoch": epoch, "md5": hashlib.md5(data).hexdigest(),
                       "size": len(data), **extra}).encode()


def _live(emu, folder="Models/logs") -> dict:
    return live_md5s(emu, folder)


# ------------------------------------------------- a checkpoint that vanishes while pushed

def test_a_checkpoint_vanishing_mid_push_leaves_the_verified_one_on_drive(emulator, store, env):
    """keep_last=1 planned epoch_005 (local, its sidecar vouches) as the one kept and the
    remote epoch_004 as deleted; epoch_005 vanished before it was sent (the user or the
    trainer removed it): the push must not then delete Drive's only verified checkpoint."""
    old = b"old weights" * 50
    emulator.add_file("Models/logs/epoch_004.pt", old)
    emulator.add_file("Models/logs/epoch_004.json", _side(4, old))
    src = str(env / "logs")
    new = b"new weights" * 60
    _write(os.path.join(src, "a_results.csv"), b"epoch\n" * 100)
    _write(os.path.join(src, "epoch_005.pt"), new)
    _write(os.path.join(src, "epoch_005.json"), _side(5, new))
    gone = []

    def vanish(n):  # while a_results.csv (sent first) is on its way
        if not gone:
            os.remove(os.path.join(src, "epoch_005.pt"))
            gone.append(n)

    push(src, "Models/logs", RetentionPolicy(keep_last=1), store=store, jobs=1,
         progress=vanish)
    assert gone
    live = _live(emulator)
    assert live["epoch_004.pt"] == [hashlib.md5(old).hexdigest()]
    assert "epoch_004.json" in live
    assert "epoch_005.pt" not in live and "epoch_005.json" not in live


# ------------------------------------------------- a sidecar on Drive that lies

def test_a_deeply_nested_sidecar_is_ignored_not_a_crash(emulator, store, env):
    """A remote sidecar of 200,000 '[' (under the 1 MiB read limit): json raises
    RecursionError, which sidecar.parse let through ("never raises"): prune crashed."""
    for epoch in (1, 2):
        data = b"w%d" % epoch * 100
        emulator.add_file(f"Models/logs/epoch_{epoch:03d}.pt", data)
        emulator.add_file(f"Models/logs/epoch_{epoch:03d}.json", _side(epoch, data))
    emulator.add_file("Models/logs/epoch_003.pt", b"w3" * 100)
    emulator.add_file("Models/logs/epoch_003.json", b"[" * 200_000)
    plan = prune("Models/logs", RetentionPolicy(keep_last=1), store=store)
    # epoch_003 is the newest (kept); epoch_002 the newest verified (kept); epoch_001 goes.
    assert sorted(d.name for d in plan.to_delete) == ["epoch_001.json", "epoch_001.pt"]


# ------------------------------------------------- a sidecar that lags its checkpoint

def test_a_checkpoint_pushed_before_its_new_sidecar_keeps_the_vouched_copy(emulator, store,
                                                                            env):
    """The trainer writes best.pt, then best.json; a mirror's push ran in between: the new
    best.pt was sent while the local best.json (unchanged, so not sent) still vouched for the
    old bytes. The old copy, the only one a sidecar vouches for, was deleted all the same."""
    old, new = b"old best" * 100, b"new best" * 120
    src = str(env / "logs")
    _write(os.path.join(src, "best.pt"), old)
    _write(os.path.join(src, "best.json"), _side(3, old))
    push(src, "Models/logs", store=store)
    _write(os.path.join(src, "best.pt"), new)          # the sidecar is not rewritten yet
    push(src, "Models/logs", store=store)
    assert hashlib.md5(old).hexdigest() in _live(emulator)["best.pt"]  # still vouched for
    push(src, "Models/logs", store=store)              # and the next push repairs nothing
    assert hashlib.md5(old).hexdigest() in _live(emulator)["best.pt"]
    newer = b"newer best" * 130                          # saved again, sidecar still behind:
    _write(os.path.join(src, "best.pt"), newer)        # two copies, never more
    push(src, "Models/logs", store=store)
    assert _live(emulator)["best.pt"] == sorted(hashlib.md5(d).hexdigest() for d in (old, newer))
    new = newer
    _write(os.path.join(src, "best.json"), _side(4, new))    # the trainer catches up
    push(src, "Models/logs", store=store)
    live = _live(emulator)
    assert live["best.pt"] == [hashlib.md5(new).hexdigest()]
    assert live["best.json"] == [hashlib.md5(_side(4, new)).hexdigest()]


# ------------------------------------------------- CheckpointSync and a re-saved checkpoint

def test_a_resaved_checkpoint_gets_a_sidecar_for_its_new_bytes(emulator, store, env):
    """A loop saving last.pt every epoch through CheckpointSync.on_save: the sidecar was
    written only when none existed, so from the second save on it named the first save's md5
    and Drive's last.pt was never verified again (or its copies piled up)."""
    from drivestage.hooks import CheckpointSync

    run = env / "run"
    sync = CheckpointSync("Models/logs", local_dir=str(run), store=store)
    for epoch in (1, 2, 3):
        _write(str(run / "last.pt"), b"weights of epoch %d" % epoch * 50)
        sync.on_save(str(run / "last.pt"), epoch, {"map50": 0.1 * epoch})
        sync.flush(60)
    sync.on_train_end(60)
    data = b"weights of epoch 3" * 50
    assert _live(emulator)["last.pt"] == [hashlib.md5(data).hexdigest()]
    entry = sync.latest_remote_checkpoint()
    assert entry is not None and entry.md5 == hashlib.md5(data).hexdigest()
