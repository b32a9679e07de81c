"""lease44: a trainer whose lease Drive's outage kept from being taken at its start (pending)
meets, at its first push that reaches Drive, a claim whose date tells nothing of its last
renewal.

- No ``Date`` heard from Drive (a proxy strips it): every claim is judged by how long this
  machine has seen it unchanged (leaselefts43), so a claim dead ten minutes read live for its
  first stale period of sight, and the pending trainer stopped for it at once, "held" (a
  false stop: the user's run did not start). Now it waits, as a starting trainer's take-over
  does: pending (its push's guard says why) until the claim was seen unchanged for its stale
  period, then it takes the lease; the deadline is set by the first sight this machine keeps
  (drivestage's state folder), moved back, not waited out.
- The claim changes (renewed) between two checks: the trainer stops, and its line no longer
  says "renewed 0 s ago" (the time it saw the claim, not a renewal's age): it says why the
  claim is told by its changes.

The real PyDrive2 stack against the emulator (``send_date`` off: no ``Date``)."""
from __future__ import annotations

import json
import re
import time

import pytest

from drivestage.drive import server_clock
from test_lease39_pending_guard import _claims
from tests.test_messages_dedupe import put

DEST = "drive:runs/exp"
KEY = "trainer-lease-feedfeedfeedfeed"


def _pending(tmp_path, emulator, store, modified: float):
    """A trainer's lease pending (Drive's uploads failed at its start, then Drive is back) on
    DEST, a 1-minute lease (stale after 150 s), and a claim file of pid 7 on ``elsewhere``
    (generation 3) there, dated ``modified`` (as a client's setModifiedDate sets it). Returns
    the folder, its stop flag and the claim's id."""
    from trainer.config import load_config
    from trainer.lease import held_folder
    from trainer.stopping import StopFlag

    cfg = load_config(None, [f"drive.logs={DEST}", f"train.out_dir={tmp_path / 'run'}",
                             "drive.lease_minutes=1"])
    stop = StopFlag(60.0)
    emulator.faults.inject(method="POST", path="/upload/", status=503, times=None)
    folder = held_folder(cfg, stop)
    assert folder.lease is not None and folder.lease.pending
    emulator.faults.clear()
    [exp] = [f["id"] for f in emulator.files() if f["title"] == "exp"]
    made = put(emulator, store, exp, f"{KEY}.json", json.dumps(
        {"owner": KEY[-16:], "host": "elsewhere", "pid": 7, "generation": 3,
         "stale_s": 150.0}).encode())
    emulator.store.update(made, modified=modified)
    return folder, stop, made


def _seen_since(claim_id: str, seconds: float) -> None:
    """This machine's first sight of the claim ``claim_id`` (its one version), moved to
    ``seconds`` ago: the time it has seen the claim unchanged (run_claims.silent_for)."""
    from drivestage import run_claims
    from drivestage.state import state_dir

    path = state_dir() / run_claims.SEEN_FILE
    seen = json.loads(path.read_text())
    [key] = [k for k in seen if k.startswith(f"{claim_id}@")]
    seen[key] = server_clock.now() - seconds
    path.write_text(json.dumps(seen))


def test_no_date_heard_a_pending_trainer_waits_out_a_dead_claim_by_its_sight(
        drive_env, emulator, store, tmp_path, fast_retries, monkeypatch):
    """A claim dead ten minutes, no ``Date`` heard: the pending trainer neither stops nor
    takes the lease (the guard's line says why, and ``trainer status`` what it knows of the
    claim); seen unchanged 15 s short of its stale period, still so; past it, the lease is
    taken and the dead claim removed."""
    from trainer.errors import LeaseNotTakenError
    from trainer.lease import release_all
    from trainer.status import lease as status_lease, lease_line

    monkeypatch.setattr(server_clock, "_dated", True)   # (as it was, after: the next tests')
    try:
        folder, stop, dead = _pending(tmp_path, emulator, store, time.time() - 600)
        lease = folder.lease
        emulator.send_date = False
        lease.check()   # (main: LeaseLostError, "pid 7 on elsewhere holds the run's lease")
        assert not server_clock.dated()
        assert lease.pending and lease.lost is None and not stop.is_set()
        with pytest.raises(LeaseNotTakenError) as caught:
            lease.guard()
        assert re.fullmatch(re.escape(
            "drive:runs/exp: the run's lease is not taken yet: pid 7 on elsewhere holds a "
            "claim of unknown age, Drive's answers carrying no Date, so told by its changes: "
            "seen unchanged for ") + r"\d+ s" + re.escape(
            "; it is taken over once seen unchanged for 2.5 min, and this trainer stops if it "
            "changes; until it is, nothing there is replaced or removed, so the send stopped "
            "at its first replacement or removal (new files may have gone); the next push "
            "tries again"), str(caught.value)), str(caught.value)
        line = lease_line(DEST, status_lease(folder, 1))   # (trainer status: the same words)
        assert re.fullmatch(re.escape(
            "drive:runs/exp: trained now by pid 7 on elsewhere (its lease of unknown age, "
            "Drive's answers carrying no Date, so told by its changes: seen unchanged for ")
            + r"\d+ s\)", line), line

        _seen_since(dead, lease.stale_s - 15.0)   # (its deadline 15 s ahead)
        lease.check()
        assert lease.pending and lease.lost is None and not stop.is_set()
        assert _claims(emulator) == [f"{KEY}.json"]

        _seen_since(dead, lease.stale_s + 1.0)   # (its deadline passed)
        lease.check()
        assert not lease.pending and lease.lost is None and not stop.is_set()
        assert lease.generation == 4 and _claims(emulator) == [lease.name]
    finally:
        emulator.send_date = True
        release_all()


@pytest.mark.parametrize("told", ["ahead", "no Date"])
def test_a_changed_claim_told_by_its_changes_stops_the_trainer_with_a_true_line(
        drive_env, emulator, store, tmp_path, fast_retries, monkeypatch, told):
    """The claim (dated a day ahead of Drive's clock; or ten minutes back, no ``Date`` heard)
    changes between two checks: its holder lives, and the trainer stops. Its line says the
    claim is told by its changes and how long it was seen unchanged (main: "renewed 0 s ago",
    a renewal's age it does not know)."""
    from trainer.errors import LeaseLostError
    from trainer.lease import release_all

    monkeypatch.setattr(server_clock, "_dated", True)
    day = 86400.0
    then = time.time() + day if told == "ahead" else time.time() - 600
    try:
        folder, stop, claim = _pending(tmp_path, emulator, store, then)
        emulator.send_date = told == "ahead"
        folder.lease.check()
        assert folder.lease.pending and not stop.is_set()
        emulator.store.update(claim, modified=then + 1.0)   # (renewed)
        with pytest.raises(LeaseLostError) as caught:
            folder.lease.check()
        why = ("dated 1440 min ahead of Drive's clock" if told == "ahead" else
               "of unknown age, Drive's answers carrying no Date")
        assert re.fullmatch(re.escape(
            f"pid 7 on elsewhere holds the run's lease on drive:runs/exp ({why}, so told by "
            "its changes: seen unchanged for ") + r"\d+ s" + re.escape(
            "; held before this trainer first reached Drive, which was down at its start): "
            f"this trainer pushes nothing more there, its checkpoints stay in "
            f"{tmp_path / 'run'} only"), str(caught.value)), str(caught.value)
        assert folder.lease.lost == str(caught.value) and stop.is_set()
    finally:
        emulator.send_date = True
        release_all()
