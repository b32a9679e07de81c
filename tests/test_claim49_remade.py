"""claim49: a trainer that lost its lease left a second claim behind where the run folder's
listing decides (a server or proxy that ignores ``If-Match``: lease48; a refused swap; a
full Drive). Its late renewal found its claim removed by the taker (404), made it anew, and
nothing removed that one when the trainer then found the lease lost: until it read stale,
``trainer status`` and ``dedupe`` saw two claims (fence49). Now a check whose renewal made
the claim anew lists again at once and, the lease taken, removes the claim it made (by its
id; never the taker's). The compare-and-swap path does so already (attackint46).

The old claim made stale by its date (the emulator's store, not a wait), its renewal's upload
held by the emulator until a real RunLease took the lease over and removed it
(``faults.hurry``); the real PyDrive2 stack against the emulator, no sleeps."""
from __future__ import annotations

import logging
import time

from _lease_race import checking

DEST = "drive:runs/exp"


def _lost_renewal(emulator, tmp_path, before_hurry=lambda: None):
    """The old trainer's renewal held while a new one takes its stale lease over; returns
    (old, new, what the renewal's check raised)."""
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    emulator.ignores_if_match = True   # (the listing decides)
    old = RunLease(DriveFolder(DEST, str(tmp_path / "old")), period_s=60.0)
    old.acquire()
    mine = old._mine
    assert mine is not None
    # (Silent an hour by Drive's dates: stale to the taker, and renewed by the old one's check.)
    emulator.store.update(mine.id, modified=time.time() - 3600)
    emulator.faults.latency(60, path=f"^/upload/.*{mine.id}", times=1)
    renewal, failed = checking(old)
    try:
        assert emulator.faults.wait_latencies(lambda waiting: waiting == 1, 30)[0]
        new = RunLease(DriveFolder(DEST, str(tmp_path / "new")), period_s=60.0)
        new.acquire()   # (the old claim stale: taken over, and removed)
        assert new.generation == 2
        assert mine.id not in {f["id"] for f in emulator.store.children(old._folder.id)}
        before_hurry()
    finally:
        emulator.faults.hurry()   # (the renewal lands now: 404, its claim made anew)
        renewal.join(30)
    assert not renewal.is_alive()
    return old, new, failed


def _claims(emulator, folder_id: str) -> list[tuple[str, str]]:
    return sorted((f["title"], f["id"]) for f in emulator.store.children(folder_id)
                  if f["title"].startswith("trainer-lease") and not f.get("labels", {}).get(
                      "trashed"))


def test_a_lost_trainer_removes_the_claim_its_late_renewal_made_anew(drive_env, emulator,
                                                                   tmp_path):
    from trainer.errors import LeaseLostError

    old, new, failed = _lost_renewal(emulator, tmp_path)
    # The check that made the claim anew found the lease lost, at once...
    assert len(failed) == 1 and isinstance(failed[0], LeaseLostError), failed
    assert old.lost is not None and "took the run's lease on drive:runs/exp over" in old.lost
    # ...and removed the claim it made: one claim left, the taker's.
    assert new._mine is not None
    assert _claims(emulator, new._folder.id) == [(new.name, new._mine.id)]
    assert new.holder() is not None and new.holder().owner == new.token
    old.release()   # (nothing more to remove: the taker's claim stays)
    assert _claims(emulator, new._folder.id) == [(new.name, new._mine.id)]
    new.release()


def test_a_claim_drive_will_not_remove_is_said_and_left_to_go_stale(
        drive_env, emulator, tmp_path, fast_retries, monkeypatch, caplog):
    from trainer.errors import LeaseLostError

    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "3")

    def refuse() -> None:   # (after the taker's removal: every removal answered 503)
        emulator.faults.inject(method="DELETE", status=503, times=None)
    with caplog.at_level(logging.WARNING, logger="trainer.lease"):
        old, new, failed = _lost_renewal(emulator, tmp_path, refuse)
    assert len(failed) == 1 and isinstance(failed[0], LeaseLostError), failed
    deletes = [r for r in emulator.requests if r.method == "DELETE" and r.status == 503]
    assert len(deletes) == 3   # (the store's retries, bounded: then said)
    emulator.faults.clear()
    left = [c for c in _claims(emulator, new._folder.id) if c[0] == old.name]
    assert len(left) == 1
    said = [r.getMessage() for r in caplog.records if left[0][1] in r.getMessage()]
    assert len(said) == 1 and "reads stale" in said[0], caplog.text
    # (Left at a lower generation: the taker holds; not renewed, it is no one's once stale.)
    assert new.holder() is not None and new.holder().owner == new.token
    old.release()   # (the run's end tries again: Drive takes it now)
    assert new._mine is not None
    assert _claims(emulator, new._folder.id) == [(new.name, new._mine.id)]
    new.release()

