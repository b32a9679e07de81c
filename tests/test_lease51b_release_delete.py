"""lease51b: a release whose removal of the claim Drive holds.

``RunLease.release`` waited at most ``RELEASE_WAIT_S`` (5 s) for a renewal under way, but its
own removal of the claim (a ``files.delete``) ran unbounded: Drive holding that request, a
notebook's ``fit`` waited for its answer, the HTTP timeout times each retry (8 tries of
120 s and their backoff by default: about 17 min; with a 3 s timeout, 24.6 s measured). The
removal now runs in a thread of its own within the release's one bound; past it, one line
says so, the removal goes on, and the process's exit waits for it (bounded: lease_end).

The real PyDrive2 stack against the emulator; the DELETE held by the emulator's latency and
let go by the test, each step on the emulator's count of held answers: no sleeps."""
from __future__ import annotations

import logging

import pytest

from _lease_race import claims_on_drive, lease


@pytest.fixture(autouse=True)
def _quick(monkeypatch):
    import trainer.lease
    from trainer import lease_end

    monkeypatch.setenv("DRIVESTAGE_RETRY_BASE", "0.01")
    monkeypatch.setenv("DRIVESTAGE_RETRY_CAP", "0.02")
    # (The release's bound, 5 s: cut, so the test sees it end, not pass.)
    monkeypatch.setattr(trainer.lease, "RELEASE_WAIT_S", 0.2)
    monkeypatch.setattr(lease_end, "_LEFT", [])   # (this test's leases only, at its exit)


def _released_with_its_delete_held(emulator, tmp_path, caplog):
    """A lease held, its claim's DELETE held by Drive, released: (the lease, the requests'
    count before the release, the hang-ups counted before), the DELETE still held."""
    caplog.set_level(logging.INFO, logger="trainer")
    first = lease(tmp_path, "a", period=60.0)
    first.acquire()
    first.start()
    hung_before = emulator.faults.wait_latencies(lambda waiting: True, 0)[1]
    emulator.faults.latency(60, method="DELETE", path=rf"/files/{first._mine.id}", times=1)
    since = len(emulator.requests)
    first.release()   # (main: waited for Drive's answer to the DELETE)
    # Returned while Drive still holds the DELETE: its client has not hung up.
    came, hung = emulator.faults.wait_latencies(lambda waiting: waiting == 1, 0)
    assert came and hung == hung_before, (came, hung, hung_before)
    assert first._mine is not None   # (its removal not answered yet: the emulator holds the
    return first, since              # answer, the file removed already)


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_release_whose_delete_drive_holds_returns_at_its_bound_and_the_delete_lands_after(
        drive_env, emulator, tmp_path, caplog):
    from trainer import lease_end

    try:
        first, since = _released_with_its_delete_held(emulator, tmp_path, caplog)
        assert _lines(caplog) == [
            f"drive:runs/exp: Drive did not answer the removal of this run's lease claim "
            f"{first.name} within 0 s: it goes on in the background; where it never lands, a "
            f"trainer of this run on another machine waits up to 2.5 min for it to lapse (one "
            f"on this machine takes it at once)"]
    finally:
        emulator.faults.hurry()   # (Drive answers the DELETE)
    lease_end.at_exit()   # (the process's exit: waits for the removal under way)
    assert first._mine is None and claims_on_drive(emulator) == []
    # One DELETE, answered: the removal the release began, not one more.
    deletes = [r.status for r in emulator.requests[since:] if r.method == "DELETE"]
    assert deletes == [204], deletes
    assert _lines(caplog)[1:] == []   # (the exit waited less than a second: said nothing)


def test_the_exit_waits_for_a_delete_held_forever_at_most_its_bound_and_says_the_claim_is_left(
        drive_env, emulator, tmp_path, caplog, monkeypatch):
    from trainer import lease_end

    monkeypatch.setattr(lease_end, "EXIT_WAIT_S", 0.1)
    monkeypatch.setattr(lease_end, "SAY_AFTER_S", 0.05)
    try:
        first, _ = _released_with_its_delete_held(emulator, tmp_path, caplog)
        lease_end.at_exit()   # (Drive holds the DELETE past the exit's bound)
        assert emulator.faults.wait_latencies(lambda waiting: waiting == 1, 0)[0]
        assert first._mine is not None
        assert _lines(caplog)[1:] == [
            "drive:runs/exp: waiting up to 0 s for Drive to answer the removal of this run's "
            "lease claim before this process exits",
            f"drive:runs/exp: exiting with the run's lease claim {first.name} left on Drive "
            f"(Drive did not answer its removal within 0 s): a trainer of this run on another "
            f"machine waits up to 2.5 min for it to lapse; one on this machine takes it at once"]
    finally:
        emulator.faults.hurry()
    with first._lock:   # (the removal under way ends: the DELETE answered)
        assert first._mine is None and claims_on_drive(emulator) == []
