"""The bandwidth limit on the emulator's bodies (:class:`ThrottleFaults`, a mixin of
:class:`~drivestage.emulator.faults.Faults`; split from faults.py at its line cap): a leaky
:class:`Bucket` all connections share and one of each connection's, and the pause a body
takes behind them (:func:`_pause`), cut short when the limit changes or the server stops.
Their state is made in ``Faults.__init__``, shown by ``describe`` and cleared by ``clear``,
under the one lock of the faults.
"""
from __future__ import annotations

import threading
import time
from typing import Optional


class ThrottleFaults:
    """The bandwidth limit of :class:`~drivestage.emulator.faults.Faults`."""

    _lock: threading.Lock
    _stopping: threading.Event
    _rethrottled: threading.Event
    _shared: "Bucket"
    _per_connection: Optional[float]

    def throttle(self, bytes_per_second: Optional[float] = None, *,
                 per_connection: Optional[float] = None) -> None:
        """Limit the bandwidth of request and response bodies (None: unlimited).

        ``bytes_per_second`` is shared by all connections; ``per_connection`` limits each
        connection on its own, as Drive does, so parallel ranged streams add up."""
        with self._lock:
            self._shared.reset(bytes_per_second)
            self._per_connection = float(per_connection) if per_connection else None
            self._wake_paused()

    def _wake_paused(self) -> None:
        """(``_lock`` held) End the pauses of bodies under the throttle as it was."""
        self._rethrottled.set()
        self._rethrottled = threading.Event()

    @property
    def throttled(self) -> bool:
        return self._shared.rate is not None or self._per_connection is not None

    def pace(self, nbytes: int, connection: Optional["Bucket"] = None) -> None:
        """Sleep long enough that bodies keep to the shared limit and, given the connection's
        own bucket, to the per-connection one."""
        with self._lock:
            wait = self._shared.charge(nbytes)
            if connection is not None:
                connection.rate = self._per_connection
                wait = max(wait, connection.charge(nbytes))
            woken = self._rethrottled
        if wait > 0 and not self._stopping.is_set():
            # Woken when the server stops, as a latency is (a throttled megabyte's pause,
            # 16 s at 64 KiB/s, held Emulator.stop() for its whole join), and when the
            # throttle changes: the pause was the old limit's.
            _pause(woken, wait)


def _pause(woken: threading.Event, seconds: float) -> None:
    """A throttle's pause: ``seconds``, or less when ``woken`` (the throttle changed, or the
    server stops); one place, so that a test's virtual clock (tests/test_flakes34_throttle.py)
    takes it."""
    woken.wait(seconds)


#: Seconds a sender behind its bucket's schedule may make up (a bucket's debt drained that
#: much longer ago counts as credit): a sender woken late from its wait (a loaded machine's
#: scheduler), or held by its client's reads, lost that time for good, and one connection
#: brought 9 MB/s of a 16 MB/s limit where two brought 16 (a stream count measured on it
#: added streams that only hid the lateness). A bucket idle for longer starts afresh.
CATCH_UP_S = 0.1


class Bucket:
    """A leaky bucket: debt drains at ``rate`` bytes per second; new bytes add to it. A
    sender a little late (:data:`CATCH_UP_S` at most) makes the time up: the rate holds."""

    def __init__(self, rate: Optional[float] = None):
        self.reset(rate)

    def reset(self, rate: Optional[float]) -> None:
        self.rate = float(rate) if rate else None
        self.time, self.debt = time.monotonic(), 0.0

    def charge(self, nbytes: int) -> float:
        """Add ``nbytes``; the seconds to wait until they fit the rate (0 when unlimited)."""
        if self.rate is None:
            return 0.0
        now = time.monotonic()
        debt = self.debt - (now - self.time) * self.rate   # < 0: drained that long ago
        idle = self.debt <= 0 or debt < -CATCH_UP_S * self.rate
        self.debt = (0.0 if idle else debt) + nbytes
        self.time = now
        return max(0.0, self.debt / self.rate)
