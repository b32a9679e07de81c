"""attacklease36: the run's lease (trainer.lease) under Drive's eventually consistent listing
(the emulator's ``lag_listing``, by count of list answers). Drive has no compare-and-swap and
the lease decides by a listing made ``settle_s`` after a trainer's own claim: a listing that
does not show another trainer's claim yet lets both hold the lease. What holds: once the
listing shows both, the later claim's holder loses at its next check (before its next push)
and the earlier one goes on. RunLease as the trainer makes it, two trainers' leases (two
tokens, as two machines), the real PyDrive2 stack against the emulator."""
from __future__ import annotations

import pytest

from trainer.errors import LeaseHeldError

DEST = "drive:runs/exp"


@pytest.fixture(autouse=True)
def _real_settle(monkeypatch):
    """The race these tests make is what the lease's settle wait bounds: the real wait, not
    the suite's 0 (tests/conftest.py)."""
    monkeypatch.delenv("TRAINER_LEASE_SETTLE", raising=False)


def _lease(tmp_path, name: str):
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    return RunLease(DriveFolder(DEST, str(tmp_path / name)), period_s=3.0)


def _both_acquire_under_lag(emulator, tmp_path):
    a, b = _lease(tmp_path, "a"), _lease(tmp_path, "b")
    # (a's own listing after its claim, b's before its claim and after it: 3 answers)
    emulator.faults.lag_listing(created=3, titles="^trainer-lease-")
    a.acquire()
    won = [a]
    try:
        b.acquire()   # its listings (before and after its claim) do not show a's yet
        won.append(b)
    except LeaseHeldError:
        pass
    return a, b, won


@pytest.mark.xfail(strict=True, reason="no compare-and-swap on Drive: a listing that lags a "
                   "claim's create by more than settle_s lets a second trainer hold the lease "
                   "too (the window lease.py's docstring names); healed at the later holder's "
                   "next check (the test below)")
def test_a_listing_that_lags_the_first_claim_lets_no_second_trainer_hold(drive_env, emulator,
                                                                           tmp_path):
    a, b, won = _both_acquire_under_lag(emulator, tmp_path)
    try:
        assert won == [a], "both hold the lease"
    finally:
        for lease in won:
            lease.release()


def test_the_later_of_two_holders_loses_once_the_listing_shows_both(drive_env, emulator,
                                                                      tmp_path):
    from trainer.errors import LeaseLostError

    a, b, won = _both_acquire_under_lag(emulator, tmp_path)
    try:
        for _ in range(3):   # (the lag is by list answers: these use it up)
            a.holder()
        a.check()   # the earlier claim holds
        with pytest.raises(LeaseLostError) as lost:
            b.check()
        assert "took the run's lease on drive:runs/exp over" in str(lost.value)
        with pytest.raises(LeaseLostError):
            b.check()   # and nothing more is pushed by it
        a.check()
    finally:
        for lease in won:
            lease.release()
    assert a.holder() is None
