"""attackt31: a signal (Colab's SIGTERM, a Ctrl-C) that comes while a DataLoader worker's
death is being stop-saved (trainer/worker_deaths.py).

The death asks the stop as a signal would, with no signal sent: the first real signal after it
was taken for the *second* one, which stops at once (trainer.stopping): the save under way was
dropped, the run ended `a second Ctrl-C: stopped at once` (or, for SIGTERM, killed by it with
nothing saved, its write cut off), though the user had sent one signal."""
from __future__ import annotations

import os
import signal

from trainer import checkpoint as ckpt
from trainer.config import load_config
from trainer.data.dataset import YoloDataset
from trainer.engine import fit
from trainer.errors import TrainingInterrupted
from trainer.stopping import WORKER_DEATH, StopFlag

_MAIN = os.getpid()


def test_a_ctrl_c_during_a_worker_deaths_stop_save_lets_the_save_end(
        tiny_config, one_torch_thread, monkeypatch):
    cfg = load_config(tiny_config(**{"data.workers": 1, "train.batch_size": 4,
                                     "train.freeze_epochs": 0, "train.epochs": 1}))
    read, calls = YoloDataset.__getitems__, [0]

    def getitems(self, indices):
        calls[0] += 1   # (the worker's copy: its fourth batch, asked once the second was
        if self.train and os.getpid() != _MAIN and calls[0] == 4:   # taken: a step is done)
            os.kill(os.getpid(), signal.SIGKILL)
        return read(self, indices)

    save, sent = ckpt.save_checkpoint, []

    def save_checkpoint(state, path, **kw):
        if os.path.basename(path).startswith("autosave_") and not sent:
            sent.append(path)   # (the stop's save is being written: the user's Ctrl-C now)
            os.kill(os.getpid(), signal.SIGINT)
        return save(state, path, **kw)

    monkeypatch.setattr(YoloDataset, "__getitems__", getitems)
    monkeypatch.setattr(ckpt, "save_checkpoint", save_checkpoint)
    try:
        fit(cfg, resume="none")
        caught: BaseException = AssertionError("not stopped")
    except BaseException as exc:   # (KeyboardInterrupt: the failure, not the test's end)
        caught = exc

    assert sent, f"no stop save: {caught!r}"
    assert isinstance(caught, TrainingInterrupted), repr(caught)
    # (at the step under way's end, or at the batch awaited)
    at = ckpt.load_checkpoint(sent[0])["iteration"]
    assert at in (1, 2, 3) and str(caught).startswith(
        f"stopped by a DataLoader worker's death at epoch 1, iteration {at}: "
        f"autosave_{at:08d}.pt is saved in {cfg.train.out_dir}; resume with --resume auto ("), \
        str(caught)
    assert caught.exit_code == 1


def test_the_first_signal_after_a_worker_death_is_not_the_second_and_the_next_one_is():
    """At the handler: the death's stop goes on (its cause, its exit code); a second real
    signal still stops at once."""
    stop = StopFlag(30)
    stop.request(WORKER_DEATH, detail="DataLoader worker (pid 1) is killed by signal: Killed.")
    got: list = []
    with stop.installed():
        for _ in range(2):
            try:
                os.kill(os.getpid(), signal.SIGINT)
                got.append((stop.signum, stop.exit_code))   # (the save goes on)
            except KeyboardInterrupt:
                got.append("at once")
                break   # (SIGINT's default is now set: a third would end the process)
    assert got == [(WORKER_DEATH, 1), "at once"]
