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

A worker is born with SIGTERM blocked (:func:`prepare` returns the loader's fork context
that does it) and keeps it blocked, a thread of its own taking it (:func:`shield`): a SIGTERM
before its initialiser ran, or while it is hung inside C, is not lost to torch's handler.

Workers end with their loader as they always did (its iterator sends them ``None``); a
loader's own SIGTERM to a worker that did not end within 5 s is ignored (it ends once it
reads that ``None``). Only workers started by ``fork`` share the mark; a spawned worker keeps
torch's handler. So on Linux a loader's workers are forked unless the start method is
``spawn`` (never Linux's default: someone asked for it): Python 3.14 made ``forkserver``
Linux's default, which would have turned this off, and sent a ``data.cache=ram`` cache
through ``/dev/shm`` (64 MB in a Docker container) instead of sharing its pages.
"""
from __future__ import annotations

import atexit
import multiprocessing
import os
import signal
import sys
import threading
from typing import Any, Optional

_released: Optional[Any] = None   # 1 once the parent exits (shared with forked workers)
_parent: Optional[int] = None


class _Fork(multiprocessing.context.ForkContext):
    """``fork``, each worker born with SIGTERM blocked: torch's worker handler, set before the
    worker's initialiser (:func:`shield`) runs, ended a worker that a SIGTERM reached in
    between, and the run with it (a loader's workers start at every epoch and evaluation: a
    SIGTERM as they started crashed 9 of 40 loaders). :func:`shield` takes it, then pending."""

    class Process(multiprocessing.context.ForkProcess):
        def start(self) -> None:
            blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
            try:
                super().start()
            finally:   # (a SIGTERM meanwhile reaches this process now)
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


_FORK = _Fork()


def prepare() -> Optional[multiprocessing.context.BaseContext]:
    """In the training process, before a loader's workers start: the shared mark, set at its
    exit (registered after ``multiprocessing``'s own exit function, so it runs first). Returns
    the loader's ``multiprocessing_context``: :class:`_Fork` where workers are forked (see
    :func:`forks`), else None (the default: a spawned worker keeps torch's handler)."""
    global _released, _parent
    if _released is None or _parent != os.getpid():
        _released, _parent = multiprocessing.RawValue("b", 0), os.getpid()
        atexit.register(_release)
    return _FORK if forks() else None


def forks() -> bool:
    """Whether a loader's workers are forked: where the start method is ``fork``, and on
    Linux where it is ``forkserver`` too: Python 3.14's default there, which nothing tells
    apart from one a user set; forking keeps what every Python before it did."""
    method = multiprocessing.get_start_method()
    return method == "fork" or (method == "forkserver" and sys.platform.startswith("linux"))


def _release() -> None:
    if _released is not None and _parent == os.getpid():
        _released.value = 1


def shield() -> None:
    """In a worker (after torch set its handlers): SIGTERM ignored while its parent runs and
    has not begun to exit.

    SIGTERM is blocked and taken by a thread of its own (``sigwait``), not by a handler: a
    Python handler runs only when the worker's main thread comes back to the interpreter, and
    a worker hung inside a C library (a deadlock after fork, as OpenCV's thread pool did) never
    does. It outlived every SIGTERM: the parent's exit (``multiprocessing`` joins its daemonic
    children) waited for it forever, after the second Ctrl-C that stops a run at once."""
    released, parent = _released, _parent
    if released is None or parent is None or os.getppid() != parent:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        return   # (spawned, or not prepared: torch's handler stays)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})   # (threads started later too)
    threading.Thread(target=_take_sigterm, args=(released, parent), daemon=True,
                     name="worker-sigterm").start()


def _take_sigterm(released: Any, parent: int) -> None:
    while True:
        signal.sigwait({signal.SIGTERM})
        if released.value or os.getppid() != parent:
            os._exit(0)


def init(worker_id: int) -> None:
    """A ``worker_init_fn`` that only shields (evaluation's loader)."""
    shield()
