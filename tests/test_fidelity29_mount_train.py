"""TensorBoard in a run folder (``train.out_dir``) on Colab's Google Drive mount when the
mount stops (DriveFS ends: every call into it answers ENOTCONN until it is mounted again,
googlecolab/colabtools issues 3441, 3940, 4181; tests/_drivemount.py's model, in the
kernel). What the save policy then does: tests/test_messages_fidelity29.py.
"""
from __future__ import annotations

import logging
import os
from types import SimpleNamespace

import pytest

from _drivemount import working_drive_mount  # noqa: F401 (a fixture)
from trainer.state import Position


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # (its writer thread)
def test_tensorboard_on_a_mount_that_stopped_does_not_end_the_run(working_drive_mount, caplog):
    """Its flush at the epoch's end raised the writer thread's OSError: a traceback, before
    the save policy (the last callback) even tried the epoch's checkpoint."""
    pytest.importorskip("torch.utils.tensorboard")
    from trainer.callbacks import TensorBoardLogger

    logs = working_drive_mount.point / "MyDrive" / "logs"
    os.makedirs(logs)
    tb = TensorBoardLogger(str(logs))
    tb.on_fit_start(SimpleNamespace(state=SimpleNamespace(pos=Position(0, 0, 0))))
    assert tb.writer is not None
    working_drive_mount.disconnect()
    with caplog.at_level(logging.WARNING, logger="trainer"):
        tb.on_fit_epoch_end(None, None, {"epoch": 1, "train_loss": 0.5})
        tb.on_fit_end(None)
    assert tb.writer is None
    said = [r.getMessage() for r in caplog.records]
    assert said == [f"TensorBoard logging off: could not write {logs / 'tensorboard'}: "
                    "Transport endpoint is not connected"], said
    # The next run's start on the stopped mount: TensorBoard off, said, not a traceback.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="trainer"):
        TensorBoardLogger(str(logs)).on_fit_start(
            SimpleNamespace(state=SimpleNamespace(pos=Position(0, 0, 0))))
    assert [r.getMessage() for r in caplog.records][0].startswith("TensorBoard logging off: ")
