"""A DataLoader worker killed (the kernel's OOM killer: SIGKILL) in the middle of training
(attackw30's open point). torch's SIGCHLD handler raised `DataLoader worker (pid …) is killed
by signal: Killed.` wherever the training thread was (inside `backward()`), a traceback, exit
1, and everything trained since the last save was lost (up to `save_minutes`, or the epoch).
Now the step under way ends, the state of that iteration is saved as a stop's is, and the run
ends with one line (exit 1) that names the cause and what to change; `--resume auto` goes on
from there."""
from __future__ import annotations

import os
import signal
import time
from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from _messages import renders, shown
from trainer import checkpoint as ckpt
from trainer.callbacks import Callback
from trainer.config import load_config
from trainer.engine import fit
from trainer.errors import TrainingInterrupted
from trainer.state import Position
from trainer.stopping import WORKER_DEATH, StopFlag
from trainer.worker_deaths import guarded


HEADING = ("stopped by a DataLoader worker's death at …: out of memory? lower data.workers, "
           "train.batch_size or data.cache before you resume")


class _KillAWorker(Callback):
    """SIGKILL one of the loader's workers at the end of iteration ``at``, as the OOM killer
    does, and wait until it has ended (the SIGCHLD is then on its way)."""

    def __init__(self, at: int):
        self.at, self.killed = at, None

    def on_train_batch_end(self, run, pos, logs) -> None:
        if pos.iteration != self.at or self.killed:
            return
        import multiprocessing

        self.killed = multiprocessing.active_children()[0].pid
        os.kill(self.killed, signal.SIGKILL)
        # Until its SIGCHLD reached the training thread (the kernel sends it once every
        # thread of the worker has ended: after the worker shows as a zombie).
        began = time.monotonic()
        while not run.stop.is_set() and time.monotonic() - began < 30:
            time.sleep(0.01)


@renders(HEADING)
def test_a_worker_killed_mid_epoch_saves_that_iteration_and_the_resume_goes_on(
        tiny_config, one_torch_thread):
    cfg = load_config(tiny_config(**{"data.workers": 2, "train.batch_size": 2,
                                     "train.freeze_epochs": 0, "train.epochs": 1,
                                     "data.max_val_images": 2}))
    kill = _KillAWorker(at=2)

    with pytest.raises(TrainingInterrupted) as caught:
        fit(cfg, resume="none", callbacks=[kill])

    assert caught.value.exit_code == 1
    text = str(caught.value)
    assert text.startswith("stopped by a DataLoader worker's death at epoch 1, iteration 2: "
                           "autosave_00000002.pt is saved in "), text
    assert text.endswith(f"; resume with --resume auto (DataLoader worker (pid {kill.killed}) "
                         "is killed by signal: Killed: out of memory? lower data.workers, "
                         "train.batch_size or data.cache before you resume)"), text
    shown(HEADING, text)
    name = "autosave_00000002.pt"
    saved = ckpt.load_checkpoint(os.path.join(cfg.train.out_dir, name))
    assert saved["iteration"] == 2
    result = fit(cfg, resume="auto")
    assert os.path.basename(result.resumed_from) == name and result.epochs_run == 1


class _DiesAt(Dataset):
    """Item ``at`` ends its worker process as the OOM killer would."""

    def __init__(self, at: int):
        self.at = at

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> torch.Tensor:
        if index == self.at:
            os.kill(os.getpid(), signal.SIGKILL)
        return torch.zeros(1)


def test_a_death_seen_while_waiting_for_a_batch_saves_the_last_step_there():
    """The worker dies while the training thread waits for its batch (an iteration boundary):
    the state of the last step is saved there (one process), and the loader's error goes on
    to end the epoch; the stop names the death."""
    saved = []
    run = SimpleNamespace(stop=StopFlag(10), info=SimpleNamespace(world_size=1),
                          state=SimpleNamespace(pos=Position(0, 1, 1)),
                          checkpointer=SimpleNamespace(stop_at=lambda r, pos: saved.append(pos)))
    loader = DataLoader(_DiesAt(0), batch_size=1, num_workers=1)
    batches = guarded(loader, run)

    with pytest.raises(RuntimeError, match=r"^DataLoader worker \(pid(\(s\))? \d+\) (is "
                                           r"killed by signal: Killed\.|exited unexpectedly)"):
        next(batches)   # (its SIGCHLD, or the loader's own look at its workers: first wins)

    assert [p.label for p in saved] == ["epoch 1, iteration 1"]
    assert run.stop.signum == WORKER_DEATH and run.stop.exit_code == 1
    assert run.stop.detail.startswith("DataLoader worker (pid")


def test_outside_a_guarded_epoch_a_death_raises_as_torch_does():
    """An evaluation's loader (not guarded): torch's own error, at once."""
    loader = DataLoader(_DiesAt(0), batch_size=1, num_workers=1)
    with pytest.raises(RuntimeError, match="DataLoader worker"):
        for _ in loader:
            pass


class _StopAt(Callback):
    def __init__(self, at: int):
        self.at = at

    def on_train_batch_end(self, run, pos, logs) -> None:
        if pos.iteration == self.at:
            run.stop.request(signal.SIGINT)   # a notebook's Ctrl-C


def test_a_run_stopped_in_a_notebook_leaves_its_folder_free_while_its_traceback_lives(
        tiny_config, one_torch_thread):
    """IPython keeps the last traceback (`sys.last_traceback`), and with it the epoch's loader
    and its forked workers, which shared the run folder lock's descriptor: the next run in that
    folder, in the same notebook, was refused as "in use by another training run" (itself)."""
    cfg = load_config(tiny_config(**{"data.workers": 2, "train.batch_size": 2,
                                     "train.freeze_epochs": 0, "train.epochs": 1,
                                     "data.max_val_images": 2}))
    with pytest.raises(TrainingInterrupted) as caught:
        fit(cfg, resume="none", callbacks=[_StopAt(2)])
    kept = caught.value.__traceback__      # as sys.last_traceback keeps it
    assert caught.value.exit_code == 130

    result = fit(cfg, resume="auto")

    assert os.path.basename(result.resumed_from) == "autosave_00000002.pt"
    assert result.epochs_run == 1 and kept is not None


def test_a_resumed_run_whose_first_batch_is_lost_saves_nothing_again(
        tiny_config, one_torch_thread, monkeypatch):
    """A resumed run whose first batch's worker dies: nothing was trained since the state it
    resumed from, which it saved again over that very file (and pushed that name again);
    now nothing is saved, and the line names the checkpoint that still holds the run's state
    (attackwd30; attacktrain36: "nothing is saved" read as lost progress)."""
    from trainer.data.dataset import YoloDataset

    cfg = load_config(tiny_config(**{"train.batch_size": 4, "train.freeze_epochs": 0,
                                     "train.epochs": 1, "data.max_val_images": 2}))
    fit(cfg, resume="none")
    before = _checkpoints(cfg.train.out_dir)
    main, read = os.getpid(), YoloDataset.sample

    def sample(self, index, *args, **kwargs):
        if self.train and os.getpid() != main:
            os.kill(os.getpid(), signal.SIGKILL)
        return read(self, index, *args, **kwargs)

    monkeypatch.setattr(YoloDataset, "sample", sample)
    again = load_config(tiny_config(**{"train.batch_size": 4, "train.freeze_epochs": 0,
                                       "train.epochs": 2, "data.workers": 1}))

    with pytest.raises(TrainingInterrupted) as caught:
        fit(again, resume="auto")

    assert caught.value.exit_code == 1
    assert str(caught.value).startswith(
        "stopped by a DataLoader worker's death before the first step since its resume from "
        "epoch_001.pt at epoch 1, iteration 4: nothing was trained since, and epoch_001.pt "
        "holds the run's state still ("), str(caught.value)
    assert _checkpoints(cfg.train.out_dir) == before    # (not one written again)


def _checkpoints(folder) -> dict:
    """Each checkpoint in ``folder``: its md5 and mtime."""
    from drivestage.localfs import file_md5

    return {n: (file_md5(os.path.join(folder, n)), os.stat(os.path.join(folder, n)).st_mtime_ns)
            for n in os.listdir(folder) if n.endswith(".pt")}
