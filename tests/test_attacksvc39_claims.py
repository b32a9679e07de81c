"""Attacks on the lease claims' re-listing (lease38: a claim renewed between a listing and
its read is listed again, at most ``MAX_LISTS`` times): a listing that stays behind the
renewal longer than that (Drive's listings lag by seconds; three listings take a fraction of
one), and a claim that changes at every read. A live claim must never be read as none (the
take-over counted its generation without it and lost to the holder, or a second trainer
started on the run), and every way out is bounded in requests.

The listing lags by the emulator's ``lag_listing`` (counted in answers, no timing); the
holder renews with its own ``RunLease._write``; the real PyDrive2 stack against the
emulator."""
from __future__ import annotations

import pytest

from trainer.errors import LeaseLostError

DEST = "drive:runs/exp"


def _lease(tmp_path, name: str, take_over: bool = False):
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    return RunLease(DriveFolder(DEST, str(tmp_path / name)), period_s=30.0, take_over=take_over)


def test_a_take_over_whose_every_listing_shows_the_claim_before_its_renewal_takes_it(
        drive_env, emulator, tmp_path):
    """Listings behind the renewal for more than the re-listing's bound: the holder's claim
    is read as it is now (by id: Drive's reads are current), not dropped."""
    from trainer import lease_claims

    old = _lease(tmp_path, "old")
    old.acquire()
    new = _lease(tmp_path, "new", take_over=True)
    try:
        emulator.faults.lag_listing(updated=lease_claims.MAX_LISTS * 4, titles="^trainer-lease-")
        old._write(old._folder)
        new.acquire()   # refused before: "... holds its lease ... start this one with --take-over"
        assert new.generation == old.generation + 1
        with pytest.raises(LeaseLostError):
            old.check()
        new.check()
        assert new.holder().owner == new.token
    finally:
        emulator.faults.lag_listing()
        new.release()
        old.release()


class _RenewedAtEachRead:
    """The trainer's store, but the holder renews its claim (its own ``_write``, a real
    upload) just before each read of a claim's bytes: every read finds another version than
    the one listed or looked up."""

    def __init__(self, store, holder):
        self._store, self._holder, self.reads, self.renewing = store, holder, 0, True

    def read_range(self, entry, start, end, **kwargs):
        self.reads += 1
        if self.renewing:
            self._holder._write(self._holder._folder)
        return self._store.read_range(entry, start, end, **kwargs)

    def __getattr__(self, name):
        return getattr(self._store, name)


def _calls(emulator, kind):
    return sum(1 for r in emulator.requests if r.kind == kind)


def test_a_claim_that_changes_at_every_read_is_an_error_after_bounded_reads_never_none(
        drive_env, emulator, tmp_path):
    from drivestage.errors import RemoteChangedError
    from trainer import lease_claims

    old = _lease(tmp_path, "old")
    old.acquire()
    try:
        liar = _RenewedAtEachRead(old.drive.store_at()[0], old)
        reader = lease_claims.ClaimReader(liar)
        emulator.clear_requests()
        with pytest.raises(RemoteChangedError, match=r"^the run's lease claim trainer-lease-.*"
                           r"\.json changed on Drive at each of 3 listings and 2 reads; "
                           r"run again$"):
            reader.claims(old._folder)
        assert _calls(emulator, "files.list") == lease_claims.MAX_LISTS
        assert liar.reads == lease_claims.MAX_LISTS + lease_claims.MAX_READS_BY_ID
    finally:
        old.release()


def test_a_claim_read_once_that_changes_at_every_read_stands_as_last_read(
        drive_env, emulator, tmp_path):
    from trainer import lease_claims

    old = _lease(tmp_path, "old")
    old.acquire()
    try:
        liar = _RenewedAtEachRead(old.drive.store_at()[0], old)
        reader = lease_claims.ClaimReader(liar)
        liar.renewing = False   # (the first read: as listed)
        assert [c.owner for c in reader.claims(old._folder)] == [old.token]
        old._write(old._folder)   # (listed anew: read anew, and renewed at each read)
        liar.renewing, liar.reads = True, 0
        emulator.clear_requests()
        claims = reader.claims(old._folder)
        assert [(c.owner, c.generation) for c in claims] == [(old.token, old.generation)]
        assert _calls(emulator, "files.list") == lease_claims.MAX_LISTS
        assert liar.reads == lease_claims.MAX_LISTS   # (none by id: it was read once)
    finally:
        old.release()


def test_what_the_reader_keeps_stays_one_version_per_claim_file_over_renewals(
        drive_env, emulator, tmp_path):
    """Each renewal is a new version (id, md5) of the claim, read once: the versions read
    before it were kept too, one more each period of a run for as long as it ran (2,880 a
    day at 30 s)."""
    from trainer import lease_claims

    old = _lease(tmp_path, "old")
    old.acquire()
    try:
        reader = lease_claims.ClaimReader(old.drive.store_at()[0])
        for _ in range(6):
            old._write(old._folder)
            assert [c.owner for c in reader.claims(old._folder)] == [old.token]
        assert len(reader._read) == 1 and len(reader._by_id) == 1
    finally:
        old.release()
