"""The ``saved`` time of each state a run takes (its sidecar's): :class:`SaveTimes`.

This machine's clock, but never before a save of the run seen at the start (plus the time
since) nor before this run's previous one. The clock of another machine, or of this one
stepped back, would otherwise date the run's newest saves before the checkpoint they continue
from: further on and saved earlier reads as a run sent back on purpose
(drivestage.sidecar.left_behind), and resume and status went back to that checkpoint.
Split from :mod:`trainer.writer` at its 500-line cap.

Where Drive's clock, as its answers' ``Date`` says it, differs from this machine's past a
minute (:func:`server_clock.skew`), Drive's (attack48). A machine whose clock ran more than a
day behind read every save of the run made elsewhere as "in the future" (no save time,
:data:`drivestage.sidecar.FUTURE_SLACK_S`), so no floor, and dated its states days before the
ones they go on from: to every machine with the right clock they were left behind, and
resume went back. One whose clock ran hours ahead dated a state it never sent hours late:
the run continued elsewhere meanwhile read as sent back, and that folder's resume went on
from its own older state. A ``Date`` a proxy sets from a wrong clock is the case this gets
wrong: one behind is bounded by the floor above, one ahead dates saves late, as this
machine's clock ahead did before.
"""
from __future__ import annotations

import time

from drivestage.drive import server_clock


class SaveTimes:
    """The save times of one run's states, in the order they are taken."""

    def __init__(self) -> None:
        self._floor, self._floor_at, self._last = 0.0, 0.0, 0.0

    def not_before(self, saved: float) -> None:
        """Every state taken from now on is later than ``saved`` (the latest save time among
        the run's checkpoints seen at the start), whatever this machine's clock says."""
        if saved > self._floor:
            self._floor, self._floor_at = saved, time.monotonic()

    def taken(self) -> float:
        """The save time of a state taken now."""
        # (Strictly after the floor: taken at once after it was set, no monotonic time has
        # passed, and an equal ``saved`` goes to the name, not to this save.)
        since = max(time.monotonic() - self._floor_at, 1e-6)
        # (Drive's clock where its Date is past a minute off this machine's; no request)
        # (as last heard with a Date: an answer since without one is no news of the clock)
        drive = server_clock.drive_clock() if server_clock.heard_skew() is not None else None
        now = max(time.time() if drive is None else drive,
                  self._floor + since if self._floor else 0.0,
                  self._last + 1e-6 if self._last else 0.0)
        self._last = now
        return now
