"""A run stopped in a notebook (its error kept, as ``sys.last_traceback`` keeps it) kept the
epoch's loader alive, and its workers held their memory until a garbage collection found it,
long after, at any later call, which then waited up to 5 s for each of them (the suite's 20 s
stalls at random tests: a prune, a pull, a predict). Now an epoch ends its workers however it
ends (``trainer eval``'s evaluation too: tests/test_attackt31_eval_workers.py). Real forked
workers of the trainer's loader, a real fit."""
from __future__ import annotations

import multiprocessing

import pytest


def test_a_run_stopped_in_a_notebook_leaves_no_loader_worker_running(tiny_config,
                                                                     one_torch_thread):
    """A Ctrl-C in a notebook stops the run at an iteration's end (saved): no loader worker
    of it runs on (test_messages_worker30's run: 20 s at a later test's collection)."""
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
