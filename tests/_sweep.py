"""How much of an exhaustive sweep (a Ctrl-C or a SIGKILL at each of many moments) one run of
the suite takes.

``make test`` holds the whole suite in CI's 10 minutes on 2 cores, so the longest sweeps take
every n-th moment by default (some of them, of those the first at a site no earlier moment
was at: tests/test_interrupt_commands.py); ``DRIVESTAGE_TEST_SWEEP=all`` takes every one of
them (run it after changing what they sweep over).
"""
from __future__ import annotations

import gc
import os
from contextlib import contextmanager
from typing import Iterator

#: Every moment of every sweep.
ALL = os.environ.get("DRIVESTAGE_TEST_SWEEP") == "all"


def every(stride: int) -> int:
    """The step of a sweep over moments: ``stride`` by default, 1 with
    ``DRIVESTAGE_TEST_SWEEP=all``."""
    return 1 if ALL else stride


@contextmanager
def collections_of_new_objects_only() -> Iterator[None]:
    """Inside, ``gc.collect()`` looks only at the objects made since the block began: all
    older ones (the suite's imports and fixtures, hundreds of thousands, alive) are frozen
    (``gc.freeze``) after one full collection. A sweep that collects after each step (its
    garbage finalized there, not under the next step's tracer) paid for the whole heap each
    time: test_retryexit34.py spent 0.5 s per step, 50 s in all, on objects no step made."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
