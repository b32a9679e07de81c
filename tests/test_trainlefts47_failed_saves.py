"""trainlefts47 (2): a save that failed mid-run (here a folder put where ``epoch_001.pt`` goes,
during the run) was one ERROR line far up the log, and the run ended as a clean success.
Now, the final save being complete, the run still ends 0 (fit returns) but its last line
says how many saves failed, which, and the newest checkpoint verified. A real tiny run."""
from __future__ import annotations

import logging
import shutil
import time

import pytest

from trainer import checkpoint as ckpt
from trainer.callbacks import Callback

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class _InTheWay(Callback):
    """A folder ``epoch_001.pt`` appears as epoch 1 begins; once epoch 1's save has failed
    (waited for, bounded), it goes again, so the final save is written."""

    def __init__(self, logs):
        self.logs = logs

    def on_train_epoch_start(self, run, epoch: int) -> None:
        if epoch == 0:
            (self.logs / "epoch_001.pt").mkdir()
        elif epoch == 1:
            job = run.checkpointer._epoch_job
            assert run.writer.wait(job, time.monotonic() + 60) and job.error is not None
            shutil.rmtree(self.logs / "epoch_001.pt")


def test_a_save_failed_mid_run_is_said_at_the_end(tiny_config, tmp_path, caplog):
    from trainer.config import load_config
    from trainer.engine import fit

    logs = tmp_path / "logs"
    cfg = load_config(tiny_config(**{"train.epochs": 2, "train.freeze_epochs": 0,
                                     "train.eval_period": 100, "train.mosaic": False,
                                     "train.mixup": False}))
    with caplog.at_level(logging.WARNING, logger="trainer"):
        result = fit(cfg, resume="none", callbacks=[_InTheWay(logs)])
    assert result.last_checkpoint == str(logs / "last.pt")
    side = ckpt.read_sidecar(str(logs / "last.pt"))
    assert side.epoch == 2
    last = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING][-1]
    assert last.startswith("one of this run's saves failed mid-run and was not written: "
                           "epoch_001.pt (at epoch 1, iteration "), last
    assert "(the first error: [Errno 21] Is a directory: " in last, last
    assert f" -> '{logs}/epoch_001.pt'); " in last, last
    assert last.endswith(f"); the final save is complete, so the run ends 0. The newest "
                         f"checkpoint verified is {logs}/last.pt (epoch 2, iteration "
                         f"{side.iteration})"), last
