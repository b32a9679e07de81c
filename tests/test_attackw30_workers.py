"""Two holes in the DataLoader workers' SIGTERM shield (stop29, trainer/data/worker_signals.py).

A DataLoader worker hung inside a C library (a lock taken twice: the deadlock after fork
that OpenCV's thread pool gave here) never runs a Python signal handler. The worker's SIGTERM
shield (stop29) was one: such a worker outlived every SIGTERM, and the training process's
exit, where ``multiprocessing`` ends its daemonic children with SIGTERM and joins them, waited
for it forever (after the second Ctrl-C that stops a run at once, the process did not end).

A real forked worker of the trainer's loader, hung in ``pthread_mutex_lock``; the test does
what the training process's exit does: mark it (``worker_signals``' exit function), SIGTERM,
join.

And a worker that a SIGTERM reached as it started, before its initialiser set the shield up,
was ended by torch's handler, and the run with it (``DataLoader worker (pid …) is killed by
signal: Terminated.``): a loader's workers start at every epoch and evaluation."""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import subprocess
import time

import pytest
import torch
from torch.utils.data import Dataset

from trainer.data import worker_signals
from trainer.data.dataset import build_loader

HUNG = 2   # the item whose loading hangs


class _HangsInC(Dataset):
    """Item ``HUNG`` locks a mutex twice (no error check: the second waits forever), after
    putting the mutex's address where the test can see it."""

    def __init__(self) -> None:
        self.mutex_at = multiprocessing.RawValue("Q", 0)

    def __len__(self) -> int:
        return 6

    def __getitem__(self, index: int) -> torch.Tensor:
        if index == HUNG:
            libc = ctypes.CDLL(None)
            mutex = ctypes.create_string_buffer(64)   # PTHREAD_MUTEX_INITIALIZER: zeros
            self.mutex_at.value = ctypes.addressof(mutex)
            libc.pthread_mutex_lock(mutex)
            libc.pthread_mutex_lock(mutex)
        return torch.zeros(1)


def _waits_on(pid: int, address: int) -> bool:
    """Whether process ``pid`` sits in the futex call on ``address`` (x86-64 and arm64
    number it 202 and 98)."""
    fields = open(f"/proc/{pid}/syscall").read().split()
    return len(fields) > 1 and fields[0] in ("202", "98") and int(fields[1], 16) == address


def test_a_worker_hung_inside_c_ends_at_the_training_process_exit():
    if not os.path.exists(f"/proc/{os.getpid()}/syscall"):
        pytest.skip("needs /proc/PID/syscall (Linux)")
    dataset = _HangsInC()
    loader = build_loader(dataset, 1, shuffle=False, workers=1, seed=0, drop_last=False)
    it = iter(loader)
    assert [int(next(it).numel()) for _ in range(HUNG)] == [1] * HUNG   # then it loads HUNG
    worker = it._workers[0]
    try:
        deadline = time.monotonic() + 60
        while not (dataset.mutex_at.value and _waits_on(worker.pid, dataset.mutex_at.value)):
            assert time.monotonic() < deadline, "the worker never reached the lock"
            time.sleep(0.01)
        worker_signals._release()   # the training process exits: multiprocessing's SIGTERM
        worker.terminate()
        worker.join(20)
        assert worker.exitcode == 0       # before: still alive (the join at exit: forever)
    finally:
        worker_signals._released.value = 0   # (this process goes on: its later loaders shield)
        if worker.is_alive():
            worker.kill()
            worker.join()
        del it


class _Starting(Dataset):
    """Holds each worker as it starts, before its initialiser shields it (the initialiser reads
    the dataset's ``epoch``), until the test has sent it a SIGTERM."""

    def __init__(self) -> None:
        self.starting, self.sent = multiprocessing.Event(), multiprocessing.Event()

    @property
    def epoch(self) -> int:
        self.starting.set()
        self.sent.wait(60)
        return 0

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.zeros(1)


def test_a_sigterm_as_a_worker_starts_does_not_end_it():
    dataset = _Starting()
    loader = build_loader(dataset, 1, shuffle=False, workers=1, seed=0, drop_last=False)
    it = iter(loader)
    assert dataset.starting.wait(60)
    # (From another process, as systemd's or kill -- -PGID's: not the worker's parent.)
    subprocess.run(["kill", "-s", "TERM", str(it._workers[0].pid)], check=True)
    dataset.sent.set()
    assert len(list(it)) == 4      # before: "DataLoader worker (pid …) is killed by signal"
