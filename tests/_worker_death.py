"""A stop no signal asked for (a DataLoader worker's death) at iteration 3 of the real save
policy, background writer and Drive (the emulator) around a one-layer network
(tests/test_messages_train.py's ``_run``), its upload held: what grace32 and attacktr32
share."""
from __future__ import annotations

import os

import pytest

from test_messages_train import FOLDER, _remote
from trainer.drive import DriveFolder
from trainer.errors import TrainingInterrupted
from trainer.state import Position
from trainer.stopping import WORKER_DEATH

DIED = "DataLoader worker (pid 7) is killed by signal: Killed."
ADVICE = (f" ({DIED.rstrip('.')}: out of memory? lower data.workers, train.batch_size or "
          "data.cache before you resume)")


def worker_death_at_iteration_3(run) -> TrainingInterrupted:
    """A worker died; the save policy sees the end of iteration 3 (as worker_deaths asks)."""
    run.stop.request(WORKER_DEATH, detail=DIED)
    run.state.pos = pos = Position(0, 3, 3)
    with run.stop.installed(), pytest.raises(TrainingInterrupted) as stopped:
        run.checkpointer.on_train_batch_end(run, pos, {})
    return stopped.value


def stopped_with_its_upload_held(run, drive) -> tuple[TrainingInterrupted, dict]:
    """The worker's death at iteration 3 while Drive holds the stop's upload (it does not
    end): the stop and what Drive held when it ended; then the upload is let go and the
    writer closed."""
    drive.faults.latency(60.0, path=r"^/upload/", times=1)   # an upload that does not end
    try:
        stopped = worker_death_at_iteration_3(run)
        on_drive = _remote(drive)
    finally:
        drive.faults.release_holds()   # (the held upload goes on now: the writer can end)
        assert run.writer.close() is True
    return stopped, on_drive


def signal_as_the_stops_push_begins(run, monkeypatch, sig: int) -> list[int]:
    """``sig`` to this process as the stop's push begins (once). The pids it went to."""
    push, sent = DriveFolder.push, []

    def push_then_signal(self, *args, **kwargs):
        if run.stop.is_set() and not sent:
            sent.append(os.getpid())
            os.kill(os.getpid(), sig)
        return push(self, *args, **kwargs)

    monkeypatch.setattr(DriveFolder, "push", push_then_signal)
    return sent


def not_reached_within_the_grace(run) -> str:
    """The stop's line (no ``Error:``) where its upload did not end within the 0.8 s grace."""
    return (
        f"stopped by a DataLoader worker's death at epoch 1, iteration 3: autosave_00000003.pt "
        f"is saved in {run.out_dir} but did not reach drive:{FOLDER} within "
        f"train.grace_seconds (0.8 s); --resume auto on this machine continues from it, "
        f"elsewhere upload it first: drivestage push {run.out_dir} drive:{FOLDER}{ADVICE}")
