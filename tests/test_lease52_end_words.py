"""lease52: what the lease's end says where Drive holds the claim's removal (lease51b's two
wordings).

- The exit waiting for a released lease named what the release left the removal to: a
  renewal under way ("Drive to answer this run's last lease renewal, to remove its claim").
  The check under way, its write landed, removes the claim itself, and where Drive holds
  that removal the exit still said "renewal". It now names what Drive holds as it waits.
- A start that could not take the lease (Drive failing) removes the claim it made; where
  Drive held that removal past the release's bound, the run's start said "Drive did not
  answer the removal of this run's lease claim … a trainer of this run on another machine
  waits up to 2.5 min for it to lapse" before "could not take the run's lease …": the end's
  line at the start. The latter alone is said now (the removal goes on, as before).

The real PyDrive2 stack against the emulator; each step on the emulator's count of held
answers and of requests a rule matched: no sleeps."""
from __future__ import annotations

import logging

import pytest

from _lease_race import DEST, claims_on_drive, lease, renewal_held


@pytest.fixture(autouse=True)
def _quick(monkeypatch):
    import trainer.lease
    from trainer import lease_end

    monkeypatch.setenv("DRIVESTAGE_RETRY_BASE", "0.01")
    monkeypatch.setenv("DRIVESTAGE_RETRY_CAP", "0.02")
    monkeypatch.setattr(trainer.lease, "RELEASE_WAIT_S", 0.1)   # (the test's bounds)
    monkeypatch.setattr(lease_end, "EXIT_WAIT_S", 0.2)
    monkeypatch.setattr(lease_end, "SAY_AFTER_S", 0.05)
    monkeypatch.setattr(lease_end, "_LEFT", [])   # (this test's leases only, at its exit)


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno >= logging.WARNING and r.name.startswith("trainer")]


def test_the_exit_names_the_removal_drive_holds_after_the_renewal_landed(
        drive_env, emulator, tmp_path, caplog):
    from trainer import lease_end

    caplog.set_level(logging.INFO, logger="trainer")
    held = lease(tmp_path, "a", period=60.0)
    held.acquire()
    delete = emulator.faults.latency(60, method="DELETE", path=rf"/files/{held._mine.id}",
                                     times=1)
    renewal, failed = renewal_held(emulator, held)
    try:
        held.release()   # (the renewal held: its check removes the claim once it lands)
        emulator.faults.hurry()   # (the renewal lands; its check's removal: held)
        came, _ = emulator.faults.wait_latencies(lambda waiting: delete.hits == 1, 30)
        assert came and emulator.faults.wait_latencies(lambda waiting: waiting == 1, 30)[0]
        lease_end.at_exit()   # (the process's exit: Drive holds the removal past its bound)
        assert _lines(caplog) == [   # (main: "… its last lease renewal, to remove its claim")
            "drive:runs/exp: waiting up to 0 s for Drive to answer the removal of this run's "
            "lease claim before this process exits",
            f"drive:runs/exp: exiting with the run's lease claim {held.name} left on Drive "
            f"(Drive did not answer its removal within 0 s): a trainer of this run on another "
            f"machine waits up to 2.5 min for it to lapse; one on this machine takes it at once"]
    finally:
        emulator.faults.hurry()
        renewal.join(30)
    assert not renewal.is_alive() and not failed, failed
    assert claims_on_drive(emulator) == []


def test_a_failed_start_whose_claim_removal_drive_holds_says_only_that_the_lease_is_not_taken(
        drive_env, emulator, tmp_path, caplog):
    from trainer.config import load_config
    from trainer.lease import held_folder, release_all
    from trainer.stopping import StopFlag

    caplog.set_level(logging.INFO, logger="trainer")
    # Drive fails the arbiter's read (after the claim is written), and holds the claim's removal.
    emulator.faults.inject(method="GET", path=r"fields=etag", status=500, times=None)
    emulator.faults.latency(60, method="DELETE", times=1)
    cfg = load_config(None, [f"drive.logs={DEST}", f"train.out_dir={tmp_path / 'run'}"])
    try:
        folder = held_folder(cfg, StopFlag(60.0))
        assert folder.lease is not None and folder.lease.pending
        assert emulator.faults.wait_latencies(lambda waiting: waiting == 1, 30)[0]   # (held)
        said = _lines(caplog)   # (main: "… did not answer the removal of this run's lease
        assert len(said) == 1, said   # claim … within 0 s …" first)
        assert said[0].startswith(f"could not take the run's lease on {DEST} ("), said
        assert said[0].endswith("): it is taken at the first push that reaches Drive"), said
    finally:
        emulator.faults.clear()
        emulator.faults.hurry()
        release_all()
    assert claims_on_drive(emulator) == []
