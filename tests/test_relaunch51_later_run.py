"""relaunch51: the ended run's late push, stopped by a later run of the same process, says so.

A notebook's ``fit`` returned after its grace while its upload thread pushed on (Drive held
the uploads); the cell run again took the run's lease. That late push, its check's listing
under way as the new run claimed, found the new claim and stopped, saying ``pid <its own
pid> on <this machine> took the run's lease on … over …``: the user's own process, read as
another trainer of this machine. It now names what took it: a later run in this process.

The real PyDrive2 stack against the emulator; the late push's listing held by the
emulator's latency until the new run has claimed (its count of held answers: no sleeps)."""
from __future__ import annotations

import logging

import pytest

from _lease_race import checking, claims_on_drive, lease

TOOK = "took the run's lease on"


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_RETRY_BASE", "0.01")
    monkeypatch.setenv("DRIVESTAGE_RETRY_CAP", "0.02")


def test_a_late_push_stopped_by_a_later_run_of_this_process_names_that_run_not_its_own_pid(
        drive_env, emulator, tmp_path, caplog):
    from trainer.errors import LeaseLostError

    caplog.set_level(logging.INFO, logger="trainer")
    first = lease(tmp_path, "a", period=60.0)
    first.acquire()
    first.release()   # (the fit's end; its upload thread pushes on)
    # The late push's check: its listing of the claims held by Drive while the cell runs again.
    emulator.faults.latency(60, method="GET", path=r"^/drive/v2/files\?.*parents", times=1)
    late, failed = checking(first)
    try:
        assert emulator.faults.wait_latencies(lambda waiting: waiting == 1, 30)[0]
        second = lease(tmp_path, "b", period=60.0)
        second.acquire()
    finally:
        emulator.faults.hurry()
        late.join(30)
    assert not late.is_alive()
    assert len(failed) == 1 and isinstance(failed[0], LeaseLostError), failed
    said = [r.getMessage() for r in caplog.records if TOOK in r.getMessage()]
    # (main: "pid <this pid> on <this host> took the run's lease on ...")
    assert said == [f"a later run in this process took the run's lease on drive:runs/exp over "
                    f"(renewed 0 s ago): this trainer pushes nothing more there, its "
                    f"checkpoints stay in {tmp_path / 'a'} only"], said
    assert str(failed[0]) == said[0]
    assert claims_on_drive(emulator) == [second.name]
    second.release()
