"""worker32: a DataLoader worker that crashes while it sends a batch breaks the loader's pipe
(``ConnectionResetError``) a little before its exit can be reaped. torch's own look at its
workers then found no death, and the run ended in that traceback instead of the worker's
stop and save (``test_attackt31_worker_errors``'s crash case failed so in a loaded full
run). The broken pipe now waits, on the workers' sentinels and for a bounded time, for the
worker behind it to end, and names how it ended."""
from __future__ import annotations

import multiprocessing
import os
import signal

import pytest

from trainer import worker_deaths
from trainer.stopping import WORKER_DEATH, StopFlag


def _crash_once_told(told, parents) -> None:
    """A worker that crashes (SIGSEGV) once its parent's end of ``told`` closes."""
    import faulthandler

    faulthandler.disable()
    parents.close()   # (the copy fork gave this process: else no EOF ever comes)
    try:
        told.recv()
    except EOFError:
        pass
    os.kill(os.getpid(), signal.SIGSEGV)


class _Broken:
    """A loader iterator whose worker is still alive when its pipe breaks: ``next`` lets the
    worker go on to its crash, then raises what the loader's read of its batch raised."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("fork")
        self._child_end, self._ours = ctx.Pipe(duplex=False)
        self._workers = [ctx.Process(target=_crash_once_told, args=(self._child_end, self._ours))]
        self._workers[0].start()
        self._child_end.close()

    def __iter__(self):
        return self

    def __next__(self):
        self._ours.close()   # (the worker crashes from here on, in its own time)
        raise ConnectionResetError(104, "Connection reset by peer")


@pytest.fixture
def no_sigchld_handler():
    """No SIGCHLD handler (torch's, if an earlier test's loader set it, would look at that
    loader's workers when this test's child ends)."""
    before = signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGCHLD, before)


def test_a_broken_pipe_waits_for_the_worker_behind_it_and_names_its_crash(no_sigchld_handler):
    it, stop, died = _Broken(), StopFlag(25), []

    with pytest.raises(ConnectionResetError):
        next(worker_deaths._batches(it, stop, lambda: died.append(stop.detail)))

    pid = it._workers[0].pid
    assert stop.signum == WORKER_DEATH
    assert died == [f"DataLoader worker (pid {pid}) is killed by signal: Segmentation fault."]
    assert worker_deaths._advice(died[0]).startswith(
        f" (DataLoader worker (pid {pid}) is killed by signal: Segmentation fault: a crash while "
        "a batch was read, not memory")


def test_a_broken_pipe_with_every_worker_alive_is_no_death(monkeypatch):
    """Bounded: no worker ends within the wait, the error is the pipe's own."""
    monkeypatch.setattr(worker_deaths, "EXIT_WAIT_S", 0.05)
    ctx = multiprocessing.get_context("fork")
    theirs, ours = ctx.Pipe(duplex=False)
    alive = ctx.Process(target=theirs.recv)
    alive.start()
    try:
        it = type("It", (), {"_workers": [alive]})()
        assert worker_deaths._death_behind(ConnectionResetError(104, "reset"), it) is None
    finally:
        ours.send(None)
        alive.join(5)
    assert alive.exitcode == 0
