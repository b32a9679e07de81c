"""claim50: the compare-and-swap path's removal of a claim its renewal made anew
(:func:`trainer.lease_write.drop_remade` reached from the swap after the create), which no
test reached (claim49 left it: in CAS mode a taker swaps before it removes, so the swap
before the create already loses).

Here the holder's claim file is removed on Drive by another hand (a user; ``dedupe`` reading
it stale), not by a taker: the store's read before its renewal's upload in place finds it
gone and a new claim file is made (no swap before it), its create held by the emulator while
a new trainer takes the lease (the arbiter names a claim that is gone: taken). The create
then lands, the swap after it is refused (412), the arbiter names the taker: lost, and the
claim just made is removed by its id. The real PyDrive2 stack against the emulator, no
sleeps: every wait is on the emulator's count of held requests."""
from __future__ import annotations

import threading

from _lease_race import arbiter, claims_on_drive, lease, patches


def test_a_renewal_that_made_its_claim_anew_and_lost_the_swap_removes_it(
        drive_env, emulator, tmp_path):
    from trainer.errors import LeaseLostError

    old = lease(tmp_path, "old", period=60.0)
    old.acquire()
    assert old._mine is not None and old._cas is not None   # (held by the arbiter)
    folder, first = old._folder.id, old._mine.id
    assert arbiter(emulator).endswith(first)
    emulator.store.delete(first)   # (removed by another hand: not a taker)
    # The claim's create (a new file's upload, after the 404 of the upload in place) held.
    emulator.faults.latency(60, method="POST", path="^/upload/", times=1)
    failed: list[BaseException] = []

    def renew() -> None:
        try:
            old._write(old._folder)
        except Exception as exc:   # (what it raised is the test's)
            failed.append(exc)
    since = len(emulator.requests)
    renewal = threading.Thread(target=renew)
    renewal.start()
    try:
        assert emulator.faults.wait_latencies(lambda waiting: waiting == 1, 30)[0]
        # The swap before the create landed: the arbiter still names the old claim's id.
        # (The store's read of the claim before its upload in place found it gone: a new
        # file is made at once, no 404 and no swap before it.)
        assert [(r.method, r.status) for r in emulator.requests[since:]] == [
            ("GET", 404), ("POST", 0)]   # (0: the create, held)
        new = lease(tmp_path, "new", period=60.0)
        new.acquire()   # (the claim the arbiter names is gone: taken)
        assert new._mine is not None and arbiter(emulator).endswith(new._mine.id)
    finally:
        emulator.faults.hurry()   # (the create lands now; its swap is refused)
        renewal.join(30)
    assert not renewal.is_alive()
    assert len(failed) == 1 and isinstance(failed[0], LeaseLostError), failed
    assert old.lost is not None and "took the run's lease on drive:runs/exp over" in old.lost
    deleted = [r.path for r in emulator.requests[since:] if r.method == "DELETE"]
    # The claim made anew removed again, by its id (neither the taker's nor the one removed
    # by hand): the taker's alone is left.
    assert len(deleted) == 1 and new._mine.id not in deleted[0] and first not in deleted[0]
    assert claims_on_drive(emulator) == [new.name]
    assert new.holder() is not None and new.holder().owner == new.token
    old.release()   # (nothing more to remove)
    assert claims_on_drive(emulator) == [new.name]
    new.release()
