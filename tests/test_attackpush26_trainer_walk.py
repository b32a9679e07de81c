"""A folder above a training run's ``drive.logs`` renamed on Drive while it trains (``runs`` ->
``runs_old``). The trainer pushes at every save through one store (``trainer.drive.
DriveFolder``), which checks only the run folder itself from push to push: every push went
on into ``runs_old/logs`` for the rest of the run, while a resume (``--resume auto``, a new
Colab session) looks for its checkpoints at ``drive:runs/logs``. A mirror walks the
path again every WALK_EVERY periods (mirror22); the trainer's pushes now do too."""
from __future__ import annotations

import hashlib
import logging

from drivestage.mirror import WALK_EVERY

from _drive_state import live_md5s

GONE = "is no longer at its path on Drive"


def test_the_trainers_pushes_find_a_renamed_folder_above_drive_logs(emulator, drive_env,
                                                                    local_state, caplog):
    from trainer.drive import DriveFolder

    out = local_state / "out"
    out.mkdir()
    (out / "epoch_001.pt").write_bytes(b"one")
    folder = DriveFolder("drive:runs/logs", str(out))
    folder.push()
    emulator.store.update_meta(emulator.find("runs")["id"], {"title": "runs_old"})
    caplog.set_level(logging.WARNING)
    for _ in range(WALK_EVERY):
        folder.push()
    assert emulator.find("runs/logs") is not None, "still pushing into runs_old/logs"
    assert live_md5s(emulator, "runs/logs") == {
        "epoch_001.pt": [hashlib.md5(b"one").hexdigest()]}
    assert [r.getMessage() for r in caplog.records if GONE in r.getMessage()] == [
        f"drive:runs/logs {GONE} (moved, renamed, trashed or deleted since this process last "
        "pushed there); making it anew and sending everything to it: put the folder back "
        "first to keep one copy"]
