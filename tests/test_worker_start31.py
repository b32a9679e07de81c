"""Python 3.14 made ``forkserver`` Linux's default start method. The trainer's loaders then
started their workers from the fork server: not children of the training process, so the
SIGTERM shield (``worker_signals``: a worker ignores the SIGTERM systemd, Slurm or ``kill --
-PGID`` sends every process of the run, and the run stops with its save) stood aside, and a
``data.cache=ram`` cache went through ``/dev/shm`` (64 MB in a Docker container) instead of
being shared by fork. On Linux the loaders fork their workers unless the start method is
``spawn``, which someone asked for."""
from __future__ import annotations

import multiprocessing
import os
import sys

import pytest
import torch
from torch.utils.data import Dataset

from trainer.data import worker_signals
from trainer.data.dataset import build_loader


class _Parents(Dataset):
    """Each item: the pid of the process that loaded it, and that process's parent."""

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.tensor([os.getpid(), os.getppid()])


@pytest.fixture
def start_method():
    """Set the process's start method (``force``), and put the one it had back after."""
    before = multiprocessing.get_start_method(allow_none=True)

    def use(method: str) -> None:
        multiprocessing.set_start_method(method, force=True)

    yield use
    multiprocessing.set_start_method(before, force=True)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's start methods")
def test_under_forkserver_the_loaders_workers_are_the_training_processs_children(start_method):
    start_method("forkserver")   # (what Python 3.14 starts with on Linux)

    loader = build_loader(_Parents(), 1, shuffle=False, workers=1, seed=0, drop_last=False)
    seen = [tuple(batch[0].tolist()) for batch in loader]

    assert loader.multiprocessing_context is worker_signals.prepare()
    assert [parent for _, parent in seen] == [os.getpid()] * 2
    assert all(pid != os.getpid() for pid, _ in seen)


@pytest.mark.parametrize("method, forked", [("fork", True), ("forkserver", True),
                                            ("spawn", False)])
def test_which_start_methods_fork_the_workers(start_method, method, forked):
    start_method(method)
    expected = forked and sys.platform.startswith("linux") or method == "fork"
    assert (worker_signals.prepare() is not None) is expected
