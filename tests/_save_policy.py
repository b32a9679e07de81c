"""The trainer's save policy driven as ``fit`` drives it, at the moments the full-disk and
keep-elsewhere tests (attackstop32, lastkeep32, epochkeep32, memsave33) stop it: epoch 1
saved and pushed, the last epoch's save at the run's end, a SIGTERM at iteration 3.
``run, writer, saver`` are tests/test_train28_hung_disk.py's ``_policy``."""
from __future__ import annotations

import signal
import time

import pytest

from trainer.errors import SaveError, TrainingInterrupted
from trainer.state import Position


def epoch_1_on_drive(run, writer, saver) -> None:
    """Epoch 1's end (the state as fit has it then): its checkpoint written, then pushed."""
    run.state.pos = Position(1, 2, 0)
    saver.on_fit_epoch_end(run, Position(1, 2, 0), {})
    assert writer.wait(saver._epoch_job)
    assert writer.wait_pushed(writer.push_soon(), time.monotonic() + 30)


def last_epoch_ends(run, saver) -> SaveError:
    """The last epoch's (2) end, then the run's: the SaveError the run ends with."""
    run.state.pos = Position(2, 4, 0)   # (the state of the last epoch, as fit has it)
    saver.on_fit_epoch_end(run, Position(2, 4, 0), {})
    with pytest.raises(SaveError) as ended:
        saver.on_fit_end(run)
    return ended.value


def sigterm_at_iteration_3(run, saver) -> TrainingInterrupted:
    """A SIGTERM, and the stop's save at iteration 3: the TrainingInterrupted it stops with."""
    run.stop.request(signal.SIGTERM)
    run.state.pos = Position(1, 3, 1)   # (the state of the step, as fit has it)
    with pytest.raises(TrainingInterrupted) as stopped:
        saver._save_and_stop(run, Position(1, 3, 1))
    return stopped.value
