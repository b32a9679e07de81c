"""skewlefts44: a starting trainer (``RunLease.acquire``, not a pending one) behind a proxy
whose ``Date`` is three hours off (skew44 tested the pending trainer's path only). Read by
that ``Date``, a claim renewed a moment ago by Drive's real clock read three hours silent:
a trainer started beside a live one took its lease over at once (main). Now its watch judges
the claim by how long it has seen it unchanged: a live holder's renewal is seen and the new
trainer is refused; a dead one (its first sight moved back past stale, as
tests/test_skew44_date.py does: no real wait) is taken at once. The real PyDrive2 stack
against the emulator (``date_offset``); the leases' periods shrunk to 3 s and 0.6 s."""
from __future__ import annotations

import logging
import time

import pytest

from drivestage.drive import server_clock
from test_fullclaim41_lease import _trainer
from test_lease39_pending_guard import DEST, _claims
from tests.test_skew44_date import _seen_since

AHEAD = 3 * 3600.0


@pytest.fixture
def skewed(emulator, monkeypatch):
    """The clock heard and the warning as they were, after (the next tests')."""
    for name in ("_dated", "_behind"):
        monkeypatch.setattr(server_clock, name, getattr(server_clock, name))
    monkeypatch.setattr(server_clock, "_warned", False, raising=False)
    yield
    emulator.date_offset = 0.0


def test_a_starting_trainer_under_a_date_hours_ahead_is_refused_by_a_live_holder(
        drive_env, emulator, tmp_path, fast_retries, monkeypatch, skewed):
    """A live holder renewing every 3 s: the new trainer sees it renewed and is refused
    (main: "its holder is gone", taken over at once, two trainers on one run folder)."""
    from trainer.drive import DriveFolder
    from trainer.errors import LeaseHeldError
    from trainer.lease import RunLease, release_all

    monkeypatch.setenv("TRAINER_LEASE_SETTLE", "0")
    emulator.date_offset = AHEAD
    try:
        # Periods of 3 s (stale after 7.5 s): a loaded machine starving the holder's renewal
        # thread for a 0.6 s lease's stale time (1.5 s) read it dead (flake41's pattern).
        holder, _ = _trainer(tmp_path, "holder", 4, minutes=0.05)   # (renews every 3 s)
        lease = holder.lease
        assert lease is not None and not lease.pending and server_clock.skew() is not None
        taker = RunLease(DriveFolder(DEST, str(tmp_path / "taker")), period_s=3.0)
        with pytest.raises(LeaseHeldError) as caught:
            taker.acquire()   # (its watch sees the holder renew it)
        assert str(caught.value).startswith(
            f"drive.logs {DEST} is the folder of a run another trainer still trains: pid "
        ), str(caught.value)
        assert ("holds its lease (of unknown age, Drive's Date 180 min ahead of this machine's "
                "clock, so told by its changes: seen unchanged for ") in str(caught.value)
        assert _claims(emulator) == [lease.name] and lease.lost is None
    finally:
        release_all()


@pytest.mark.parametrize("sign", [1, -1], ids=["ahead", "behind"])
def test_a_starting_trainer_under_a_skewed_date_takes_a_dead_claim_once_seen_stale(
        drive_env, emulator, tmp_path, fast_retries, monkeypatch, skewed, caplog, sign):
    """A holder that stopped renewing, first seen here longer ago than its stale period:
    taken at once, "its holder is gone", with no watch (main, the Date behind: the claim
    read three hours ahead of Drive's clock and was watched a stale period first)."""
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease, release_all
    from trainer.status import lease as status_lease

    monkeypatch.setenv("TRAINER_LEASE_SETTLE", "0")
    try:
        dead = RunLease(DriveFolder(DEST, str(tmp_path / "dead")), period_s=0.6)
        dead.acquire()   # (never renewed: its runtime gone)
        [claim] = [f["id"] for f in emulator.files() if f["title"] == dead.name]
        emulator.date_offset = sign * AHEAD
        # (Periods of 3 s, stale after 9 s: the bound below is the acquire's own requests,
        # about eleven, which at 0.6 s periods had 1.8 s; no real wait: its sight moved back.)
        taker = RunLease(DriveFolder(DEST, str(tmp_path / "taker")), period_s=3.0)
        held = status_lease(taker.drive, 0.01)   # (trainer status: a first sight of it)
        assert held is not None and not held["stale"] and server_clock.skew() is not None
        _seen_since(claim, taker.stale_s + 1.0)
        began = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="trainer.lease"):
            taker.acquire()
        assert time.monotonic() - began < taker.stale_s   # (no watch: seen stale already)
        said = [r.getMessage() for r in caplog.records if r.name == "trainer.lease"]
        assert not any("waiting up to" in m for m in said), said
        assert any(m.startswith(f"{DEST}: took the run's lease over from ")
                   and m.endswith("(its holder is gone)") for m in said), said
        assert _claims(emulator) == [taker.name]
    finally:
        release_all()
