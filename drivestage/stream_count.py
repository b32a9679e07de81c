"""How many streams a download runs, found by measuring (:func:`measure`).

One stream first; then twice as many (four times when doubling nearly doubled the rate,
each stream held to its own rate, as Drive holds connections) while the throughput grows
by half or more, stays below what the hash can take, and the cores are not the limit (they
are busy, and one stream has brought more than a Drive connection gives, ``_LINK_MAX``). The
streams just added are stopped again when the throughput did not grow, measured twice: where
the cores, not the link, set the rate (a 2-core machine fed over loopback), a second stream
only takes CPU from the hash and an extraction.

Only bytes the streams bring count (not a zip's central directory fetched meanwhile). While
the caller still works (reads a zip's member list, holding the GIL and a core), nothing is
concluded from a throughput that did not grow, and streams are added only where the zip's
tail, fetched just before, came at a link's pace (below ``_FAST_STREAM``) and each stream
brings at least half of that: next to a fast server the caller's work makes a stream look
slower than it is. The rest is measured again
once the caller waits for the download.
"""
from __future__ import annotations

import logging
import time
from typing import Optional, Protocol

from drivestage import cpuload
from drivestage.checksums import rate as hash_rate
from drivestage.interrupts import Monitor

log = logging.getLogger(__name__)

#: Most streams the measuring finds (each one is a connection to Drive).
MAX_STREAMS = 8
#: Seconds a throughput is measured (from the newest stream's first byte); the growth that
#: adds streams, and the one that adds four times as many.
_WINDOW = 0.1
_GROWTH = 1.5
_LINEAR = 1.7
#: Streams just added are stopped again when the throughput grew less than this.
_KEEP = 1.15
#: A stream faster than this (bytes/s) is no link's (Drive gives a connection about 100 MB/s
#: at best): while the caller still works, no stream is added on a rate that reaches it.
_FAST_STREAM = 200e6
#: No more streams while the machine's cores are busier than ``_BUSY`` once one stream has
#: brought more than ``_LINK_MAX`` (bytes/s) in any window: no Drive connection gives that,
#: so the cores, not the link, set the rate, even when the stream is slower now (a 2-core
#: machine next to its server: once the extraction takes the cores, one stream brings 150
#: MB/s instead of 400, and more streams only took CPU from the hash and the extraction).
_LINK_MAX = 120e6
_BUSY = 0.8
#: No more streams once the bytes arrive this close to the rate the hash can take them.
_HASH_SHARE = 0.7
#: The smallest piece split for a new stream (:data:`drivestage.streams._MIN_SPLIT`):
#: no stream is added without twice that much left for each.
MIN_SPLIT = 16 * 1024 * 1024


class Counted(Protocol):
    """What the measuring reads of a download's pass (:class:`drivestage.streams.Pass`);
    every field under ``lock``."""

    lock: Monitor
    streams: int     # streams running, retiring ones included
    retiring: int    # streams told to stop that have not ended
    silent: int      # streams started that have not written yet
    streamed: int    # bytes the streams wrote
    stopped: bool
    settled: bool    # the caller waits for the download
    first_rate: Optional[float]  # bytes/s of a range fetched at once before (a zip's tail)
    hash_name: str
    whole: bool      # the server ignores Range: one stream reads its one answer to the end

    @property
    def where(self) -> str: ...  # the file, in messages

    def left(self) -> int: ...

    def add_streams(self, n: int) -> None: ...

    def retire(self, n: int) -> None: ...


def body_rate(times: list[tuple[float, int, float, int]], least: int) -> Optional[float]:
    """Bytes/s of request bodies timed as (first block's time, its length, last block's
    time, bytes in all), after their first block: a link's pace, not its time to first
    byte; None when they brought less than ``least`` bytes after it (too short to tell)."""
    nbytes = sum(t[3] - t[1] for t in times)
    seconds = sum(t[2] - t[0] for t in times)
    return nbytes / seconds if nbytes >= least and seconds > 0 else None


def measure(run: Counted, min_split: int = MIN_SPLIT) -> None:
    """Add streams to ``run`` while the throughput grows, stop again those that did not
    pay (see the module doc); returns once the count is found or the download stopped."""
    rate_before = 0.0
    added = 0  # streams the last step added
    doubted = False  # they measured no faster once: measure again
    best_each = 0.0  # the most one stream brought in a window: what a stream can do here
    # From when every stream had bytes: (time, bytes streamed, CPU sample, settled then).
    window: Optional[tuple[float, int, Optional[tuple[int, int]], bool]] = None
    with run.lock:
        first = run.first_rate
    log.debug("%s: the range fetched before came at %s", run.where,
              "?" if first is None else f"{first / 1e6:.0f} MB/s")
    while True:
        more, stop = 0, False
        with run.lock:
            # After the wait, which releases the lock: the first whole answer may have come
            # in it, and given up streams this step would stop again (counted twice).
            run.lock.wait(0.05)
            if run.stopped or run.streams - run.retiring == 0 or run.whole:
                return  # (whole: one answer holds the file; a stream more asks for it again)
            now = time.monotonic()
            if run.silent != 0:
                continue
            if window is None or (run.settled and not window[3]):
                # A window begun while the caller worked is not one to conclude on once it
                # waits: part busy, part not, its rate is neither (two streams measured at
                # 28 MB/s where they gave 25 and then 40 were kept for good).
                window = (now, run.streamed, cpuload.sample(), run.settled)
                continue
            if now - window[0] < _WINDOW:
                continue
            rate = (run.streamed - window[1]) / (now - window[0])
            busy = cpuload.busy(window[2], cpuload.sample())
            best_each = max(best_each, rate / run.streams)
            cpu_bound = busy is not None and busy >= _BUSY and best_each >= _LINK_MAX
            log.debug("%s: %d streams: %.0f MB/s, cores %s busy", run.where, run.streams,
                      rate / 1e6, "?" if busy is None else f"{busy:.0%}")
            scale = 3 if rate_before and rate >= rate_before * _LINEAR else 1
            want = min(run.streams * scale, MAX_STREAMS - run.streams)
            # Before the caller waits, streams are added only where a link sets the pace (a
            # request before brought less than one stream where the cores set it): the
            # caller's work takes CPU and the GIL from the streams, so that a fast stream
            # measured then looks slower than it is, as on a link.
            # And only while each stream brings about what the tail got (at least half): a
            # link gives every connection its pace; much less is the caller's work again.
            link_like = run.settled or (
                run.first_rate is not None and run.first_rate < _FAST_STREAM and
                run.first_rate / 2 <= rate / run.streams < _FAST_STREAM)
            if rate >= rate_before * _GROWTH and want > 0 and not cpu_bound and link_like and \
                    rate < _HASH_SHARE * hash_rate(run.hash_name) and \
                    run.left() >= 2 * min_split * (run.streams + want):
                rate_before, more, window, added = rate, want, None, want
                doubted = False
            elif not run.settled:
                window = None  # measured again, until the caller waits too
            elif added and rate < rate_before * _KEEP and not doubted:
                # Measured once more before a stream is stopped: a connection's first tenths
                # of a second (TCP's slow start) understate it.
                doubted, window = True, None
            else:
                stop = True
                if added and rate < rate_before * _KEEP:
                    run.retire(added)
                    log.debug("%s: %d more streams did not pay (%.0f MB/s, %.0f before); "
                              "back to %d", run.where, added, rate / 1e6, rate_before / 1e6,
                              run.streams - run.retiring)
                log.debug("%s: %d streams (%.0f MB/s)", run.where, run.streams - run.retiring,
                          rate / 1e6)
        if more:
            run.add_streams(more)
        if stop:
            return
