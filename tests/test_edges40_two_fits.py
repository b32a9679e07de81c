"""edges40: two guarded epochs in two threads of one process (two fits, e.g. a notebook's
background fits, or a sweep's threads). What ``trainer.worker_deaths`` knew of an epoch
(its loader's workers, its stop flag, whether it waited for a batch) was one per process:
the epoch begun last was the only one. The first epoch's end shut down the other's workers
(its loader then failed mid-epoch) and left its own running; a worker's death in one
epoch asked the other's run to stop.

Real forked DataLoader workers made as the trainer makes them (``worker_signals``), one per
loader, tiny tensors; waits are on events and the workers' sentinels, bounded."""
from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from multiprocessing.connection import wait

from test_attacksvc39_loader import _Items, _loader, _run
from trainer.stopping import WORKER_DEATH


def _new_workers(before: set) -> list:
    """The loader workers started since ``before`` (a set of processes)."""
    return [p for p in multiprocessing.active_children() if p not in before]


def test_one_epochs_end_leaves_the_other_epochs_workers_alone():
    """A reads its first batch, then B; A's epoch ends (its consumer stops, as fit's does):
    A's workers end, B's read on, and B's epoch gets every batch."""
    from trainer import worker_deaths

    a_first, b_first, a_done = threading.Event(), threading.Event(), threading.Event()
    its: dict = {}
    before = set(multiprocessing.active_children())
    got: dict = {"A": [], "B": []}
    errors: list = []

    def epoch_a() -> None:
        try:
            batches = worker_deaths.guarded(_loader(_Items(8), workers=1), _run())
            for batch in batches:
                its["A"] = _new_workers(before)
                got["A"].append(int(batch[0][0]))
                a_first.set()
                assert b_first.wait(10)
                break   # (the generator is closed here: its workers end)
            batches.close()
        except BaseException as exc:
            errors.append(("A", exc))
        finally:
            a_done.set()

    def epoch_b() -> None:
        try:
            assert a_first.wait(10)
            for batch in worker_deaths.guarded(_loader(_Items(8), workers=1), _run()):
                its.setdefault("B", [p for p in _new_workers(before) if p not in its["A"]])
                got["B"].append(int(batch[0][0]))
                if len(got["B"]) == 1:
                    b_first.set()
                    assert a_done.wait(10)
        except BaseException as exc:
            errors.append(("B", exc))

    threads = [threading.Thread(target=f) for f in (epoch_a, epoch_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not any(t.is_alive() for t in threads)
    assert errors == [], errors
    assert got == {"A": [0], "B": list(range(8))}
    assert len(its["A"]) == len(its["B"]) == 1, its
    wait([w.sentinel for w in its["A"]], timeout=3.0)
    assert [w for w in its["A"] if w.is_alive()] == []


def test_a_worker_death_stops_the_run_it_belongs_to():
    """B's epoch reads in a thread; A's, begun after it, in the main thread (where torch's
    SIGCHLD handler, and ours around it, run). B's worker is killed while A's step runs:
    B's run is asked to stop for the death, A's is not (it was asked: A's run would have
    saved and stopped for another run's worker)."""
    from trainer import worker_deaths

    runs = {"A": _run(), "B": _run()}
    b_started, finish = threading.Event(), threading.Event()
    its: dict = {}
    errors: list = []
    before = set(multiprocessing.active_children())

    def epoch_b() -> None:
        try:
            for _ in worker_deaths.guarded(_loader(_Items(4), workers=1), runs["B"]):
                its["B"] = _new_workers(before)
                b_started.set()
                assert finish.wait(20)
                break
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=epoch_b)
    thread.start()
    try:
        assert b_started.wait(10)
        for _ in worker_deaths.guarded(_loader(_Items(4), workers=1), runs["A"]):
            its["A"] = [p for p in _new_workers(before) if p not in its["B"]]
            assert len(its["A"]) == len(its["B"]) == 1, its
            worker = its["B"][0]
            os.kill(worker.pid, signal.SIGKILL)
            wait([worker.sentinel], timeout=5.0)
            pause = threading.Event()
            for _ in range(500):   # (the handler runs here, between two of these waits)
                if runs["B"].stop.is_set() or runs["A"].stop.is_set():
                    break
                pause.wait(0.01)
            break
        assert runs["B"].stop.signum == WORKER_DEATH
        assert not runs["A"].stop.is_set()
    finally:
        finish.set()
        thread.join(20)
    assert not thread.is_alive()
    assert errors == [], errors
    assert [p for p in its["A"] + its["B"] if p.is_alive()] == []
