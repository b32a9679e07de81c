"""lease51b: a push while Drive holds the lease's renewal.

On a normal end (no stop), with the lease's renewal held by Drive (a network blip), the
run's last push waited for that renewal before its first request (20 s in relaunch51's run):
the push's check waited on the lease's lock, which the renewal under way holds. The lease
is proved meanwhile by its last renewal (no other trainer can take it over as stale before
then, and a ``--take-over``'s taker pushes nothing before this claim is gone or stale): the
push's guard would ask nothing, so the push goes on now, guarded at each commit as before
(once the proof runs out, the guard waits for the renewal's answer).

The real PyDrive2 stack against the emulator; the renewal's upload held by the emulator's
latency, the push's return seen while it is still held (its count of held answers)."""
from __future__ import annotations

import hashlib

import pytest

from _lease_race import checking, claims_on_drive, lease

BYTES = b"epoch,loss\n1,0.5\n"


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_RETRY_BASE", "0.01")
    monkeypatch.setenv("DRIVESTAGE_RETRY_CAP", "0.02")


def test_a_push_while_drive_holds_the_renewal_goes_at_once_where_the_lease_is_proved(
        drive_env, emulator, tmp_path):
    held = lease(tmp_path, "a", period=60.0)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "log.csv").write_bytes(BYTES)
    held.acquire()   # (its claim's write answered: proved for stale_s less a margin)
    held.drive.lease = held
    emulator.faults.latency(60, path=rf"^/upload/drive/v2/files/{held._mine.id}", times=1)
    held._written_at = float("-inf")   # (due: the renewal writes the claim)
    renewal, failed = checking(held)
    try:
        assert emulator.faults.wait_latencies(lambda waiting: waiting == 1, 30)[0]
        pushed = held.drive.push()   # (main: waited for the renewal's answer)
        # Pushed while Drive still holds the renewal, and its guard asked nothing.
        assert emulator.faults.wait_latencies(lambda waiting: waiting == 1, 0)[0]
        assert renewal.is_alive() and held.guard_checks == 0
    finally:
        emulator.faults.hurry()
        renewal.join(30)
    assert not renewal.is_alive() and not failed, failed
    assert pushed.uploaded == ["log.csv"]
    on_drive = emulator.find("runs/exp/log.csv")
    assert on_drive["md5Checksum"] == hashlib.md5(BYTES).hexdigest()
    assert claims_on_drive(emulator) == [held.name]   # (renewed in place, as before)
    held.release()
    assert claims_on_drive(emulator) == []
