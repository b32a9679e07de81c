"""A child process whose wall clock is off by a given number of seconds (attack48): the
environment that puts ``tests/_clock_shim/sitecustomize.py`` first on ``PYTHONPATH``."""
from __future__ import annotations

import os
from typing import Mapping

SHIM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_clock_shim")


def skewed_env(offset_s: float, base: Mapping[str, str]) -> dict[str, str]:
    """``base`` with the shim first on ``PYTHONPATH`` and the clock ``offset_s`` seconds off
    (positive: ahead of the true clock)."""
    env = dict(base)
    path = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = SHIM + (os.pathsep + path if path else "")
    env["DRIVESTAGE_TEST_CLOCK_OFFSET"] = repr(float(offset_s))
    return env
