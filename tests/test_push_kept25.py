"""Push retention on a listing that lags (Drive's do): the newest checkpoint on Drive, which
the plan keeps, was trashed by the user just before the push listed DEST. The listing still
showed it, so `keep_last 1` kept it and deleted every other checkpoint: the folder was left
with none live (attack25 found this for `prune`; push retention and a mirror's pushes of logs
did it too). What the plan keeps, and this push did not write itself, is read with the first
batch of checks; one gone or changed leaves every deletion alone."""
from __future__ import annotations

import _cli
from _checkpoints import sidecar_json
from _envs import env  # noqa: F401  (a fixture)


def _seed(emulator) -> dict:
    ids = {}
    for i in (1, 2):
        data = bytes([i]) * 10
        ids[i] = emulator.add_file(f"Models/logs/epoch_{i:03d}.pt", data)
        emulator.add_file(f"Models/logs/epoch_{i:03d}.json", sidecar_json(i, data))
    return ids


def _live(emulator) -> list:
    folder = "application/vnd.google-apps.folder"
    return sorted(f["title"] for f in emulator.files()
                  if f["mimeType"] != folder and not f["labels"]["trashed"])


def test_push_keeps_every_checkpoint_when_the_kept_one_was_trashed_meanwhile(emulator, env,
                                                                             tmp_path):
    ids = _seed(emulator)
    src = tmp_path / "run"
    src.mkdir()
    (src / "results.csv").write_text("epoch,loss\n1,0.5\n2,0.4\n")
    emulator.faults.lag_listing(deleted=5)
    emulator.store.set_trashed(ids[2], True)
    code, _, err = _cli.run("push", str(src), "drive:Models/logs", "--keep-last", "1")
    assert code == 0, err
    assert "drive:Models/logs/epoch_002.pt, which the plan keeps, was moved to the trash" in err
    assert _live(emulator) == ["epoch_001.json", "epoch_001.pt", "epoch_002.json",
                               "results.csv"]


def test_push_retention_still_prunes_around_what_it_wrote_itself(emulator, env, tmp_path):
    """What the push itself replaced since the listing (last.pt, its sidecar updated in
    place) is not read as kept: its listed copy is the old one, gone by the push's own hand.
    Retention goes on as before."""
    _seed(emulator)
    old = bytes([9]) * 10
    emulator.add_file("Models/logs/last.pt", old)
    emulator.add_file("Models/logs/last.json", sidecar_json(2, old))
    src = tmp_path / "run"
    src.mkdir()
    data = bytes([3]) * 10
    for name in ("epoch_003", "last"):
        (src / f"{name}.pt").write_bytes(data)
        (src / f"{name}.json").write_bytes(sidecar_json(3, data))
    code, _, err = _cli.run("push", str(src), "drive:Models/logs", "--keep-last", "1")
    assert code == 0, err
    assert "which the plan keeps" not in err
    assert _live(emulator) == ["epoch_003.json", "epoch_003.pt", "last.json", "last.pt"]
    assert err.rstrip().endswith("4 uploaded (286 B), 0 unchanged, 4 pruned"), err


def test_pruning_for_room_reads_what_the_plan_keeps_too(emulator_factory, local_state,
                                                         fast_retries, monkeypatch, tmp_path):
    """Drive full, and the newest checkpoint (the one room-making never deletes) was trashed
    by the user just before the push listed DEST. Making room deleted every other checkpoint
    to send epoch 3. Now nothing is deleted: the push fails on the quota (exit 1), as Drive
    being full says, and every checkpoint is still there (trashed ones count against the
    quota on Drive)."""
    emu = emulator_factory(quota_bytes=2 * 1000 + 900)   # room for epoch 3 after one goes
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emu.url)
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
    ids = {}
    for i in (1, 2):
        data = bytes([i]) * 1000
        ids[i] = emu.add_file(f"Models/logs/epoch_{i:03d}.pt", data)
        emu.add_file(f"Models/logs/epoch_{i:03d}.json", sidecar_json(i, data))
    src = tmp_path / "run"
    src.mkdir()
    data = bytes([3]) * 1000
    (src / "epoch_003.pt").write_bytes(data)
    (src / "epoch_003.json").write_bytes(sidecar_json(3, data))
    emu.faults.lag_listing(deleted=5)
    emu.store.set_trashed(ids[2], True)
    code, _, err = _cli.run("push", str(src), "drive:Models/logs", "--keep-last", "1")
    assert "drive:Models/logs/epoch_002.pt, which the plan keeps, was moved to the trash" in err
    assert code == 1, err
    assert err.rstrip().splitlines()[-1].startswith(
        "Error: Not enough Drive storage for 2 file(s) into drive:Models/logs: needed 1.1 KiB, "
        "free 630 B, in trash 1000 B."), err
    assert _live(emu) == ["epoch_001.json", "epoch_001.pt", "epoch_002.json"]
