"""retryexit34: a Drive retry loop (``for attempt in retrying(...)``) left by a return or an
error kept its generator suspended until its dealloc closed it, running the loop's ending
there; a Ctrl-C that arrived then was "Exception ignored" by CPython: lost, the command going
on, a stray traceback on stderr (flakes34, from every full run's warning). A Ctrl-C at every
point of such a loop now reaches the caller."""
from __future__ import annotations

import gc
import os

import pytest

import drivestage
from drivestage.drive.retry import retrying
from _sweep import collections_of_new_objects_only
from test_interrupt_locks import _each_ctrl_c

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
    # gc.collect() after each run, outside the tracer: its garbage finalized there, not
    # under the next run's tracer (and this loop's garbage only).
    with collections_of_new_objects_only():
        for point in _each_ctrl_c(loop, only_under=UNDER, ends_in=(Exception,),
                                  between=gc.collect):
            landed += 1
            assert point.raised is KeyboardInterrupt, \
                f"the Ctrl-C at {point} was lost (raised: {point.raised})"
    assert landed > 5
