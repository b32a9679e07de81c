"""The Ctrl-C sweeps' tracer (test_interrupt_locks._InterruptAt) landing in code the
collector runs: a weakref callback of a cycle it frees, run while CPython makes the frame
object of a traced call (segv51).

CPython 3.11's call_trace() holds the thread's trace function borrowed across that frame
object's making; the tracer's landing there turns tracing off (``sys.settrace(None)``), and
a trace function held by nothing else was freed and then called: an xdist worker segfaulted
in the opcode sweep of start_thread (threading's ``_dangling`` WeakSet losing a collected
BackgroundThread). And Python loses a KeyboardInterrupt raised in such a callback ("Exception
ignored in"): the work ran on to its end, which the sweeps took for the end of their points.
"""
from __future__ import annotations

import gc
import os
import signal
import sys
import weakref

import pytest

from test_interrupt_locks import _InterruptAt, _interrupted_at


class _Node:
    pass


def _landed_in_a_collectors_callback() -> str:
    """A sweep's run whose 2nd point (of this file's functions) is a weakref callback the
    collector runs at the call of ``called``: what ``_interrupted_at`` answered, and where
    the Ctrl-C landed."""
    made: list[_InterruptAt] = []

    class Tracer(_InterruptAt):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    def collected(ref) -> None:   # point 2
        pass

    def called() -> None:
        pass

    def work() -> None:   # point 1
        threshold = gc.get_threshold()
        gc.disable()
        node = _Node()
        node.me = node   # a cycle only the collector frees
        ref = weakref.ref(node, collected)
        del node
        gc.set_threshold(1)   # the next object the collector tracks (called's frame) collects
        gc.enable()
        try:
            called()
        finally:
            gc.set_threshold(*threshold)
        assert ref() is None

    import test_interrupt_locks
    test_interrupt_locks._InterruptAt = Tracer   # (this process is a fork: not undone)
    # Python's own hook for what it lost, not pytest's: pytest's keeps each until the test
    # ends, its traceback the tracer's frames and so the tracer (a worker segfaulted where
    # nothing was raised: a landing under deferred(), the handler's path).
    lost: list[str] = []
    sys.unraisablehook = lambda unraisable: lost.append(unraisable.exc_type.__name__)
    hit, calls = _interrupted_at(2, work, only_under=__file__)
    # (3 calls: the call_trace() that made called's frame still calls the tracer it holds)
    return f"{hit} {calls} {made[0].where.split(' <- ')[0].rsplit(':', 1)[0]} {lost}"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the run is forked")
def test_a_ctrl_c_landed_in_a_weakref_callback_run_by_the_collector_is_a_point_passed():
    """Forked: the freed tracer segfaulted (the child killed by SIGSEGV), and with the
    instance as trace function (no freeing) the run answered "not landed"."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:   # the child: no pytest machinery past this point
        os.close(read)
        code = 1
        try:
            os.write(write, _landed_in_a_collectors_callback().encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as answer:
        said = answer.read()
    _, status = os.waitpid(pid, 0)
    assert not os.WIFSIGNALED(status), \
        f"the sweep's run killed by {signal.Signals(os.WTERMSIG(status)).name}"
    assert os.WEXITSTATUS(status) == 0, said
    assert said == "True 3 test_segv51_tracer.py:collected ['KeyboardInterrupt']"
