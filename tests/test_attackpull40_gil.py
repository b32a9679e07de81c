"""A Ctrl-C at any moment of :func:`drivestage.gil.sharing`'s start or end (attackpull40).

A signal's handler runs, and its KeyboardInterrupt is raised, where the interpreter checks
for pending signals: as a Python function starts, and as a call of a C function returns
(``sys.setswitchinterval``, the lock's release). The sweep raises one at each such moment of
a block's start and end, in turn (a profile hook, the events those moments are), then runs
one block to its end: the process's interval must be the one it had, no block counted
alive and the lock free. A Ctrl-C handled as ``sys.setswitchinterval(0.0005)`` returned left
the interval the module had recorded as its own from before: the next block took the short
interval for the process's and put it back at its end, 0.5 ms for the rest of the process
(a notebook's kernel: every later cell)."""
from __future__ import annotations

import gc
import sys
import threading

import pytest

from drivestage import gil

INTERVAL = 0.005


def _interrupted_block(k: int) -> tuple[int, list[str]]:
    """One ``with gil.sharing()`` with a KeyboardInterrupt raised at the ``k``-th moment
    a handler could run; how many such moments it saw, and where it was raised."""
    seen, at = [0], []

    def hook(frame, event, arg) -> None:
        if frame.f_code.co_filename != gil.__file__ or event not in ("call", "c_return"):
            return
        seen[0] += 1
        if seen[0] == k:
            at.append(f"{frame.f_code.co_name}:{frame.f_lineno} {event} "
                      f"{getattr(arg, '__name__', '')}")
            raise KeyboardInterrupt

    sys.setprofile(hook)
    try:
        with gil.sharing():
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sys.setprofile(None)
    return seen[0], at


@pytest.fixture
def interval():
    found = sys.getswitchinterval()
    # (What the worker holds already, torch's ~300,000 objects among them, left out of the
    # sweep's collections: each would scan them all, 7-11 s a test under load.)
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
        sys.setswitchinterval(found)


@pytest.mark.parametrize("beside", ["alone", "nested", "another thread's"])
def test_a_ctrl_c_at_any_moment_of_a_block_leaves_the_interval_to_come_back(interval, beside):
    left = []
    for k in range(1, 100):
        sys.setswitchinterval(INTERVAL)
        outer = gil.sharing() if beside == "nested" else None
        leave, inside = threading.Event(), threading.Event()

        def other() -> None:
            with gil.sharing():
                inside.set()
                leave.wait(10)

        thread = threading.Thread(target=other) if beside == "another thread's" else None
        if outer is not None:
            outer.__enter__()
        if thread is not None:
            thread.start()
            assert inside.wait(10)
        seen, at = _interrupted_block(k)
        if outer is not None:
            outer.__exit__(None, None, None)
        if thread is not None:
            leave.set()
            thread.join(10)
        del outer
        gc.collect()   # (a block whose end was skipped dies with its frame)
        assert not gil._lock.locked(), at
        with gil.sharing():
            assert sys.getswitchinterval() == gil.SWITCH
        if (sys.getswitchinterval(), len(gil._alive)) != (INTERVAL, 0):
            left.append((at, sys.getswitchinterval(), len(gil._alive)))
        if seen < k:
            break
    assert k > 8 and left == []
