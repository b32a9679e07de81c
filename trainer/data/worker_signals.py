"""A DataLoader worker outlives a SIGTERM sent to every process of the run.

systemd stopping a service (``KillMode=control-group``), Slurm's ``scancel``, ``kill --
-PGID`` and ``pkill -f`` send SIGTERM to the workers as well as to the training process.
torch's worker handler then ended the worker at once; the training process's SIGCHLD
handler raised ``DataLoader worker (pid …) is killed by signal: Terminated.`` wherever it
was (in the middle of a step), and the run ended with that traceback, exit 1, without its
stop save (stop29). The training process owns the stop: it saves at the iteration's end and
then lets its workers go. So a worker (:func:`shield`, its ``worker_init_fn``) ignores
SIGTERM, except where its parent is gone or is exiting (:func:`prepare` marks that in shared
memory at the parent's exit, before ``multiprocessing`` ends its daemonic children with
SIGTERM): then it ends as torch's handler ends it for its parent, exit 0.

Workers end with their loader as they always did (its iterator sends them ``None``); a
loader's own SIGTERM to a worker that did not end within 5 s is ignored (it ends once it
reads that ``None``). Only workers started by ``fork`` share the mark; a spawned worker keeps
torch's handler.
"""
from __future__ import annotations

import atexit
import multiprocessing
import os
import signal
from typing import Any, Optional

_released: Optional[Any] = None   # 1 once the parent exits (shared with forked workers)
_parent: Optional[int] = None


def prepare() -> None:
    """In the training process, before a loader's workers start: the shared mark, set at its
    exit (registered after ``multiprocessing``'s own exit function, so it runs first)."""
    global _released, _parent
    if _released is None or _parent != os.getpid():
        _released, _parent = multiprocessing.RawValue("b", 0), os.getpid()
        atexit.register(_release)


def _release() -> None:
    if _released is not None and _parent == os.getpid():
        _released.value = 1


def shield() -> None:
    """In a worker (after torch set its handlers): SIGTERM ignored while its parent runs and
    has not begun to exit."""
    released, parent = _released, _parent
    if released is None or parent is None or os.getppid() != parent:
        return   # (spawned, or not prepared: torch's handler stays)

    def handler(signum: int, frame: Any) -> None:
        if released.value or os.getppid() != parent:
            os._exit(0)

    signal.signal(signal.SIGTERM, handler)


def init(worker_id: int) -> None:
    """A ``worker_init_fn`` that only shields (evaluation's loader)."""
    shield()
