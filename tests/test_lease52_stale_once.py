"""lease52: a claim a starting trainer found stale is not read live again a moment later.

Drive's clock is heard by each answer's ``Date``: to the second, and late by the answer's
time on the way (a loaded machine, a slow link). So one reading can be seconds behind the one
before it. A trainer starting after its predecessor's runtime died watched the old claim
until its stale period ran out, and then settled its own claim: the arbiter named the old
claim, judged again by a later answer's earlier ``Date``, live. The reconnect was refused
("… holds its lease (last renewed 2 s ago) … wait 2 s after it stopped renewing"): the flake
of test_attackfence37_chunks[push] (session 51) and test_leasefull42_stale_file (session 50)
on a loaded machine. Now a claim judged gone stays gone until it is renewed (its date
changes).

The real PyDrive2 stack against the emulator: Drive's clock moved on past the old claim's
stale period by the emulator (no wait), and every answer after the watch dated 3 s earlier
(``date_offset``: answers 3 s on their way), at the event the test controls (the watch's
end)."""
from __future__ import annotations

import logging

from _lease_race import arbiter, claims_on_drive, lease

#: How late (seconds) the answers after the watch say Drive's clock: past the second a Date
#: is cut to, and the test's own time between the watch and the settle on a loaded machine.
LATE_S = 3.0


def test_a_claim_found_stale_by_the_watch_is_not_read_live_by_the_settle_s_later_answers(
        drive_env, emulator, tmp_path, monkeypatch, caplog):
    import trainer.lease as lease_module

    old = lease(tmp_path, "old", period=3.0)   # (stale after 9 s)
    old.acquire()   # (its runtime gone: never renewed)
    [left] = claims_on_drive(emulator)
    # Drive's clock past the old claim's stale period (a second more: the Date's cut).
    emulator.clock_offset = old.stale_s + 1.0
    watch = lease_module.watch

    def watched(lease, folder):   # (the watch found it stale: later answers come late)
        out = watch(lease, folder)
        emulator.date_offset = -LATE_S
        return out

    monkeypatch.setattr(lease_module, "watch", watched)
    new = lease(tmp_path, "new", period=3.0)
    try:
        with caplog.at_level(logging.WARNING, logger="trainer.lease"):
            new.acquire()   # (main: LeaseHeldError, "… holds its lease (last renewed 6 s …")
        assert new.generation == 2 and not new.lost
        took = [r.getMessage() for r in caplog.records if "took the run's lease over" in
                r.getMessage()]
        assert len(took) == 1 and took[0].endswith("(its holder is gone)"), took
        assert claims_on_drive(emulator) == [new.name] != [left]   # (the stale one removed)
        assert new.token in arbiter(emulator)
    finally:
        emulator.date_offset = 0.0
        new.release()
        old.release()
