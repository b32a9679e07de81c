"""A folder on Drive at a checkpoint's name (pushshared48: that name waits) under retention:
its sidecar waits with it (never one vouching for a checkpoint Drive lacks, the reverse of
tests/test_lead48_sidecar_blocked.py), and ``--keep-last`` keeps the newest checkpoint it
sent (the one before the waiting one), never pruning a verified pair for the waiting one.
Real CLI against the emulator. Checked, holds on 190483bc (a regression test: nothing fixed)."""
from __future__ import annotations

from _checkpoints import save
from _cli import run
from _drive_state import live_md5s
from _envs import env  # noqa: F401  (a fixture)

T0 = 1764600000.0


def test_keep_last_over_a_waiting_newest_checkpoint_keeps_the_one_before_it(
        emulator, drive_env, local_state, tmp_path):
    src = tmp_path / "run"
    save(str(src), "epoch_001", 1, T0)
    code, _, err = run("push", str(src), "drive:runs/a")
    assert code == 0, err
    second = save(str(src), "epoch_002", 2, T0 + 60)
    save(str(src), "epoch_003", 3, T0 + 120)
    emulator.add_folder("runs/a/epoch_003.pt")
    code, _, err = run("push", str(src), "drive:runs/a", "--keep-last", "1")
    assert code == 1, err
    # epoch_003.json not sent; epoch_001's pair pruned (epoch_002's is verified there).
    assert live_md5s(emulator, "runs/a") == {**second, "epoch_003.pt": [None]}, err
