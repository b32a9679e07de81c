"""attacklease36: the run's lease (trainer.lease) under Drive's eventually consistent listing
(the emulator's ``lag_listing``, by count of list answers). The lease decided by a listing
made ``settle_s`` after a trainer's own claim, and a listing that did not show another
trainer's claim yet let both hold the lease (healed at the later one's next check). Since
lease47 the run folder's arbiter (trainer.lease_cas: a property written with ``If-Match`` on
the folder's etag, read by id) decides: the second trainer is refused at its start. RunLease as the trainer makes it, two trainers' leases (two
tokens, as two machines), the real PyDrive2 stack against the emulator."""
from __future__ import annotations

import pytest

from trainer.errors import LeaseHeldError

DEST = "drive:runs/exp"


@pytest.fixture(autouse=True)
def _real_settle(monkeypatch):
    """The race these tests make is what the lease's settle wait bounds: a wait, not the
    suite's 0 (tests/conftest.py), though not the real 1.5 s of a 3 s period: the lag is by
    count of list answers, not by time (each trainer here waited its 1.5 s for nothing)."""
    monkeypatch.setenv("TRAINER_LEASE_SETTLE", "0.1")


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


def test_a_listing_that_lags_the_first_claim_lets_no_second_trainer_hold(drive_env, emulator,
                                                                           tmp_path):
    """(An xfail before lease47: no compare-and-swap; the run folder's arbiter is one now,
    trainer.lease_cas.) The second trainer's listings never show the first's claim; the
    arbiter, read by id, names it: refused in the line a listed live claim gets, its own
    claim file removed."""
    a, b, won = _both_acquire_under_lag(emulator, tmp_path)
    try:
        assert won == [a], "both hold the lease"
        for _ in range(3):   # (the lag is by list answers: these use it up)
            a.holder()
        assert [c.owner for c in a._claims(a._folder)] == [a.token]   # (b's claim removed)
        a.check()   # the first holds, and renews
    finally:
        for lease in won:
            lease.release()
    assert a.holder() is None


def test_the_second_trainer_refused_under_lag_names_the_holder(drive_env, emulator, tmp_path):
    import os
    import socket

    a, b = _lease(tmp_path, "a"), _lease(tmp_path, "b")
    emulator.faults.lag_listing(created=3, titles="^trainer-lease-")
    a.acquire()
    try:
        with pytest.raises(LeaseHeldError) as held:
            b.acquire()
        assert str(held.value).startswith(
            f"drive.logs {DEST} is the folder of a run another trainer still trains: pid "
            f"{os.getpid()} on {socket.gethostname()} holds its lease (last renewed ")
        assert b._mine is None and b.lost is None
    finally:
        a.release()
