"""How much of an exhaustive sweep (a Ctrl-C or a SIGKILL at each of many moments) one run of
the suite takes.

``make test`` holds the whole suite in CI's 10 minutes on 2 cores, so the longest sweeps take
every n-th moment by default; ``DRIVESTAGE_TEST_SWEEP=all`` takes every one of them (run it
after changing what they sweep over).
"""
from __future__ import annotations

import os

#: Every moment of every sweep.
ALL = os.environ.get("DRIVESTAGE_TEST_SWEEP") == "all"


def every(stride: int) -> int:
    """The step of a sweep over moments: ``stride`` by default, 1 with
    ``DRIVESTAGE_TEST_SWEEP=all``."""
    return 1 if ALL else stride
