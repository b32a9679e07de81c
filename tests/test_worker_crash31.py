"""A worker that crashed (SIGSEGV: a damaged image, a bug of the library that reads it) is not
advised memory settings (attackt31) whichever of torch's two errors comes first: its SIGCHLD
handler's ("is killed by signal: Segmentation fault") or, on a busy machine, the loader's own
look at its workers ("exited unexpectedly", no signal named: it was advised memory). The dead
worker's exit code names the signal."""
from __future__ import annotations

import faulthandler
import os
import signal
from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from trainer.state import Position
from trainer.stopping import StopFlag
from trainer.worker_deaths import _advice, guarded


class _CrashesAt(Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> torch.Tensor:
        if index == 0:
            faulthandler.disable()   # (pytest's: its dump on stderr)
            os.kill(os.getpid(), signal.SIGSEGV)
        return torch.zeros(1)


def test_a_crashed_worker_is_named_by_its_signal_whichever_error_comes_first():
    saved = []
    run = SimpleNamespace(stop=StopFlag(10), info=SimpleNamespace(world_size=1),
                          state=SimpleNamespace(pos=Position(0, 1, 1)),
                          checkpointer=SimpleNamespace(stop_at=lambda r, pos: saved.append(pos)))
    loader = DataLoader(_CrashesAt(), batch_size=1, num_workers=1)

    with pytest.raises(RuntimeError, match="DataLoader worker"):
        next(guarded(loader, run))

    assert run.stop.detail is not None
    assert "is killed by signal: Segmentation fault" in run.stop.detail, run.stop.detail
    assert "a crash while a batch was read, not memory" in _advice(run.stop.detail)


def test_the_loaders_own_words_get_the_signal_from_the_workers_exit_code():
    """The loader's words come first: its SIGCHLD kept back, as on a machine too busy for
    the handler to run before the loader's own look."""
    from trainer.worker_deaths import _with_signal

    loader = DataLoader(_CrashesAt(), batch_size=1, num_workers=1)
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    # (and no handler: a thread of another test left in this process, SIGCHLD not blocked
    # there, took the signal, and torch's handler raised in this thread's join: the CI)
    handler = signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:
        it = iter(loader)
        worker = it._workers[0]
        worker.join(60)
        words = f"DataLoader worker (pid(s) {worker.pid}) exited unexpectedly"

        named = _with_signal(words, it)

        it._shutdown_workers()
    finally:
        signal.signal(signal.SIGCHLD, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    assert worker.exitcode == -signal.SIGSEGV
    assert named == f"DataLoader worker (pid {worker.pid}) is killed by signal: Segmentation fault."
    assert _with_signal("DataLoader worker (pid(s) 1) exited unexpectedly", it) == \
        "DataLoader worker (pid(s) 1) exited unexpectedly"   # (not one of its workers)
