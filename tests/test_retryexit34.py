"""retryexit34: a Drive retry loop (``for attempt in retrying(...)``) left by a return or an
error kept its generator suspended until its dealloc closed it, running the loop's ending
there; a Ctrl-C that arrived then was "Exception ignored" by CPython: lost, the command going
on, a stray traceback on stderr (flakes34, from every full run's warning). A Ctrl-C at every
point of such a loop now reaches the caller."""
from __future__ import annotations

import gc
import os
import sys

import pytest

import drivestage
from drivestage.drive.retry import retrying
from _sweep import collections_of_new_objects_only
from test_interrupt_locks import _InterruptAt

UNDER = os.path.dirname(drivestage.__file__)


def _left_by_return() -> int:
    for attempt in retrying("reading x", attempts=3):
        with attempt:
            return 1
    raise AssertionError("unreachable")


def _left_by_an_error() -> int:
    for attempt in retrying("reading x", attempts=3):
        with attempt:
            raise ValueError("not retried")
    raise AssertionError("unreachable")


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("loop", [_left_by_return, _left_by_an_error])
def test_a_ctrl_c_anywhere_in_a_retry_loop_reaches_the_caller(loop):
    landed = 0
    with collections_of_new_objects_only():   # gc.collect() below: this loop's garbage only
        for k in range(1, 400):
            tracer = _InterruptAt(k, only_under=UNDER, opcodes=True)
            raised = False
            sys.settrace(tracer)
            try:
                loop()
            except KeyboardInterrupt:
                raised = True
            except Exception:
                pass
            finally:
                sys.settrace(None)
            gc.collect()
            if tracer.calls < k:   # the loop ended before the k-th point: all were tried
                break
            landed += 1
            assert raised, f"the Ctrl-C at {tracer.where} was lost"
    assert landed > 5
