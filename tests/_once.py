"""Something expensive (a reference training run) made once per test session, shared by the
test workers (pytest-xdist): a module-scoped fixture alone is made again in every worker that
runs one of the module's tests, and those are spread over the workers.

The first worker that asks makes it under a file lock; the others wait for it and read what it
left (a folder, and a small picklable value) instead of training the same run again.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Callable

from filelock import FileLock


def made_once(tmp_path_factory, name: str, make: Callable[[Path], Any]) -> tuple[Path, Any]:
    """``(folder, value)``: ``make(folder)`` run once per session (all workers together), in a
    folder of its own under the session's temporary root; ``value`` is what it returned
    (picklable). Tests must not change the folder: copy it first."""
    base = tmp_path_factory.getbasetemp()
    if base.name.startswith("popen-gw"):   # a worker's: the session's root is above it
        base = base.parent
    folder = base / f"once-{name}"
    done = base / f"once-{name}.pickle"
    with FileLock(str(base / f"once-{name}.lock")):
        if not done.exists():
            folder.mkdir()
            value = make(folder)
            done.write_bytes(pickle.dumps(value))
    return folder, pickle.loads(done.read_bytes())
