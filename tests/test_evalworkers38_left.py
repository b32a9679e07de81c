"""``trainer eval`` whose loader worker failed (a MemoryError in the worker, the OOM killer's
SIGKILL of one) said it in one line (attackt31) and left its loader's other workers running:
the error kept the loader alive (its traceback, as a notebook keeps the last error), so its
workers held their memory until a garbage collection found it, long after, at any later
call, and then waited up to 5 s for each of them (the suite's 20 s stalls at random tests:
a prune, a pull, a predict). Now evaluation ends its workers as its loop ends, however it
ends. Real forked workers of the evaluation's loader, the CLI in-process as a notebook runs
it."""
from __future__ import annotations

import multiprocessing
import os
import signal

import pytest
import torch
from click.testing import CliRunner

from trainer.cli import cli
from trainer.data.dataset import EvalDataset
from trainer.model import YoloV4Tiny

_MAIN = os.getpid()


@pytest.mark.parametrize("how", ["memory", "killed"])
def test_eval_whose_loader_worker_failed_leaves_no_worker_running(tiny_config, tmp_path,
                                                                  monkeypatch, how):
    read = EvalDataset.__getitem__

    def getitem(self, index):
        if os.getpid() != _MAIN and how == "killed" and index == 0:
            os.kill(os.getpid(), signal.SIGKILL)
        if os.getpid() != _MAIN:
            raise MemoryError("Unable to allocate 3.52 GiB for an array")
        return read(self, index)

    monkeypatch.setattr(EvalDataset, "__getitem__", getitem)
    torch.save({"model": YoloV4Tiny(3, input_size=64, width=0.25).state_dict()},
               tmp_path / "best.pt")
    before = set(multiprocessing.active_children())
    r = CliRunner().invoke(cli, ["eval", "-c", tiny_config(**{"data.workers": 2}), "-w",
                                 str(tmp_path / "best.pt")])

    assert r.exit_code == 1, r.output
    assert r.stderr.strip().splitlines()[-1].startswith("Error: a DataLoader worker "), r.stderr
    left = [p for p in multiprocessing.active_children() if p not in before]
    assert left == [], left   # (the error, kept, keeps nothing running)


def test_a_run_stopped_in_a_notebook_leaves_no_loader_worker_running(tiny_config,
                                                                     one_torch_thread):
    """The same for training: a Ctrl-C in a notebook stops the run at an iteration's end
    (saved); the error kept (``sys.last_traceback``) kept the epoch's loader and its workers
    running until a garbage collection (test_messages_worker30's run: 20 s at a later test)."""
    from test_messages_worker30 import _StopAt
    from trainer.config import load_config
    from trainer.engine import fit
    from trainer.errors import TrainingInterrupted

    cfg = load_config(tiny_config(**{"data.workers": 2, "train.batch_size": 2,
                                     "train.freeze_epochs": 0, "train.epochs": 1,
                                     "data.max_val_images": 2}))
    before = set(multiprocessing.active_children())
    with pytest.raises(TrainingInterrupted) as caught:
        fit(cfg, resume="none", callbacks=[_StopAt(2)])
    kept = caught.value.__traceback__   # as sys.last_traceback keeps it

    left = [p for p in multiprocessing.active_children() if p not in before]
    assert left == [] and kept is not None, left
