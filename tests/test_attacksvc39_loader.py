"""Attacks on the loader shutdown of session 38 (an epoch's and an evaluation's workers end
with it however it ends): an error raised by the loader itself (a dataset's bug re-raised
from a worker: ``ValueError: Caught ValueError in DataLoader worker process 0``), a
KeyboardInterrupt in the middle of the shutdown, a worker SIGKILLed as it shuts down,
``num_workers=0``. The error kept (as a notebook keeps the last one) must not keep workers
running, holding their memory until a garbage collection (which then waited up to 5 s for
each); the original error is the one raised; nothing waits without a bound.

Real forked DataLoader workers, made as the trainer makes them (``worker_signals``), read
through ``guarded`` as an epoch reads them; waits are on the workers' sentinels."""
from __future__ import annotations

import multiprocessing
import os
import signal
from multiprocessing.connection import wait
from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

_MAIN = os.getpid()


class _Items(Dataset):
    """Tensors of their index; the item ``bad`` raises ValueError in a worker (a bug of a
    transform, a label file's garbage)."""

    def __init__(self, n: int = 16, bad: int = -1):
        self.n, self.bad = n, bad

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        if i == self.bad:
            raise ValueError(f"item {i} has no boxes element")
        return torch.full((2,), float(i))


def _loader(ds, workers: int = 2) -> DataLoader:
    from trainer.data import worker_signals

    return DataLoader(ds, batch_size=1, num_workers=workers,
                      multiprocessing_context=worker_signals.prepare() if workers else None,
                      worker_init_fn=worker_signals.init if workers else None)


def _run():
    from trainer.stopping import StopFlag

    return SimpleNamespace(stop=StopFlag(30.0), cfg=None,
                           info=SimpleNamespace(world_size=1, is_main=True, rank=0))


def _left(before) -> list:
    """The loader workers started since ``before`` still running, once each had 3 s to end
    (on their sentinels: no polling)."""
    new = [p for p in multiprocessing.active_children() if p not in before]
    wait([p.sentinel for p in new], timeout=3.0)
    return [p for p in multiprocessing.active_children() if p not in before]


def test_an_error_the_loader_raises_ends_its_workers_though_the_error_is_kept():
    """The workers of an epoch whose loader raised a dataset's error end with it: the error
    came out of ``guarded`` itself (not a stop of the consumer, which closes it), and its
    traceback kept the iterator, its workers running, until a garbage collection."""
    from trainer.worker_deaths import guarded

    before = set(multiprocessing.active_children())
    batches = guarded(_loader(_Items(bad=5)), _run())
    with pytest.raises(ValueError, match="item 5 has no boxes element") as caught:
        for _ in batches:
            pass
    kept = caught.value.__traceback__   # as sys.last_traceback keeps it
    assert kept is not None
    new = [p for p in multiprocessing.active_children() if p not in before]
    assert [p for p in new if p.is_alive()] == [], new


class _Hangs(_Items):
    """Item ``hung`` never comes (an image on a mount that stopped answering): its worker
    waits for good, in the worker only."""

    def __init__(self, hung: int):
        super().__init__()
        self.hung = hung
        self.entered = multiprocessing.get_context("fork").Event()   # (it hangs from now)

    def __getitem__(self, i: int):
        if i == self.hung and os.getpid() != _MAIN:
            import threading

            self.entered.set()
            threading.Event().wait()
        return super().__getitem__(i)


@pytest.fixture
def quick_joins(monkeypatch):
    """torch's shutdown gives each worker 0.3 s, not 5 (MP_STATUS_CHECK_INTERVAL): what
    is asserted is what happens after it."""
    from torch.utils.data import _utils

    monkeypatch.setattr(_utils, "MP_STATUS_CHECK_INTERVAL", 0.3)


class _Stop(Exception):
    """The consumer's error (a stop's, a step's)."""


def _epoch(ds, at_shutdown=None) -> None:
    """One guarded epoch over ``ds`` whose consumer raises at its first batch (the engine
    closes the batches then, as fit does); ``at_shutdown(it)`` runs as torch's shutdown
    of its loader's iterator begins to join its workers."""
    from trainer import worker_deaths

    batches = worker_deaths.guarded(_loader(ds), _run())
    try:
        for _ in batches:
            it = worker_deaths._mine().current
            if isinstance(ds, _Hangs):   # (its worker hangs before the epoch ends)
                assert ds.entered.wait(10)
            if at_shutdown is not None:
                first = it._workers[0]
                join = first.join

                def joined(*args, **kwargs):
                    first.join = join
                    at_shutdown(it)
                    return join(*args, **kwargs)

                first.join = joined
            raise _Stop("a stop's error")
    except BaseException:
        batches.close()
        raise


@pytest.fixture
def workers():
    """The workers a test's ``at_shutdown`` saw; those left after it are killed (its own
    bound: none may outlive it, whatever it asserted)."""
    seen: list = []
    yield seen
    for w in seen:
        if w.is_alive():
            w.kill()
            w.join(5)


def _none_left(workers) -> bool:
    wait([w.sentinel for w in workers], timeout=3.0)
    return not any(w.is_alive() for w in workers)


def test_a_hung_worker_ends_with_its_epoch(quick_joins, workers):
    """torch's shutdown joins the hung worker, then sends it a SIGTERM, which a trainer's
    worker ignores while its parent lives (worker_signals): it hung on for good, holding
    its memory, in the notebook that ran the epoch."""
    with pytest.raises(_Stop):
        _epoch(_Hangs(hung=3), at_shutdown=lambda it: workers.extend(it._workers))
    assert workers and _none_left(workers)


def test_a_keyboard_interrupt_in_the_middle_of_the_shutdown_leaves_no_worker(quick_joins,
                                                                             workers):
    """A second Ctrl-C as the epoch's workers are joined (torch's join of a worker, cut):
    torch's shutdown is marked done, its SIGTERM ignored; the workers end all the same."""

    def interrupt(it) -> None:
        workers.extend(it._workers)
        os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        _epoch(_Hangs(hung=3), at_shutdown=interrupt)
    assert workers and _none_left(workers)


def test_a_worker_killed_as_the_shutdown_begins_leaves_the_epochs_own_error(quick_joins,
                                                                           workers):
    """A worker SIGKILLed (the OOM killer) as its epoch's shutdown joins it: the error that
    ended the epoch is the one raised, not torch's "DataLoader worker (pid N) is killed by
    signal" from its SIGCHLD handler, and no worker is left."""
    def kill(it) -> None:
        workers.extend(it._workers)
        os.kill(it._workers[1].pid, signal.SIGKILL)
        wait([it._workers[1].sentinel], timeout=3.0)

    with pytest.raises(_Stop, match="^a stop's error$"):
        _epoch(_Items(), at_shutdown=kill)
    assert workers and _none_left(workers)


def test_an_epoch_without_workers_raises_its_own_error():
    from trainer.worker_deaths import guarded

    batches = guarded(_loader(_Items(bad=2), workers=0), _run())
    with pytest.raises(ValueError, match="item 2 has no boxes element"):
        for _ in batches:
            pass
    batches = guarded(_loader(_Items(), workers=0), _run())
    with pytest.raises(_Stop):
        try:
            for _ in batches:
                raise _Stop()
        except BaseException:
            batches.close()
            raise
