"""leasefull42: ``drivestage dedupe`` beside a DEAD trainer's property claim (room41: Drive's
storage full, the claim a PUBLIC property of the run folder). The property recorded no
``stale_s``, so dedupe counted it live for the longest lease a trainer takes (2 h) unless its
process was one of this machine's that has ended: a runtime gone elsewhere (the usual Colab
reconnect) held the pair for 2 h, while the next trainer of the run took the same claim over
as stale after 2.5 min. Now the property records its ``stale_s`` as a claim file does, and
dedupe judges it by the rule the lease's take-over uses (``run_claims.gone``, one place).
The real PyDrive2 stack against the emulator."""
from __future__ import annotations

import re
import time

import pytest

from tests.test_guards41_dedupe import _run, _twins
from tests.test_messages_dedupe import live

MERGED = {"runs", "runs/exp", "runs/exp/a.txt", "runs/exp/b.txt"}


@pytest.fixture(autouse=True)
def _world(env, drive_env, fast_retries, monkeypatch):
    monkeypatch.setenv("TRAINER_LEASE_SETTLE", "0")
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "2")


def _elsewhere(store, folder_id: str, written_ago: float, stale_s: float) -> str:
    """A property claim as a trainer of ANOTHER machine writes it (room41's format, with the
    ``stale_s`` it records), last renewed ``written_ago`` seconds ago: its key."""
    from drivestage.drive import server_clock
    from drivestage.store import RemoteEntry

    now = round(server_clock.now(), 1)
    key = "trainer-lease-0123456789abcdef"
    store.set_public_property(RemoteEntry(folder_id, "exp", True), key,
                              f"1|{now - written_ago:.1f}|{now - 900:.1f}|4242|0badc0de|0|"
                              f"{stale_s:.0f}|colab-runtime")
    return key


def test_a_dead_trainers_property_stale_by_its_own_lease_holds_nothing(emulator, store):
    """Its runtime gone elsewhere 10 min ago, its lease's stale_s 150 s (the default 1 min
    period): merged, as the run's next trainer takes it over."""
    old, new = _twins(emulator, store)
    _elsewhere(store, new, written_ago=600, stale_s=150)
    code, out, err = _run("dedupe", "drive:runs/exp")
    assert code == 0, err
    assert set(live(emulator)) == MERGED


def test_a_live_property_of_another_machine_still_refuses_with_its_own_wait(emulator, store):
    """Renewed 20 s ago with a stale_s of 150 s: refused, and the wait said is what is left of
    that stale_s (not of 2 h: "120.5 min")."""
    old, new = _twins(emulator, store)
    key = _elsewhere(store, new, written_ago=20, stale_s=150)
    before = live(emulator)
    code, out, err = _run("dedupe", "drive:runs/exp")
    assert code == 1
    line = err.splitlines()[-1]
    m = re.fullmatch(re.escape(
        f"Error: drive:runs/exp (id {new}) is held by a training run now (its lease {key}, a "
        "property of the folder: pid 4242 on colab-runtime, renewed ") + r"(\d+) s ago" +
        re.escape("): merging it would move files under that run's pushes. Stop that run "
                  "first (or wait until its lease is stale: ") + r"2\.[0-2] min" +
        re.escape(" without a renewal), then run this again"), line)
    assert m and int(m.group(1)) in range(20, 30), line   # (150 s less 20 to 29: 2.0-2.2 min)
    assert live(emulator) == before


def test_a_trainer_whose_renewals_stopped_is_no_holder_once_its_lease_is_stale(
        emulator, store, tmp_path):
    """A real RunLease holding by a property (Drive full), its renewals stopped (a runtime
    gone; this process, alive, stands for it): refused while live, merged once silent past
    the lease's own stale_s (3 s at a 1 s period), as its take-over judges it."""
    from drivestage.drive import server_clock
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    old, new = _twins(emulator, store)
    used = sum(int(f.get("fileSize", 0)) for f in emulator.files())
    emulator.quota_bytes = emulator.store.quota_bytes = used + 10   # (no claim file fits)
    (tmp_path / "run").mkdir()
    lease = RunLease(DriveFolder(f"drive:id:{new}", str(tmp_path / "run")), period_s=1.0)
    lease.acquire()   # (never started: no renewals)
    try:
        code, _, err = _run("dedupe", "drive:runs/exp", "--dry-run")
        if server_clock.now() - lease._mine.modified < lease.stale_s - 1:   # (else: late)
            assert code == 1 and "is held by a training run now" in err, err
        deadline = time.monotonic() + 30
        while server_clock.now() - lease._mine.modified <= lease.stale_s + 1.0:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        code, out, err = _run("dedupe", "drive:runs/exp")
        assert code == 0, err
        assert set(live(emulator)) == MERGED
    finally:
        lease.release()
