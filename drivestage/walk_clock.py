"""One time bound for every listing of a folder walk (:class:`WalkClock`).

A listing is bounded in time (``DRIVESTAGE_LISTING_TIMEOUT``: :mod:`drivestage.drive.paging`),
but a folder pull lists one folder after another: a tree of many subfolders, each listed
slowly and within the bound, took that bound once per folder level, ``jobs`` folders at a
time (pull50's left; fuse51). Under :func:`walking` every listing of the store shares one
clock, started when the walk began: the walk as a whole stops at the bound, with the line
of one listing that took too long, named by the folder pulled.

Below the store layers, which may not import :mod:`drivestage.drive`: the walk sets the
clock here, and Drive's paging reads it (a directory's listing, one scandir, has no pages).
The clock is a context variable, so each thread of :func:`drivestage.pool.each` is given it
(:func:`run`): a thread starts with none.
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
    """The start of one walk's listings and the pages they got so far (all threads)."""

    def __init__(self, where: str):
        self.where = where          # the folder walked, as the user named it (drive:data)
        self.began = time.monotonic()
        self.pages = 0
        self._lock = threading.Lock()

    def took(self) -> float:
        """Seconds since the walk began."""
        return time.monotonic() - self.began

    def got_page(self) -> None:
        """One more page listed (in any thread of the walk)."""
        with self._lock:
            self.pages += 1


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
