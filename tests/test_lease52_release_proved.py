"""lease52: a normal end whose last renewal Drive holds returns at once where the lease is
proved.

``RunLease.release`` waited ``RELEASE_WAIT_S`` (5 s) for a renewal Drive held (a network
blip at the run's end), whatever the lease's state: a notebook's ``fit`` returned 5 s late
on every such end (lease51b's left item). Where the last renewal Drive answered still proves
the lease (no trainer can take it over as stale before then), that renewal's answer changes
nothing: the release now waits ``PROVED_WAIT_S`` at most (a slow renewal's requests), the
check under way removes the claim once its write lands, and a process's exit waits for
it (:mod:`trainer.lease_end`).

The real PyDrive2 stack against the emulator; the renewal's upload held by the emulator's
latency, the release's return seen while it is still held (its count of held answers): no
sleeps. The test sets the bounds (``RELEASE_WAIT_S`` past the emulator's hold: on main the
release returned only once Drive answered)."""
from __future__ import annotations

import logging

import pytest

from _lease_race import claims_on_drive, lease, renewal_held


@pytest.fixture(autouse=True)
def _quick(monkeypatch):
    import trainer.lease
    from trainer import lease_end

    monkeypatch.setenv("DRIVESTAGE_RETRY_BASE", "0.01")
    monkeypatch.setenv("DRIVESTAGE_RETRY_CAP", "0.02")
    monkeypatch.setattr(trainer.lease, "RELEASE_WAIT_S", 60.0)   # (past the hold below)
    monkeypatch.setattr(lease_end, "PROVED_WAIT_S", 0.1, raising=False)   # (main: none)
    monkeypatch.setattr(lease_end, "_LEFT", [])   # (this test's leases only)


def test_a_release_with_a_held_renewal_returns_at_once_where_the_lease_is_proved(
        drive_env, emulator, tmp_path, caplog):
    from trainer import lease_end

    caplog.set_level(logging.INFO, logger="trainer")
    held = lease(tmp_path, "a", period=60.0)
    held.acquire()   # (its claim's write answered: proved for stale_s less a margin)
    renewal, failed = renewal_held(emulator, held, 20)
    try:
        held.release()   # (main: returned once Drive answered the renewal, 20 s)
        # Returned while Drive still holds the renewal; the claim's removal left to it.
        assert emulator.faults.wait_latencies(lambda waiting: waiting == 1, 0)[0]
        assert renewal.is_alive() and claims_on_drive(emulator) == [held.name]
        assert [(ref(), what) for ref, _, what in lease_end._LEFT] == \
            [(held, lease_end.RENEWAL)]   # (a process's exit waits for it)
    finally:
        emulator.faults.hurry()
        renewal.join(30)
    assert not renewal.is_alive() and not failed, failed
    assert claims_on_drive(emulator) == []   # (removed by the check, once its write landed)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
