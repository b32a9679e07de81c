"""flakes34: the emulator's bandwidth limit holds for a sender that wakes late.

On a loaded machine the emulator's sender thread wakes from each wait some milliseconds
late. The bucket forgot that time, so one connection brought 9 MB/s of a 16 MB/s limit
that two connections reached together. test_download's "a stream that does not raise the
throughput is stopped again" then measured a second stream as paying off, and kept it
(8 streams instead of 2, 2 runs in 13 at load 12-17).

The emulator's clock here is a virtual one (``throttle.time``): each wait ends 40 ms late,
and only the waits advance it, so the time a transfer takes on it is exact on any machine."""
from __future__ import annotations

import os
import types

import pytest
from _download_fixtures import _fast, out, store  # noqa: F401

from drivestage import download as dl
from drivestage.emulator import throttle

LATE = 0.04  # (under throttle.CATCH_UP_S: a late wake, not an idle link)
RATE = 1 << 20


class _LateClock:
    """``time`` for throttle.py: monotonic() is virtual; sleep(s) advances it by s + LATE."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds + LATE

    def pause(self, stopping, seconds: float) -> None:   # throttle._pause: the server's wait
        self.sleep(seconds)


@pytest.mark.parametrize("limit", ["shared", "per_connection"])
def test_a_sender_that_wakes_late_still_sends_at_the_rate(emulator, store, out, monkeypatch,
                                                          limit):
    clock = _LateClock()
    monkeypatch.setattr(throttle, "time", types.SimpleNamespace(monotonic=clock.monotonic,
                                                                sleep=clock.sleep))
    monkeypatch.setattr(throttle, "_pause", clock.pause)
    data = os.urandom(4 << 20)   # 16 pieces of the emulator's 256 KiB
    emulator.add_file("r.bin", data)
    entry = store.resolve("r.bin")
    emulator.faults.throttle(**{"bytes_per_second" if limit == "shared" else limit: RATE})
    begun = clock.now
    dl.download(store, entry, str(out / "r.bin"), jobs=1)
    took = clock.now - begun
    assert open(out / "r.bin", "rb").read() == data
    # At the rate, and one late wake (the last); forgetting each one took 4.64 s.
    nominal = len(data) / RATE
    assert nominal <= took <= nominal + LATE + 0.01, took
    # A link idle for a second saves nothing up: the next download starts at the rate too,
    # not in a burst.
    clock.now += 1.0
    begun = clock.now
    dl.download(store, entry, str(out / "r2.bin"), jobs=1)
    assert clock.now - begun >= nominal, clock.now - begun
