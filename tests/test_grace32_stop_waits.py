"""grace32: how long a stop's save waits for Drive when no signal asked for the stop.

A DataLoader worker's death (the OOM killer) asks for a stop as SIGTERM would, but no SIGKILL
follows it. The stop's wait for its upload was still cut at ``train.grace_seconds``: with a
slow link the newest state never reached Drive (`… did not reach drive:… within
train.grace_seconds`) and an unattended Colab cell idled with it on this machine only. Now
such a stop waits as the final flush does (trainer.stopping.StopFlag.until); a SIGTERM during
that wait cuts what is left of it to the signal's grace at once.

The slow upload is the emulator's latency on uploads (longer than the grace: what the line
says and what Drive holds are asserted, never a time). A real run whose worker is SIGKILLed;
the SIGTERM case uses the real save policy, background writer and Drive around a one-layer
network (tests/test_messages_train.py's ``_run``), the upload held far longer than the grace.
"""
from __future__ import annotations

import os
import re
import signal

import pytest

from _messages import error_text
from _worker_death import (DIED, not_reached_within_the_grace, signal_as_the_stops_push_begins,
                           stopped_with_its_upload_held)
from test_messages_train import FOLDER, _drive_config, _run, drive  # noqa: F401
from trainer.drive import DriveFolder
from trainer.errors import TrainingInterrupted
from trainer.stopping import WORKER_DEATH

def test_a_sigterm_during_that_wait_cuts_it_to_the_signals_grace(drive, tiny_config,
                                                                  monkeypatch):
    # (Half the grace for the tiny write here: more, and it goes from elsewhere too.)
    run = _run(_drive_config(tiny_config), drive=True, grace_s=0.8)
    sent = signal_as_the_stops_push_begins(run, monkeypatch, signal.SIGTERM)   # (Colab's)
    stopped, on_drive = stopped_with_its_upload_held(run, drive)
    assert sent and run.stop.signalled
    assert "autosave_00000003.pt" not in on_drive   # ended within the grace, not the upload
    text = error_text(stopped).removeprefix("Error: ")
    assert text == not_reached_within_the_grace(run), text
    assert stopped.exit_code == 1


def test_the_end_of_a_stops_wait_on_drive_is_read_again_as_signals_come():
    """StopFlag.until: a signal's grace (from that signal, though a death asked first); no
    signal: UNSIGNALLED_WAIT_S, or sooner where a folder waited on stopped answering."""
    from trainer import stopping

    stop = stopping.StopFlag(10)
    assert stop.until() is None
    stop.request(WORKER_DEATH, detail=DIED)
    assert stop.unsignalled and stop.until() == stop.at + stopping.UNSIGNALLED_WAIT_S
    assert stop.until(lambda: stop.at + 300.0) == stop.at + 300.0   # (hungend30's rule)
    with stop.installed():
        os.kill(os.getpid(), signal.SIGTERM)
    assert not stop.unsignalled and stop.signal_at is not None
    assert stop.until(lambda: stop.at + 300.0) == stop.signal_at + 10
    assert stop.deadline == stop.at + 10 and stop.exit_code == 1   # (the death's line)


def test_under_torchrun_the_grace_is_bounded_by_the_launchers_sigkill(monkeypatch, caplog):
    from trainer import stopping

    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")
    monkeypatch.setenv("RANK", "0")
    with caplog.at_level("WARNING", logger="trainer.stopping"):
        assert stopping.StopFlag(20).grace_s == 20
        assert not caplog.records
        stop = stopping.StopFlag(60)
    assert stop.grace_s == stopping.TORCHRUN_GRACE_S == 25
    assert stop.grace_text == "train.grace_seconds (25 s under torchrun)"
    stop.request(signal.SIGTERM)
    assert stop.until() == stop.deadline == stop.at + 25
    monkeypatch.delenv("TORCHELASTIC_RUN_ID")
    assert stopping.StopFlag(60).grace_s == 60   # (no launcher: no bound)


def test_a_real_worker_death_with_a_slow_upload_ends_verified_on_drive(
        drive, tiny_config, one_torch_thread, monkeypatch, caplog):
    """End to end: a DataLoader worker SIGKILLed (the OOM killer) in a real run whose stop's
    upload takes longer than the grace."""
    from trainer.data.dataset import YoloDataset
    from trainer.engine import fit

    cfg = _drive_config(tiny_config, **{"data.workers": 1, "train.batch_size": 4,
                                        "train.freeze_epochs": 0, "train.epochs": 1,
                                        "train.grace_seconds": 0.6})
    main, read, calls = os.getpid(), YoloDataset.__getitems__, [0]

    def getitems(self, indices):
        calls[0] += 1   # (the worker's fourth batch, asked once a step is done)
        if self.train and os.getpid() != main and calls[0] == 4:
            os.kill(os.getpid(), signal.SIGKILL)
        return read(self, indices)

    monkeypatch.setattr(YoloDataset, "__getitems__", getitems)
    slow = drive.faults.latency(1.5, path=r"^/upload/", times=1)   # the stop's upload
    with caplog.at_level("ERROR", logger="trainer"), pytest.raises(TrainingInterrupted) as stopped:
        fit(cfg, resume="none")
    text = error_text(stopped.value).removeprefix("Error: ")
    at = re.match(r"stopped by a DataLoader worker's death at epoch 1, iteration (\d+): ", text)
    assert at is not None, text
    name = f"autosave_{int(at[1]):08d}.pt"
    verified = (f"{at[0]}{name} is saved and verified on drive:{FOLDER} (",
                # (A loaded machine: its write here took over half the grace, so it went from
                # a temporary folder too, trainer.stop_save; verified there all the same.)
                f"it is sent to drive:{FOLDER} from a temporary folder instead and verified "
                f"there (")
    assert text.startswith(at[0]) and any(v in text for v in verified), text
    assert slow.times == 0 and stopped.value.exit_code == 1
    found = DriveFolder(f"drive:{FOLDER}", str(cfg.train.out_dir)).checkpoints()
    assert [c.name for c in found] == [name], found   # (verified: its sidecar names its md5)
    assert found[0].sidecar.iteration == int(at[1])
    # (The close after it, its grace long past: "the Drive mirror could not finish within
    # train.grace_seconds", though nothing was left to send.)
    assert not caplog.records, caplog.text
