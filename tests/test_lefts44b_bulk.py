"""lefts44b: :func:`drivestage.heap.bulk` (a ``drivestage pull`` process's steps run without
the cyclic collector) left it disabled for good in two ways (attack44): a Ctrl-C landing
between the last step's ``gc.freeze()`` and ``gc.enable()`` (every later step then did
nothing either), and a fork while another thread ran a step (the child's ``_depth`` stayed 1,
so no step of the child's ever gave the collector back)."""
from __future__ import annotations

import gc
import os
import threading

import pytest

from drivestage import heap
from test_interrupt_locks import _each_ctrl_c


@pytest.fixture
def bulk_mode(monkeypatch):
    """A pull's own process (``collect_in_bulk``), the collector given back as it was."""
    enabled = gc.isenabled()
    monkeypatch.setattr(heap, "_BULK", True)
    yield
    gc.unfreeze()   # (what the test froze, and the suite's own frozen at collection)
    (gc.enable if enabled else gc.disable)()


def _clean() -> bool:
    mine = getattr(heap, "_mine", None)   # (this thread's steps; main's heap has no count)
    return gc.isenabled() and heap._depth == 0 and not heap._held and \
        getattr(mine, "depth", 0) == 0


def test_a_ctrl_c_at_any_point_of_a_bulk_step_gives_the_collector_back(bulk_mode):
    def work() -> None:
        with heap.bulk():
            pass

    landed = 0
    for point in _each_ctrl_c(work, only_under=heap.__file__):
        landed += 1
        assert _clean(), f"the collector held after a Ctrl-C at {point}"
        with heap.bulk():   # the next step holds it and gives it back
            assert not gc.isenabled()
        assert _clean()
    assert landed >= 5


def _child_reports(step) -> list[str]:
    """Fork; in the child, ``step()`` then what it sees of the collector (one line)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:   # (the child: never back into pytest)
        try:
            os.close(read)
            step()
            os.write(write, f"{gc.isenabled()} {heap._depth} {heap._held}".encode())
        finally:
            os._exit(0)
    os.close(write)
    try:
        with os.fdopen(read, "rb") as fh:
            said = fh.read().decode()
    finally:
        os.waitpid(pid, 0)
    return said.split()


def test_a_fork_during_a_step_leaves_the_child_its_own_steps_only(bulk_mode):
    inside, done = threading.Event(), threading.Event()

    def other() -> None:
        with heap.bulk():
            inside.set()
            done.wait(30)

    t = threading.Thread(target=other)
    t.start()
    try:
        assert inside.wait(10)
        # Another thread's step, not in the child: the collector is the child's again at once,
        # and its own steps hold it and give it back.
        def a_step() -> None:
            with heap.bulk():
                assert not gc.isenabled()
        assert _child_reports(lambda: None) == ["True", "0", "False"]
        assert _child_reports(a_step) == ["True", "0", "False"]
        assert not gc.isenabled()   # (the parent's step goes on)
    finally:
        done.set()
        t.join(10)
    assert not t.is_alive() and _clean()

    # The forking thread's own step goes on in the child and gives it back as it ends.
    read, write = os.pipe()
    with heap.bulk():
        pid = os.fork()
    if pid == 0:
        try:
            os.write(write, f"{gc.isenabled()} {heap._depth} {heap._held}".encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as fh:
        said = fh.read().decode().split()
    os.waitpid(pid, 0)
    assert said == ["True", "0", "False"] and _clean()
