"""attackfence37: the lease's guard makes no request while "its last renewal proves that no
trainer can have taken it over as stale". A renewal proves that only from when it *lands*:
one sent before the old proof ran out but answered after the claim could read stale (a
renewal that failed, the next one slow: Drive's retries, a request hung for a minute) left a
gap in which another trainer took the stale lease over; the renewal then landed and the
holder believed itself sure for :attr:`RunLease.sure_s` more from when it was *sent*. Its
guard passed every commit of its push without a listing while the other trainer held the
lease (until the renewal thread's next listing, a period later). Now a renewal extends the
proof only where Drive answered it before the old proof ran out.

Where the run folder's arbiter decides (lease47's compare-and-swap) the late renewal's swap
is refused and it is lost at once, in every order (fence49): the proof matters where the
listing decides, as here, a server or proxy that ignores ``If-Match`` (lease48: the
emulator's ``ignores_if_match``); the swap's own path is lease47_cas's. And where the taker
could not remove the stale claim (its removals refused here): one it removed, the late
renewal makes anew and lists again at once, lost (claim49's test). The claim's renewal
held by the emulator (answered once the take-over is done: ``faults.hurry``); the taker a
real RunLease; the real PyDrive2 stack against the emulator. Slow: the lease's own periods
(2 s) pass."""
from __future__ import annotations

import threading
import time

import pytest

from drivestage.errors import DriveStageError

DEST = "drive:runs/exp"


@pytest.mark.slow
def test_a_renewal_that_lands_after_a_stale_take_over_proves_nothing(
        drive_env, emulator, tmp_path, fast_retries, monkeypatch):
    from trainer.drive import DriveFolder
    from trainer.errors import LeaseLostError
    from trainer.lease import RunLease
    from trainer.lease_claims import boot_clock as _clock

    # (2 s, not 4: the lease's periods are all this test waits out; 14.6 s at 4 s. What
    # orders its moments is the emulator's, not a guess of how long each takes: the renewal
    # is held until the take-over is done, then let go.)
    period = 2.0
    emulator.ignores_if_match = True   # (the listing decides: see the module's text)
    old = RunLease(DriveFolder(DEST, str(tmp_path / "old")), period_s=period)
    old.acquire()
    assert (old.stale_s, old.sure_s) == (6.0, 5.0)
    # The renewal at 2 periods (the one at 1 period failed): sent before the proof (5 s)
    # runs out, held until the claim read stale (6 s, and Drive's clock heard to the second)
    # and the other trainer took the lease over, then handled.
    time.sleep(max(0.0, old._written_at + 2 * period - _clock()))
    # (The renewal's upload only: the taker's read of the claim names its id too, and held
    # instead, it let the renewal land in time: a pass of the guard this test did not mean.)
    emulator.faults.latency(60, path=f"^/upload/.*{old._mine.id}", times=1)
    failed: list[BaseException] = []

    def renew() -> None:
        try:
            old.check()
        except (DriveStageError, LeaseLostError) as exc:
            failed.append(exc)
    renewal = threading.Thread(target=renew)
    renewal.start()
    new = RunLease(DriveFolder(DEST, str(tmp_path / "new")), period_s=period)
    # (The renewal waits in the emulator: sent, not yet answered.)
    assert emulator.faults.wait_latencies(lambda waiting: waiting == 1, 30)[0]
    # (The taker's removal of the stale claim refused, its retries bounded: the renewal lands
    # in place. Removed, the renewal made it anew and listed again: lost at once, claim49.)
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "2")
    emulator.faults.inject(method="DELETE", status=503, times=None)
    new.acquire()   # (watches the old claim until it reads stale, then takes the lease)
    assert new.generation == 2
    emulator.faults.clear()
    emulator.faults.hurry()   # (the renewal lands now: after the take-over)
    renewal.join(30)
    # (In place; the arbiter, ignored, names no one. So the renewal itself raised nothing.)
    assert not renewal.is_alive() and failed == [], failed
    assert _clock() < old._written_at + old.sure_s   # (the gap this test is about)
    assert new.holder() is not None and new.holder().owner == new.token
    # The other trainer holds the lease: the old one's guard may not pass without a look.
    with pytest.raises(LeaseLostError):
        old.guard()
    new.release()
