"""attackb51: a local state dated ahead (this machine's clock) that never reached Drive, and
the run gone on further on Drive meanwhile (another machine, an honest clock).

Machine A's ``epoch_002.pt`` was saved here with A's clock a day ahead and never pushed
(Drive unreachable for that process, so :class:`trainer.save_times.SaveTimes` had no Drive
``Date`` to date it by); machine B went on from Drive's ``epoch_001`` to ``epoch_010``. Back
on A, ``--resume auto`` compares the save times (:func:`trainer.resume_drive._went_on`):
A's is later, so B's eight epochs read as a run sent back, and A goes on from its own
``epoch_002``, without a word; its saves then rank above B's on Drive.

attackb51's strict xfail; the lead's call, its option (a) with a line: a local ``saved``
later than Drive's current ``Date`` (past the skew allowed) is read as no time, progress
deciding (trainer/resume_drive._not_ahead_of_drive).
"""
from __future__ import annotations

import os
import time
import types

import pytest

from trainer import checkpoint as ckpt

FOLDER = "Models/ab51/logs"


def _state(epoch: int) -> dict:
    return {"format_version": ckpt.FORMAT_VERSION, "model": {}, "optimizer": {}, "epoch": epoch,
            "iteration": epoch * 10, "epoch_iteration": 0, "config": {}, "run": "r1"}


def _put(emulator, path: str, folder: str = FOLDER) -> None:
    """The checkpoint at ``path`` and its sidecar on Drive, in ``folder``."""
    for p in (path, ckpt.sidecar_path(path)):
        emulator.add_file(f"{folder}/{os.path.basename(p)}", p)


def test_a_local_state_dated_ahead_does_not_send_the_run_back_behind_drive(
        emulator, drive_env, local_state, tmp_path, caplog):
    from trainer.drive import DriveFolder
    from trainer.resume import _decide

    logs, made, now = tmp_path / "logs", tmp_path / "made", time.time()
    ckpt.save_checkpoint(_state(1), str(logs / "epoch_001.pt"), saved=now - 7200)
    _put(emulator, str(logs / "epoch_001.pt"))                     # A's epoch 1, pushed
    ckpt.save_checkpoint(_state(2), str(logs / "epoch_002.pt"), saved=now + 86400)  # never
    _put(emulator, ckpt.save_checkpoint(_state(10), str(made / "epoch_010.pt"),
                                        saved=now - 60))           # B's, an honest clock
    cfg = types.SimpleNamespace(train=types.SimpleNamespace(out_dir=str(logs)))
    start = _decide(cfg, "auto", DriveFolder(f"drive:{FOLDER}", str(logs)))
    assert os.path.basename(start.path) == "epoch_010.pt", start.path
    said = [r.getMessage() for r in caplog.records if "ahead of Drive's clock" in r.getMessage()]
    assert said == ["the local checkpoint's save time is 24.0 h ahead of Drive's clock (this "
                    "machine's clock ran ahead when it saved?): it is not compared with the "
                    "saves on Drive; the run's progress decides which goes on"], said
