"""Locks that a Ctrl-C cannot leave held.

Python runs a signal handler - so it raises KeyboardInterrupt - between two bytecodes of the
main thread, and that includes the pure-Python ``__enter__`` and ``__exit__`` of
``threading.Condition`` (and so of ``threading.Event``): right after the lock was taken, or
right before it is released. The ``with`` block then never releases it (CPython bpo-29988),
and every thread that needs the lock waits for good. A ``pull --extract`` interrupted while
it followed its download hung that way, about once in 15 tries on a loaded machine: the main
thread had left the download's Condition held, so its hash thread, streams and extraction
waited, and the main thread waited for them.

:class:`Monitor` is a lock whose ``__enter__`` and ``__exit__`` are the C lock's own: no
bytecode runs between taking it and entering the block, or between leaving the block and
releasing it, so an interrupt lands either outside or inside the block, where ``with``
releases it. It has a Condition's ``wait`` and ``notify``. Being reentrant, it is also
safe in a signal handler that sets a :class:`Flag` while the main thread is inside it
(``threading.Event`` then deadlocks on its own lock).
"""
from __future__ import annotations

import _thread
import threading
from typing import Callable, Optional, TypeVar

T = TypeVar("T")


class Monitor(_thread.RLock):  # type: ignore[misc]
    """A reentrant lock with :class:`threading.Condition`'s waiting and notifying, used by
    ``with``: see the module doc."""

    def __init__(self) -> None:
        super().__init__()
        # The Condition's wait() releases and takes this lock through its C methods.
        self._cond = threading.Condition(self)

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Release the lock until notified or ``timeout`` seconds passed; False on timeout.
        The lock is held again when it returns, or raises."""
        return self._cond.wait(timeout)

    def wait_for(self, predicate: Callable[[], T], timeout: Optional[float] = None) -> T:
        """Wait until ``predicate()`` is true (or ``timeout``); its last value."""
        return self._cond.wait_for(predicate, timeout)

    def notify(self, n: int = 1) -> None:
        """Wake up to ``n`` threads waiting (the lock must be held)."""
        self._cond.notify(n)

    def notify_all(self) -> None:
        """Wake every thread waiting (the lock must be held)."""
        self._cond.notify_all()


class Flag:
    """:class:`threading.Event` on a :class:`Monitor`: setting it from a signal handler, or
    a Ctrl-C while the main thread waits for it, leaves no lock held."""

    def __init__(self) -> None:
        self._lock = Monitor()
        self._set = False

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        with self._lock:
            self._set = True
            self._lock.notify_all()

    def clear(self) -> None:
        with self._lock:
            self._set = False

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait until set (or ``timeout`` seconds); whether it is set."""
        with self._lock:
            return self._lock.wait_for(lambda: self._set, timeout)


__all__ = ["Flag", "Monitor"]
