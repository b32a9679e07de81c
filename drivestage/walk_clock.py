"""One bound on the progress of every listing of a folder walk (:class:`WalkClock`).

A listing is bounded in time (``DRIVESTAGE_LISTING_TIMEOUT``: :mod:`drivestage.drive.paging`),
but a folder pull lists one folder after another: a tree of many subfolders, each listed
slowly and within the bound, took that bound once per folder level, ``jobs`` folders at a
time (pull50's left; fuse51); so did a push's walk of DEST and a dedupe's (walk51). Under
:func:`walking` every listing of the store shares one clock.

The clock bounds the walk's *progress*, not its size (walk52): the walk stops once its
listings went the bound without a page answered (in any thread), with the line of one
listing that took too long, named by the folder walked. Session 51 bounded the sum of its
listings' time instead, and a legitimate tree of thousands of folders (an ImageNet-like
dataset kept unzipped on Drive: 1,000 folders of 2 pages at 1-2 s a page) walked past an
hour and failed every rerun, blaming the server. A server that never ends is still stopped:
each listing alone in time and pages (:mod:`drivestage.drive.paging`), the walk in pages
(:func:`drivestage.drive.paging.walk_pages`) and in its whole listing time (:meth:`WalkClock.
took` against :func:`drivestage.drive.paging.walk_timeout`, a day: a server that keeps
answering in time with new folders, walk52b).

Below the store layers, which may not import :mod:`drivestage.drive`: the walk sets the
clock here, and Drive's paging reads it (a directory's listing, one scandir, has no pages).
The clock is a context variable, so each thread of :func:`drivestage.pool.each` is given it
(:func:`run`): a thread starts with none.

Under one clock: a pull's walk and its look again at the end, a push's every listing (its
walk of DEST, ``--delete``'s, and those during and after its uploads: walk52), a dedupe's,
a prune's (its plan's and its removals' listings of the folder: walk52), the trainer's look
for checkpoints.

The clock runs only while one of its walk's listings is under way (:meth:`WalkClock.listing`,
in any thread): a push lists DEST's folders, then reads sidecars, then lists what
``--delete`` would remove; a dedupe moves items between its listings. What a command does
between two listings (a folder made, an item moved, a file hashed) is not listing time, and
counting it would stop a walk for work the bound is not about (walk51: push, dedupe, the
trainer's look for checkpoints).
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator, Optional, TypeVar

__all__ = ["WalkClock", "current", "run", "walking"]

T = TypeVar("T")
R = TypeVar("R")


class WalkClock:
    """The time one walk's listings took so far, the pages they got (all threads), and the
    longest they went without one (:meth:`waited`)."""

    def __init__(self, where: str):
        self.where = where          # the folder walked, as the user named it (drive:data)
        self.pages = 0
        self._spent = 0.0           # seconds of listing ended before ``_since``
        self._since = 0.0           # when the listings under way began (``_open`` > 0)
        self._open = 0              # listings under way, in all threads
        self._at = 0.0              # listing time (``took``) when the last page came
        self._late = 0.0            # the longest listing time between two pages so far
        self._lock = threading.Lock()

    def took(self) -> float:
        """Seconds the walk spent listing: while one listing of it or more was under way."""
        with self._lock:
            return self._took()

    def waited(self) -> float:
        """The longest listing time the walk went without a page answered (by any of its
        listings), the wait under way included: its progress, bounded as one listing's time."""
        with self._lock:
            return max(self._late, self._took() - self._at)

    def _took(self) -> float:
        return self._spent + (time.monotonic() - self._since if self._open else 0.0)

    @contextmanager
    def listing(self) -> Iterator[None]:
        """The clock runs inside the block (one listing of the walk: :mod:`drivestage.drive.
        paging`), however many threads list at once (their time counted once)."""
        with self._lock:
            if not self._open:
                self._since = time.monotonic()
            self._open += 1
        try:
            yield
        finally:
            with self._lock:
                self._open -= 1
                if not self._open:
                    self._spent += time.monotonic() - self._since

    def got_page(self) -> None:
        """One more page listed (in any thread of the walk): progress. The wait before it
        counts (:meth:`waited`): a page that came after the bound stops the walk at its next
        page asked, as a listing's own bound does."""
        with self._lock:
            self.pages += 1
            took = self._took()
            self._late = max(self._late, took - self._at)
            self._at = took


_CURRENT: ContextVar[Optional[WalkClock]] = ContextVar("drivestage_walk_clock", default=None)


def current() -> Optional[WalkClock]:
    """The clock of the walk this thread lists for, if any."""
    return _CURRENT.get()


@contextmanager
def walking(clock: WalkClock) -> Iterator[WalkClock]:
    """Every listing made in this thread inside the block counts against ``clock``."""
    token = _CURRENT.set(clock)
    try:
        yield clock
    finally:
        _CURRENT.reset(token)


def run(clock: Optional[WalkClock], fn: Callable[[T], R], arg: T) -> R:
    """``fn(arg)`` with ``clock`` as this thread's walk clock (a thread of
    :func:`drivestage.pool.each`, which starts with none); None: as it is."""
    if clock is None:
        return fn(arg)
    with walking(clock):
        return fn(arg)
