"""trainres48 (4): Drive refusing the push of a save mid-run (an outage) and taking it at
the next push was said by nothing at the end (trainlefts47's end line counts saves not
written; the outage warning comes only after two save intervals without Drive). Decided: a
save whose push failed and that reached Drive later is no failed save (it was written, Drive
holds it): not counted among them, which would make the count false. The pushes that failed
get their own end line instead: how many, the first error, and of the saves they held back,
which reached Drive later and which never did. A real tiny run on the emulator; the outage
is the emulator's 503s on uploads from epoch 1's start until its save's push has failed."""
from __future__ import annotations

import logging
import re
import time

import pytest

from trainer import checkpoint as ckpt
from trainer.callbacks import Callback

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SPEC = "drive:Models/tr48p/logs"


class _Outage(Callback):
    """Uploads refused from the run's first epoch until its save's push has failed (waited
    for, bounded); then Drive is back."""

    def __init__(self, emulator):
        self.emulator = emulator

    def on_train_epoch_start(self, run, epoch: int) -> None:
        if epoch == 0:
            self.emulator.faults.inject(method="POST", path="/upload/", status=503, times=None)
        elif epoch == 1:
            job = run.checkpointer._epoch_job
            assert run.writer.wait(job, time.monotonic() + 60)
            assert run.writer.last_error is not None and not run.writer.verified("epoch_001.pt")
            self.emulator.faults.clear()


def test_a_push_refused_mid_run_and_taken_later_is_said_at_the_end(
        emulator, drive_env, fast_retries, tiny_config, tmp_path, caplog):
    from trainer.config import load_config
    from trainer.engine import fit

    logs = tmp_path / "logs"
    cfg = load_config(tiny_config(**{
        "train.epochs": 2, "train.freeze_epochs": 0, "train.eval_period": 100,
        "train.mosaic": False, "train.mixup": False, "drive.logs": SPEC,
        "drive.lease_minutes": 0}))
    with caplog.at_level(logging.INFO, logger="trainer"):
        result = fit(cfg, resume="none", callbacks=[_Outage(emulator)])
    assert result.last_checkpoint == str(logs / "last.pt")
    assert ckpt.read_sidecar(str(logs / "last.pt")).epoch == 2
    on_drive = {f["title"] for f in emulator.files() if not f["labels"]["trashed"]}
    assert {"epoch_001.pt", "epoch_002.pt"} <= on_drive, on_drive   # (last.pt: never sent)
    lines = [r.getMessage() for r in caplog.records if "failed mid-run" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in caplog.records]
    line = lines[0]
    # (How many pushes failed: the save's, and those of other files before it, as timed.)
    assert re.fullmatch(rf"(a push|\d+ pushes) to {SPEC} failed mid-run \(the first error: .*"
                        r"503 backendError.*\), retried by the next: the saves (it|they) held "
                        r"back reached Drive later \(epoch_001\.pt\)", line), line
    # Not counted among the saves that failed: each was written, and Drive holds it.
    assert not any("of this run's saves failed" in r.getMessage() for r in caplog.records)


def test_an_autosave_removed_here_before_drive_took_it_is_warned_of(
        emulator, drive_env, local_state, tmp_path):
    """The writer alone (the real one, on the emulator): three autosaves written while Drive
    refuses every request (an expired login), the oldest removed here as the newest two are
    kept; then Drive is back and an epoch's save goes. The end line warns of the one lost."""
    import torch

    from trainer.drive import DriveFolder
    from trainer.failed_saves import refused_line
    from trainer.save_job import SaveJob
    from trainer.state import Position
    from trainer.writer import BackgroundWriter

    out = tmp_path / "run"
    out.mkdir()
    folder = DriveFolder("drive:Models/tr48w/logs", str(out))

    def job(iteration: int, name: str = "") -> SaveJob:
        state = {"format_version": 2, "model": {"w": torch.full((64,), float(iteration))},
                 "optimizer": {}, "epoch": 0, "iteration": iteration,
                 "epoch_iteration": iteration, "config": {}, "run": "r"}
        return SaveJob(state, [name or f"autosave_{iteration:08d}.pt"],
                       Position(0, iteration, iteration), droppable=not name)

    emulator.faults.inject(status=401, reason="authError", times=None)
    writer = BackgroundWriter(str(out), folder, retry_s=3600.0)
    for iteration in (1, 2, 3):
        saved = job(iteration)
        writer.submit(saved)
        assert writer.wait(saved, time.monotonic() + 60) and saved.written
    assert not (out / "autosave_00000001.pt").exists()   # (the newest two kept)
    emulator.faults.clear()
    epoch = job(4, "epoch_001.pt")
    writer.submit(epoch)
    assert writer.wait(epoch, time.monotonic() + 60) and writer.verified("epoch_001.pt")
    assert writer.close() is True
    warn, line = refused_line(writer, str(out))
    assert warn, line
    assert re.fullmatch(
        r"\d+ pushes to drive:Models/tr48w/logs failed mid-run \(the first error: .*\), retried "
        r"by the next: of the saves they held back, autosave_00000002\.pt, "
        r"autosave_00000003\.pt reached Drive later; autosave_00000001\.pt \(removed here "
        r"before a push got through\) never did", line), line
