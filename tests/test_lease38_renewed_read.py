"""A claim renewed between a trainer's listing and its read of the claim: the listing names
the claim's bytes as they were (md5, size), the read gets the renewal's, and the claim was
read as no claim at all (ClaimReader dropped what it could not verify). A ``--take-over``
then counted its generation without the holder's, took the same one, and lost the listing
after its claim to the holder it was told to take over from: refused with "start this one
with --take-over" (speed38b found it under load, 2 forked runs in 14; lead reproduced 2 in
8). Now such a claim is listed again (bounded) and read as it is.

The renewal lands between the listing and the read by the emulator's ``lag_listing``
(the listing shows the claim as it was before its renewal; reads by id are current): no
timing. RunLease as the trainer makes it, the real PyDrive2 stack against the emulator."""
from __future__ import annotations

import pytest

from trainer.errors import LeaseLostError

DEST = "drive:runs/exp"


def _lease(tmp_path, name: str, take_over: bool = False):
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    return RunLease(DriveFolder(DEST, str(tmp_path / name)), period_s=30.0, take_over=take_over)


def _renewed_unseen(emulator, holder) -> None:
    """The holder renews its claim in place (as its thread does each period) while the next
    listing still shows the claim as it was."""
    emulator.faults.lag_listing(updated=1, titles="^trainer-lease-")
    holder._write(holder._folder)


def test_a_take_over_whose_listing_shows_the_holders_claim_before_its_renewal_takes_it(
        drive_env, emulator, tmp_path):
    old = _lease(tmp_path, "old")
    old.acquire()
    new = _lease(tmp_path, "new", take_over=True)
    try:
        _renewed_unseen(emulator, old)
        new.acquire()   # refused before: "... holds its lease ... start this one with --take-over"
        assert new.generation == old.generation + 1
        with pytest.raises(LeaseLostError):
            old.check()
        new.check()
        assert new.holder().owner == new.token
    finally:
        new.release()
        old.release()


def test_the_claims_listed_include_one_renewed_since_the_listing(drive_env, emulator, tmp_path):
    """What every decision reads (acquire, check, status): the holder's claim is there, as it
    is now, where the listing showed it before its renewal; one listing more, no other."""
    from trainer.lease_claims import ClaimReader

    old = _lease(tmp_path, "old")
    old.acquire()
    try:
        store = old.drive.store_at()[0]
        reader = ClaimReader(store)
        _renewed_unseen(emulator, old)
        emulator.clear_requests()
        claims = reader.claims(old._folder)
        assert [(c.owner, c.generation) for c in claims] == [(old.token, old.generation)]
        lists = [r for r in emulator.requests if r.kind == "files.list"]
        assert len(lists) == 2, lists
    finally:
        old.release()
