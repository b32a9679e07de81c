"""A child process whose wall clock is off by a given number of seconds (attack48): the
environment that puts ``tests/_clock_shim/sitecustomize.py`` first on ``PYTHONPATH``."""
from __future__ import annotations

import os
from typing import Mapping, Optional

SHIM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_clock_shim")


def skewed_env(offset_s: float, base: Mapping[str, str],
               stepped_by: Optional[str] = None) -> dict[str, str]:
    """``base`` with the shim first on ``PYTHONPATH`` and the clock ``offset_s`` seconds off
    (positive: ahead of the true clock). ``stepped_by``: a file whose content (seconds), once
    written, is the offset from then on (:func:`step`)."""
    env = dict(base)
    path = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = SHIM + (os.pathsep + path if path else "")
    env["DRIVESTAGE_TEST_CLOCK_OFFSET"] = repr(float(offset_s))
    if stepped_by is not None:
        env["DRIVESTAGE_TEST_CLOCK_FILE"] = stepped_by
    return env


def step(path: str, offset_s: float) -> None:
    """Step the clock of the children started with ``stepped_by=path`` to ``offset_s`` off
    (written whole: a reader sees the old offset or the new one)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as fh:
        fh.write(repr(float(offset_s)))
    os.replace(tmp, path)
