"""Work spread over threads, which a Ctrl-C stops at once and never leaves running.

``concurrent.futures.ThreadPoolExecutor`` fails a notebook and a CLI in two ways here:

- A Ctrl-C in the thread that waits (``Future.result()``, ``map``, the ``with`` block's
  ``shutdown``) stops nothing: the pool goes on with every item queued. An interrupted
  ``push --jobs 2`` of a run folder sent all of it before it exited.
- The waits are ``threading.Condition``'s, whose Python-level ``__enter__``/``__exit__`` a
  Ctrl-C can cut between taking and releasing the lock (see :mod:`drivestage.interrupts`):
  the pool's thread then waits for that lock for good, and the interpreter's exit waits for
  the pool's thread.

:func:`each` runs a function over items in :class:`~drivestage.interrupts.BackgroundThread`
s. When the calling thread is interrupted, no item starts any more, the items under way are
told (:func:`check` raises KeyboardInterrupt in them at their next safe point: an upload
between chunks, or a wait for Drive's answer, :mod:`drivestage.drive.connections`), and
:func:`each` raises once every one of its threads has ended, so a lock the caller releases
next (a push's place lock) never outlives the work it guards. All but a thread stuck in a
:func:`leavable` call (a read of a FUSE mount whose daemon stopped answering, which no
signal but SIGKILL breaks): it is left behind once it has been in that call
:data:`LEAVE_AFTER` seconds since the stop, and raises KeyboardInterrupt if the call ever
returns (hang51). A download's stream thread is left so by its pass (:func:`slotted`), and
:func:`aside` runs such a call of the main thread as :func:`each`'s one item (streams52).
:class:`Serial` runs small jobs in order in one thread beside the caller (an upload's hash).
"""
from __future__ import annotations

import collections
import functools
import logging
import os
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Optional, Sequence, TypeVar, Union

from drivestage.interrupts import BackgroundThread, Flag, Monitor

T = TypeVar("T")
R = TypeVar("R")

#: The most jobs a push or pull takes (``--jobs``): each is a thread with its own connection to
#: Drive and a chunk in flight, and Drive's per-user rate limit answers far fewer parallel
#: requests with 403 rateLimitExceeded.
MAX_JOBS = 64

log = logging.getLogger(__name__)


#: Seconds a thread of :func:`each` may stay in a :func:`leavable` call after its caller was
#: interrupted before it is left there: a read of a disk, or of a mount that answers, ends
#: well within it (and one left that would have ended only raises when it does).
LEAVE_AFTER = 1.0


class Slot:
    """A thread of :func:`each` (or one under :func:`slotted`): since when it is in a
    :func:`leavable` call (None: it is not), and whether its caller left it there."""

    def __init__(self) -> None:
        self.since: Optional[float] = None
        self.left = False


class _Local(threading.local):
    stops: tuple[Flag, ...] = ()
    slot: Optional[Slot] = None


#: Guards every :class:`Slot` (held for a moment: a look or a mark).
_SLOTS = Monitor()


def _fresh_slots() -> None:
    """In a forked child: a guard of its own (another thread of the parent may have held it
    at the fork, and no thread of the child would ever let it go: attacksig42)."""
    global _SLOTS
    _SLOTS = Monitor()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_slots)


_LOCAL = _Local()


def check() -> None:
    """In a thread of :func:`each` whose caller was interrupted, or under a
    :func:`stoppable` whose flag is set: raise KeyboardInterrupt (elsewhere, nothing). Long
    work calls it where stopping leaves nothing half done."""
    if any(stop.is_set() for stop in _LOCAL.stops):
        raise KeyboardInterrupt


def stops() -> tuple[Flag, ...]:
    """The flags that stop this thread's work at a :func:`check` (see :func:`watched`): a
    wait that no check reaches ends on them (:meth:`~drivestage.interrupts.Flag.echoed_to`)."""
    return tuple(_LOCAL.stops)


def watched() -> bool:
    """Whether this thread's work stops at a :func:`check` when told (a thread of
    :func:`each`, or under :func:`stoppable`)."""
    return bool(_LOCAL.stops)


@contextmanager
def stoppable(stop: Flag) -> Iterator[None]:
    """Work of this thread, and of the threads :func:`each` starts from it, stops at its
    next :func:`check` once ``stop`` is set: how another thread stops a push that runs in a
    thread no signal reaches (``Mirror.abandon``)."""
    saved = _LOCAL.stops
    _LOCAL.stops = saved + (stop,)
    try:
        yield
    finally:
        _LOCAL.stops = saved


@contextmanager
def leavable() -> Iterator[None]:
    """Around a call that may never return and that no signal breaks, and that leaves
    nothing half done if its thread is left in it: a read, or a stat, of a file of a FUSE or
    network mount (its daemon hung: the kernel waits for its answer through every signal but
    SIGKILL). In a thread of :func:`each` whose caller was interrupted, the caller waits for
    it :data:`LEAVE_AFTER` seconds at most, then leaves it there (a daemon thread: the
    interpreter's exit does not wait for it either); the call, should it return after all,
    raises KeyboardInterrupt here and nothing after it runs but the unwinding. A Ctrl-C before
    the call: it raises at once (:func:`check`). The same in a thread under :func:`slotted`,
    which its owner leaves with :func:`left_behind` (a download's stream, once its pass
    closes). Elsewhere it does nothing."""
    slot = _LOCAL.slot
    if slot is None:
        yield
        return
    check()
    with _SLOTS:
        slot.since = time.monotonic()
    try:
        yield
    finally:
        with _SLOTS:
            slot.since = None
            left = slot.left
    # (left there, its caller moved on: the block it read is no one's)
    if left:
        raise KeyboardInterrupt
    check()


@contextmanager
def slotted(slot: Slot) -> Iterator[None]:
    """This thread's :func:`leavable` calls are marked in ``slot``, for the thread that
    joins this one to leave it there with :func:`left_behind` (a download's stream thread,
    which its pass joins as it closes: :mod:`drivestage.stream_threads`)."""
    saved = _LOCAL.slot
    _LOCAL.slot = slot
    try:
        yield
    finally:
        _LOCAL.slot = saved


def left_behind(slot: Slot, stopped: float) -> bool:
    """Whether the thread of ``slot`` is left where it is: in a :func:`leavable` call
    :data:`LEAVE_AFTER` seconds since ``stopped`` (``time.monotonic()`` when its owner told
    it to stop), or left before. A left thread raises KeyboardInterrupt should the call
    return."""
    with _SLOTS:
        if slot.since is not None and \
                time.monotonic() - max(slot.since, stopped) >= LEAVE_AFTER:
            slot.left = True
        return slot.left


def aside(fn: Callable[[], R], name: str) -> R:
    """``fn()``, whose waits that no signal breaks are :func:`leavable` calls (the reads of
    a local folder's file), so that a Ctrl-C leaves it as a thread of :func:`each` is left:
    called here in a thread that has a slot (one of :func:`each`'s, a download's stream);
    elsewhere (the main thread, whose read of a hung FUSE mount held every Ctrl-C until the
    mount answered) in a thread of its own, as :func:`each`'s one item."""
    if _LOCAL.slot is not None:
        return fn()
    got = each(lambda _: fn(), [None], 1, name)[0]
    if isinstance(got, BaseException):
        raise got
    return got


def each(fn: Callable[[T], R], items: Sequence[T], jobs: int, name: str
         ) -> list[Union[R, BaseException]]:
    """``fn(item)`` for every item, ``jobs`` at a time in threads called ``name``: each
    result, or what it raised, in the items' order. Any exception of the calling thread
    while it waits (a Ctrl-C) stops the rest as the module doc says, and is raised once
    every thread has ended."""
    if not items:
        return []
    out: list[Union[R, BaseException]] = [KeyboardInterrupt()] * len(items)
    lock = Monitor()
    taken = 0
    stop = Flag()
    stops = _LOCAL.stops + (stop,)  # the caller's too: see stoppable()

    def work(slot: Slot) -> None:
        nonlocal taken
        _LOCAL.stops, _LOCAL.slot = stops, slot
        try:
            while True:
                with lock:
                    if any(s.is_set() for s in stops) or taken >= len(items):
                        return
                    i = taken
                    taken += 1
                try:
                    out[i] = fn(items[i])
                except BaseException as exc:  # the caller decides; a KeyboardInterrupt too
                    out[i] = exc
        finally:
            _LOCAL.stops, _LOCAL.slot = (), None

    slots = [Slot() for _ in range(max(1, min(jobs, len(items))))]
    threads = [BackgroundThread(functools.partial(work, s), name) for s in slots]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    except BaseException:
        stop.set()
        _join_all(threads, slots)
        raise
    return out


def _join_all(threads: Sequence[BackgroundThread], slots: Sequence[Slot]) -> None:
    """Wait for ``threads`` to end, through further Ctrl-Cs: the items under way stop at
    their next :func:`check`, and what the caller does next (release a lock, remove a
    temporary folder) must not happen while one still runs. A thread in a :func:`leavable`
    call :data:`LEAVE_AFTER` seconds after the stop is left there: a read of a hung FUSE
    mount held the pull through every Ctrl-C, kill -9 its only end (hang51)."""
    told = False
    stopped = time.monotonic()
    for t, slot in zip(threads, slots):
        while True:
            try:
                if t.join(0.1) or left_behind(slot, stopped):
                    break
                if not told and time.monotonic() - stopped >= 5.0:
                    told = True
                    log.warning("waiting for the transfers under way to stop")
            except KeyboardInterrupt:
                continue


# Seconds an idle Serial's thread waits for the next job before it ends: long enough that an
# upload whose hashing outpaces the network keeps one thread, short enough that one left
# unclosed is gone at once.
_LINGER = 0.5


class Serial:
    """Jobs run one after the other, in the order given, by one thread beside the caller;
    at most ``depth`` of them given and not yet done (:meth:`submit` waits for room)."""

    def __init__(self, name: str, depth: int = 2):
        self._name, self._depth = name, depth
        self._lock = Monitor()
        self._jobs: collections.deque[Callable[[], object]] = collections.deque()
        self._busy = False
        self._closed = False
        self._error: Optional[BaseException] = None
        self._thread: Optional[BackgroundThread] = None

    def submit(self, job: Callable[[], object]) -> None:
        """Queue ``job``, once fewer than ``depth`` are given and not done."""
        with self._lock:
            self._lock.wait_for(lambda: len(self._jobs) + self._busy < self._depth)
            # The thread first, the job after: a Ctrl-C between a job queued and its thread
            # started (made, not yet started) left the job with no thread, and drain() (an
            # upload's close on that very Ctrl-C) waited for it for good (CI: a push ran on
            # past its Ctrl-C). The thread waits for the lock, then finds the job.
            if self._thread is None:
                thread = BackgroundThread(self._run, self._name)
                thread.start()
                self._thread = thread
            self._jobs.append(job)
            self._lock.notify_all()

    def _run(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._jobs or self._closed, _LINGER)
                if not self._jobs:
                    # Idle or closed: it ends, and the next submit starts another. An owner
                    # that never closes it (a Ctrl-C as its close began) leaves no thread
                    # waiting for jobs for good. (One a Ctrl-C kept from being recorded
                    # leaves the recorded one be.)
                    if self._thread is not None and self._thread.thread is \
                            threading.current_thread():
                        self._thread = None
                    return
                job = self._jobs.popleft()
                self._busy = True
            try:
                job()
            except BaseException as exc:
                with self._lock:
                    self._error = self._error or exc
            finally:
                with self._lock:
                    self._busy = False
                    self._lock.notify_all()

    def drain(self) -> None:
        """Wait until every job given is done; raise the first one's error, if any."""
        with self._lock:
            self._lock.wait_for(lambda: not self._jobs and not self._busy)
            error = self._error
        if error is not None:
            raise error

    def close(self) -> None:
        """Let the jobs given end, then the thread (the jobs' errors are not raised)."""
        with self._lock:
            self._closed = True
            self._lock.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()
