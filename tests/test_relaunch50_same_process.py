"""relaunch50: a rerun in the same notebook after a release that could not reach Drive.

A trainer's stop whose uploads Drive held past the grace (a network blip on Colab): ``fit``
returned, its lease released, while its upload thread went on. That thread's next push
checked the released lease, found its claim gone and made it anew, renewed by no one; or
the release's removal itself failed. Either way the claim stayed on Drive "renewed 0 s
ago", naming this very process, and the cell run again waited the whole stale period
(2.5 min by default) for a claim its own process had left.

Now a claim of this process (its pid, its machine, a token of a lease made here) whose
lease is released is this process's to take at once (and to remove), the ended run's late
push fenced first; a released lease makes no claim anew. A claim of another process of this machine that has ended is taken at once too (run_claims' rule).

The real PyDrive2 stack against the emulator; no sleeps, no waits on a clock: the lease
period is 60 s, so any wait for a claim to lapse would be 150 s (each test bounds its own
run at a few seconds by asserting the watch never started)."""
from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys

import pytest

from _lease_race import checking, claims_on_drive, lease

WAITING = "waiting up to"


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_RETRY_BASE", "0.01")
    monkeypatch.setenv("DRIVESTAGE_RETRY_CAP", "0.02")


def _no_wait(caplog) -> None:
    said = [r.getMessage() for r in caplog.records if WAITING in r.getMessage()]
    assert not said, said


def _held(tmp_path, caplog):
    """The first run's lease, held and renewing (a 60 s period: no renewal of its own
    during the test), the trainer's lines recorded."""
    caplog.set_level(logging.INFO, logger="trainer")
    first = lease(tmp_path, "a", period=60.0)
    first.acquire()
    first.start()
    return first


def test_a_late_push_after_the_release_makes_no_claim_and_a_rerun_takes_the_lease_at_once(
        drive_env, emulator, tmp_path, caplog):
    from trainer.errors import LeaseLostError

    first = _held(tmp_path, caplog)
    first.release()   # (the fit's end: its claim removed)
    assert claims_on_drive(emulator) == []
    first.check()   # the ended run's upload thread, its next push: allowed, nothing claimed
    assert claims_on_drive(emulator) == []
    second = lease(tmp_path, "a", period=60.0)   # (the cell run again: same process)
    second.acquire()
    _no_wait(caplog)
    assert claims_on_drive(emulator) == [second.name]
    with pytest.raises(LeaseLostError):   # the late push stops at its next check
        first.check()
    assert claims_on_drive(emulator) == [second.name]
    second.release()
    assert claims_on_drive(emulator) == []


def test_a_claim_left_by_a_release_that_could_not_reach_drive_is_taken_at_once(
        drive_env, emulator, tmp_path, caplog):
    from trainer.errors import LeaseLostError

    first = _held(tmp_path, caplog)
    # Drive unreachable at the release: its removal and its "released" write both fail.
    emulator.faults.inject(method="DELETE", status=503, times=None)
    emulator.faults.inject(path="^/upload/", status=503, times=None)
    first.release()
    emulator.faults.clear()
    assert claims_on_drive(emulator) == [first.name]   # left, looking freshly renewed
    second = lease(tmp_path, "a", period=60.0)
    second.acquire()   # (main: "held by pid N ..., last renewed 0 s ago; waiting up to 2.5 min")
    _no_wait(caplog)
    assert claims_on_drive(emulator) == [second.name]   # the left claim removed
    took = [r.getMessage() for r in caplog.records if "took the run's lease over" in r.getMessage()]
    assert took == [f"drive:runs/exp: took the run's lease over from pid {os.getpid()} on "
                    f"{socket.gethostname()}, last renewed 0 s ago (an earlier run in this process, "
                    f"ended: its claim could not be removed)"], took
    with pytest.raises(LeaseLostError) as lost:   # fenced in memory: no request needed
        first.guard()
    assert "a later run in this process took the run's lease" in str(lost.value)
    second.release()


def test_a_claim_of_an_ended_process_of_this_machine_is_taken_at_once(
        drive_env, emulator, tmp_path, caplog):
    from drivestage.temps import namespace_tag

    caplog.set_level(logging.INFO, logger="trainer")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    pid = int(dead.stdout)
    body = {"owner": "0e0e0e0e0e0e0e0e", "host": socket.gethostname(), "pid": pid,
            "machine": namespace_tag(), "generation": 1, "renewals": 1, "written": 0,
            "stale_s": 150.0}
    emulator.add_file("runs/exp/trainer-lease-0e0e0e0e0e0e0e0e.json", json.dumps(body).encode())
    second = lease(tmp_path, "a", period=60.0)
    second.acquire()   # (renewed 0 s ago by its date, but its process has ended)
    _no_wait(caplog)
    assert claims_on_drive(emulator) == [second.name]
    second.release()


def _held_renewal(emulator, first, monkeypatch):
    """``first``'s renewal, its claim's upload held by the emulator (a network blip past the
    grace), in a thread; returns the thread and what it raised."""
    import trainer.lease

    # (The release's wait for a check under way, 5 s, cut: the test sees it end, not pass.)
    monkeypatch.setattr(trainer.lease, "RELEASE_WAIT_S", 0.2)
    emulator.faults.latency(60, path="^/upload/", times=1)
    first._written_at = float("-inf")   # (due: half a period since its last write)
    renewal, failed = checking(first)
    assert emulator.faults.wait_latencies(lambda waiting: waiting == 1, 30)[0]
    return renewal, failed


def _renewal_held(tmp_path, caplog, emulator, monkeypatch):
    """The first run's lease (a 1 s period), held, its renewal under way and held by Drive
    (:func:`_held_renewal`): (the lease, the renewal's thread, its failures)."""
    caplog.set_level(logging.INFO, logger="trainer")
    first = lease(tmp_path, "a", period=1.0)
    first.acquire()
    return (first, *_held_renewal(emulator, first, monkeypatch))


def test_a_release_does_not_wait_for_a_held_renewal_and_that_renewal_removes_the_claim(
        drive_env, emulator, tmp_path, caplog, monkeypatch):
    first, renewal, failed = _renewal_held(tmp_path, caplog, emulator, monkeypatch)
    try:
        first.release()   # (main: waited for the held upload: the stop's return 40 s late)
        assert renewal.is_alive()   # returned while the renewal is still held
    finally:
        emulator.faults.hurry()
        renewal.join(30)
    assert not renewal.is_alive() and not failed, failed
    assert claims_on_drive(emulator) == []   # the renewal, landed, removed it


def test_a_rerun_while_the_ended_runs_renewal_is_held_takes_the_lease_and_that_one_stops(
        drive_env, emulator, tmp_path, caplog, monkeypatch):
    from trainer.errors import LeaseLostError

    first, renewal, failed = _renewal_held(tmp_path, caplog, emulator, monkeypatch)
    try:
        first.release()
        second = lease(tmp_path, "a", period=1.0)
        second.acquire()   # (the claim of a released lease of this process: at once)
        _no_wait(caplog)
        assert claims_on_drive(emulator) == [second.name]
    finally:
        emulator.faults.hurry()   # (the renewal lands on a claim removed: lost, not made anew)
        renewal.join(30)
    assert not renewal.is_alive()
    assert len(failed) == 1 and isinstance(failed[0], LeaseLostError), failed
    assert claims_on_drive(emulator) == [second.name]
    second.release()
    assert claims_on_drive(emulator) == []
