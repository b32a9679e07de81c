"""lefts52 (lease52's left): a claim a starting trainer's watch found unrenewed only when its
own bound ran out (watched unchanged for the stale period by this machine's clock, while it
read live by its date: Drive's clock as heard lagging) is gone to that trainer until it is
renewed, as one judged stale by its date is (``RunLease._lapsed``). The settle's arbiter
check judged it by its date again, read it live, and the start was refused ("… holds its
lease (last renewed 0 s ago) …") although the watch had just found its holder gone.

The real PyDrive2 stack against the emulator. The watch's own clock is driven by the test
(its waits move it on instead of sleeping): its bound runs out in a few listings, while
Drive's clock moves on by the test's real fraction of a second, far within the old claim's
stale period (9 s)."""
from __future__ import annotations

import logging
import time
import types

from _lease_race import arbiter, claims_on_drive, lease


def test_a_claim_the_watch_found_unrenewed_is_not_read_live_by_the_settle(
        drive_env, emulator, tmp_path, monkeypatch, caplog):
    """On main a02cab15: LeaseHeldError from the settle (the arbiter's claim read live)."""
    import trainer.lease_held as lease_held
    from trainer.lease_claims import AHEAD

    old = lease(tmp_path, "old", period=3.0)   # (stale after 9 s)
    old.acquire()   # (its runtime gone: never renewed)
    [left] = claims_on_drive(emulator)
    moved = [0.0]

    def waited(seconds: float) -> None:   # (the watch's wait: its clock moved on, at once)
        moved[0] += seconds

    monkeypatch.setattr(lease_held, "time", types.SimpleNamespace(
        monotonic=lambda: time.monotonic() + moved[0], sleep=waited))
    new = lease(tmp_path, "new", period=3.0)
    try:
        with caplog.at_level(logging.WARNING, logger="trainer.lease"):
            new.acquire()
        assert moved[0] >= new.stale_s   # (the watch's bound ran out by its clock)
        assert new.generation == 2 and not new.lost
        took = [r.getMessage() for r in caplog.records if "took the run's lease over" in
                r.getMessage()]
        assert len(took) == 1 and took[0].endswith(f"({AHEAD})"), took
        assert claims_on_drive(emulator) == [new.name] != [left]   # (the old one removed)
        assert new.token in arbiter(emulator)
    finally:
        new.release()
        old.release()
