"""A run folder's record when drivestage's state folder cannot be written at the run's first
push (attackds30): a full Colab disk, freed later in the run (``rm -rf ~/.cache``, the
advice for a full disk). The record was tried once per process and never again, though every
other state file was written again once there was room: until the run's next process, a
``push ./runs drive:runs --delete`` trashed the checkpoints the run kept on Drive that
``train.keep_local`` had removed from the disk, and sent back what its retention pruned."""
from __future__ import annotations

import logging
import os

import pytest

from _cli import run
from _drive_state import live_md5s
from _tmpfs import small_disk  # noqa: F401  (a fixture)
from drivestage.hooks import CheckpointSync
from drivestage.retention import RetentionPolicy
from test_attackds29_run_folders import _save, env  # noqa: F401  (env: a fixture)


def _fill(disk) -> None:
    with open(disk / "filler", "wb") as fh:
        with pytest.raises(OSError):
            fh.write(b"x" * 10**6)
            fh.flush()


def test_the_record_is_written_once_the_full_state_disk_has_room(
        emulator, env, tmp_path, monkeypatch, small_disk, caplog):
    disk = small_disk(256 * 1024)   # a disk that fills
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(disk / "state"))
    (disk / "state").mkdir()
    _fill(disk)
    runs = tmp_path / "runs"
    exp1 = runs / "exp1"
    exp1.mkdir(parents=True)
    sync = CheckpointSync("drive:runs/exp1", RetentionPolicy(keep_last=2), local_dir=str(exp1))
    try:
        with caplog.at_level(logging.WARNING):
            sync.on_save(_save(str(exp1), 1), 1)
            sync.flush(60)
            os.unlink(disk / "filler")   # room again, the run going on
            for epoch in (2, 3):
                sync.on_save(_save(str(exp1), epoch), epoch)
                sync.flush(60)
    finally:
        sync.on_train_end(60)
    said = [r.getMessage() for r in caplog.records if "run-folders.json" in r.getMessage()]
    assert len(said) == 1 and "No space left on device" in said[0], said   # once
    kept = live_md5s(emulator, "runs/exp1")
    assert set(kept) == {"epoch_002.pt", "epoch_002.json", "epoch_003.pt", "epoch_003.json"}
    for name in ("epoch_002.pt", "epoch_002.json"):   # train.keep_local: Drive holds them
        os.unlink(exp1 / name)

    code, _, err = run("push", str(runs), "drive:runs", "--delete")

    assert code == 0, err
    assert "drive:runs/exp1 is a run folder (pushed from" in err, err
    assert live_md5s(emulator, "runs/exp1") == kept   # was: 002 trashed, 001 sent back

