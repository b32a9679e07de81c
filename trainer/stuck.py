"""Under torchrun: a rank whose training thread is stuck in one call outside any collective.

:mod:`trainer.silence`'s heartbeat thread beats whatever the training thread does, so a
rank whose training thread blocked in a call that lets the interpreter go (a read from a
network mount that stopped answering, a batch's image on it with ``data.workers: 0``) still
beat: the other ranks waited in their collective for the process group's whole timeout (30
minutes of idle GPUs), then ended in gloo's traceback with nothing saved (hang32's open
point).

A thread that trains, evaluates, stages or saves runs Python code between its calls: its
innermost frame changes. One that waits for the other ranks does so inside a collective, as
long as they take: :func:`waiting` marks those calls (:mod:`trainer.distributed`'s
collectives, a DDP step's forward and backward, DDP's construction). :class:`Sampler`, read
by the heartbeat thread, says how long the training thread has been in the same frame at the
same instruction, its CPU time unchanged (a long computation in C is busy, not stuck),
outside such a mark; past ``train.silent_rank_minutes`` the heartbeat stops
(:class:`trainer.silence.Watcher`), and the others take the rank for silent as for a stopped
one: rank 0 saves the last iteration every rank completed (unless it is the stuck one), and
every live rank ends in one line. A call that comes back later (a mount that answers again)
beats again, unless the others ended meanwhile. Under gloo alone: under NCCL the thread waits
for the other ranks wherever it next waits for the GPU (a loss's ``float()``, an optimizer
step), which no mark can cover.
"""
from __future__ import annotations

import contextlib
import functools
import gc
import os
import sys
import threading
import time
from types import FrameType
from typing import Any, Callable, Iterator, Optional, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_inside = 0   # the training thread's depth in calls marked waiting (collectives)


@contextlib.contextmanager
def waiting() -> Iterator[None]:
    """Mark the body as a wait for the other ranks (a collective): never taken for stuck."""
    global _inside
    _inside += 1
    try:
        yield
    finally:
        _inside -= 1


def collective(func: F) -> F:
    """:func:`waiting` around every call of ``func``."""
    @functools.wraps(func)
    def marked(*args: Any, **kwargs: Any) -> Any:
        with waiting():
            return func(*args, **kwargs)
    return marked  # type: ignore[return-value]


def current_frames() -> dict[int, FrameType]:
    """``sys._current_frames()``, the garbage collector held off while it runs. On CPython
    3.11 and older a collection that starts as it makes the frames' objects (it holds the
    interpreter's lock of thread states then) and frees a ``threading.local`` deadlocks: the
    local's clean-up waits for that same lock, holding the GIL, and every thread of the
    process waits for good (python/cpython#106883; a test's watcher hung a pytest worker so,
    no signal handled, not even pytest-timeout's)."""
    if not gc.isenabled():
        return sys._current_frames()
    gc.disable()
    try:
        return sys._current_frames()
    finally:
        gc.enable()


class Sampler:
    """How long the thread that made it (the training thread) has been stuck in one call.

    :meth:`stuck_for` is called by another thread, every beat. The thread is stuck since the
    last call that found it moving, or inside a :func:`waiting` mark: its CPU time has not
    grown (a thread blocked in a read, or any wait, spends none; one that computes, or runs
    Python between short waits, does) and its innermost frame is the same one at the same
    instruction. No frame is held (a frame kept alive keeps its locals: a batch), so a frame
    is known by its address, code and instruction; the CPU clock tells a new frame at an old
    address, which ran Python to get there."""

    def __init__(self, guard_s: float) -> None:
        self.ident = threading.get_ident()
        try:   # (the clock of this thread, made here: the training thread's)
            self._clock: Optional[int] = time.pthread_getcpuclockid(self.ident)
        except (AttributeError, OSError):
            self._clock = None
        self._seen: Optional[tuple[int, Any, int, float]] = None
        self._where = "an unknown place"
        self._since = self._last = time.monotonic()
        #: Calls further apart than this: this process was stopped (Ctrl-Z, a VM paused), and
        #: its threads with it; what the training thread did meanwhile is not known.
        self.guard_s = guard_s

    def _cpu(self) -> Optional[float]:
        if self._clock is None:
            return None
        try:
            return time.clock_gettime(self._clock)
        except OSError:   # (the thread ended)
            return None

    def stuck_for(self, now: Optional[float] = None) -> float:
        """Seconds the thread has been in the same call outside a collective (0: moving)."""
        now = time.monotonic() if now is None else now
        paused, self._last = now - self._last > self.guard_s, now
        cpu = self._cpu()
        frame = current_frames().get(self.ident)
        if frame is None or cpu is None or _inside or paused:
            self._seen, self._since = None, now
            return 0.0
        key = (id(frame), frame.f_code, frame.f_lasti, cpu)
        if key != self._seen:
            self._seen, self._since = key, now
            self._where = _where(frame)
            return 0.0
        return now - self._since

    def where(self) -> str:
        """``open() at data/images.py:42``: the call the thread is in (its innermost Python
        frame: a call into C shows as the Python line that made it)."""
        return self._where

    def forget(self) -> None:
        """The watch ends."""
        self._seen = None


def _where(frame: FrameType) -> str:
    code = frame.f_code
    path = code.co_filename
    short = os.path.join(*path.split(os.sep)[-2:]) if os.sep in path else path
    return f"{code.co_name}() at {short}:{frame.f_lineno}"
