"""stop29: a stop's save on a run folder whose disk is slow (a Drive or network mount, a
loaded machine: 70 MB in more than half of ``train.grace_seconds``), with no ``drive.logs``.
The stop waited for the write half the grace, then said ``autosave_….pt could not be
written (None); the newest earlier checkpoint is where --resume auto continues`` and exited,
cutting the write off (a temporary file left, the save lost) with half the grace unused
(found with a real ``trainer train`` and a hang-up to its process group). Now the write has
the rest of the grace.

The real writer and save policy; the disk's slowness is a write that begins 0.6 of the grace
after the signal."""
from __future__ import annotations

import os
import signal
import time

import pytest

from test_train28_hung_disk import _policy
from trainer.errors import TrainingInterrupted
from trainer.state import Position


def test_a_stop_save_slower_than_half_the_grace_is_waited_for_without_drive(
        tiny_config, tmp_path, monkeypatch):
    from trainer import checkpoint as ckpt

    logs = tmp_path / "logs"
    run, writer, saver = _policy(tiny_config, logs, None, grace=3.0)
    real_save = ckpt.save_checkpoint

    def slow_save(*args, **kwargs):
        if run.stop.at is not None:          # the stop's save: the disk takes 1.8 s of the 3
            time.sleep(max(0.0, run.stop.at + 1.8 - time.monotonic()))
        return real_save(*args, **kwargs)

    monkeypatch.setattr(ckpt, "save_checkpoint", slow_save)
    run.stop.request(signal.SIGTERM)
    run.state.pos = Position(1, 3, 1)
    try:
        with pytest.raises(TrainingInterrupted) as stopped:
            saver._save_and_stop(run, Position(1, 3, 1))
    finally:
        writer.close()
    assert (str(stopped.value), stopped.value.exit_code) == (
        f"stopped by SIGTERM at epoch 2, iteration 3: autosave_00000003.pt is saved in {logs}; "
        f"resume with --resume auto", 143)
    assert sorted(os.listdir(logs)) == ["autosave_00000003.json", "autosave_00000003.pt"]
    assert ckpt.read_sidecar(str(logs / "autosave_00000003.pt")).iteration == 3
