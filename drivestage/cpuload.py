"""How busy this machine's CPUs are, measured between two moments (Linux: ``/proc/stat``).

A download decides with it whether another stream can be fed: where one connection already
brings bytes faster than Drive gives a connection and the cores are busy, the cores are what
limit it (a 2-core machine fed over loopback), and another stream only takes CPU from the
hash and an extraction. Where ``/proc/stat`` cannot be read, nothing is known (None) and the
throughput alone decides.
"""
from __future__ import annotations

from typing import Optional

_STAT = "/proc/stat"


def sample() -> Optional[tuple[int, int]]:
    """(busy, total) CPU time of all cores so far, in clock ticks; None where unknown. Busy
    counts time the host took for others (steal): it was not ours to use."""
    try:
        with open(_STAT, "rb") as fh:
            first = fh.readline().split()
    except OSError:
        return None
    if len(first) < 5 or first[0] != b"cpu":
        return None
    try:
        # user nice system idle iowait irq softirq steal (guest time is inside user)
        ticks = [int(v) for v in first[1:9]]
    except ValueError:
        return None
    # Kernels before 2.6 (and some emulated /proc) end the line after idle, or after
    # iowait: the columns not there are time not counted.
    ticks += [0] * (8 - len(ticks))
    idle = ticks[3] + ticks[4]
    total = sum(ticks)
    return total - idle, total


def busy(before: Optional[tuple[int, int]], after: Optional[tuple[int, int]]
         ) -> Optional[float]:
    """The share (0-1) of every core's time that went to work between two samples; None
    when either is unknown or no tick passed."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return max(0.0, min(1.0, (after[0] - before[0]) / (after[1] - before[1])))
