"""attackint47: what ``push --delete`` spares for a sidecar that a listing may have left out
(retain47's :func:`drivestage.pruning._unlisted_sidecar`) must not be spared for good.

It spares every checkpoint listed without a sidecar written after the newest verified one of
*some* run (the earliest of the runs' newest). In a folder that holds an ended run's pair
(spared for good: the newest verified of that run), every checkpoint a killed push left
without its sidecar, days later, was then spared by every ``--delete`` push for good: Drive's
storage filled with them. A listing lags for seconds, a sidecar on its way for as long as a
push takes: such a checkpoint is spared for a day (as an orphan sidecar waits), not more."""
from __future__ import annotations

import os
import time

from _checkpoints import md5, sidecar_json
from _cli import run
from _drive_state import held_since, live_md5s

DAY = 24 * 3600


def _add(emulator, path: str, data: bytes, days_ago: float) -> None:
    # (Its dates and its first-seen mark: pushgap47's rule ages a lone checkpoint by both.)
    held_since(emulator, emulator.add_file(path, data), time.time() - days_ago * DAY)


def test_push_delete_removes_a_days_old_checkpoint_without_its_sidecar_beside_an_old_run(
        emulator, drive_env, local_state, tmp_path):
    old, two, lone, four = (os.urandom(2000) for _ in range(4))
    _add(emulator, "runs/a/epoch_001.pt", old, 5)              # run r1, ended 5 days ago
    _add(emulator, "runs/a/epoch_001.json", sidecar_json(1, old, run="r1"), 5)
    _add(emulator, "runs/a/epoch_002.pt", two, 4)              # run r2
    _add(emulator, "runs/a/epoch_002.json", sidecar_json(2, two, run="r2"), 4)
    _add(emulator, "runs/a/epoch_003.pt", lone, 3)             # r2's push killed: no sidecar
    src = tmp_path / "run"
    src.mkdir()
    (src / "epoch_004.pt").write_bytes(four)
    (src / "epoch_004.json").write_bytes(sidecar_json(4, four, run="r2"))
    for _ in range(2):   # (the second lists the pair the first sent)
        code, _, err = run("push", str(src), "drive:runs/a", "--delete")
        assert code == 0, err
    assert live_md5s(emulator, "runs/a") == {
        "epoch_001.pt": [md5(old)], "epoch_001.json": [md5(sidecar_json(1, old, run="r1"))],
        "epoch_004.pt": [md5(four)], "epoch_004.json": [md5(sidecar_json(4, four, run="r2"))],
    }, err
