"""leaselefts43: a DEAD lease claim dated ahead of Drive's clock (its writer's clock ran ahead
and heard no ``Date``; a date a client set; garbage), everywhere a claim is read.

attacklease42 made a starting trainer watch such a claim and take it over once it saw it
unchanged past the bound. Elsewhere its date still ruled: a trainer whose lease Drive's
outage kept from being taken at its start stopped at its first push that reached Drive, as
if the run were held ("holds the run's lease"); ``trainer status`` said it was "renewed 0 s
ago"; ``dedupe`` refused its folder until that date, a day ahead, plus ``stale_s``. Now one
rule (``run_claims.silent_for``) judges a claim dated ahead by how long this machine has
seen it unchanged (its first sight kept in drivestage's state folder, so a command run
again counts from the first), and the lines say so. The lease's period is shrunk (0.6 s);
the real PyDrive2 stack against the emulator."""
from __future__ import annotations

import json
import re
import time

import pytest

from drivestage.drive import server_clock
from drivestage.store import RemoteEntry
from test_fullclaim41_lease import _props
from test_lease39_pending_guard import _claims
from tests.test_guards41_dedupe import _run, _twins
from tests.test_messages_dedupe import live, put

DAY = 86400.0
KEY = "trainer-lease-feedfeedfeedfeed"
DEST = "drive:runs/exp"


def _ahead_property(store, folder: str, stale_s: float, later: float = 0.0) -> None:
    """A property claim of pid 7 on host ``elsewhere`` (generation 3), dated a day ahead
    (and ``later`` seconds)."""
    then = round(server_clock.now() + DAY + later, 1)
    store.set_public_property(RemoteEntry(folder, "exp", True), KEY,
                              f"3|{then:.1f}|{then:.1f}|7|x|0|{stale_s:.1f}|elsewhere")


def _until(done, what: str, bound: float = 15.0) -> None:
    """Call ``done`` until it is true, at most ``bound`` seconds (a shrunk period's wait)."""
    deadline = time.monotonic() + bound
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_pending_trainer_and_status_wait_out_a_dead_claim_dated_ahead(
        drive_env, emulator, tmp_path, fast_retries, store, monkeypatch):
    """Drive down at the trainer's start (its lease pending); a dead claim dated a day ahead
    there. Its first check that reaches Drive neither stops it nor takes the lease (the push
    may send new files: the guard's line says why); ``trainer status`` says what the date
    is, not "renewed 0 s ago". Seen unchanged past its stale period (1.8 s), it is no one's:
    status says stale, the next check takes the lease over and removes it."""
    from trainer.config import load_config
    from trainer.errors import LeaseNotTakenError
    from trainer.lease import held_folder, release_all
    from trainer.status import lease, lease_line
    from trainer.stopping import StopFlag

    monkeypatch.setenv("TRAINER_LEASE_SETTLE", "0")
    cfg = load_config(None, [f"drive.logs={DEST}", f"train.out_dir={tmp_path / 'run'}",
                             "drive.lease_minutes=0.01"])
    stop = StopFlag(60.0)
    emulator.faults.inject(method="POST", path="/upload/", status=503, times=None)
    try:
        folder = held_folder(cfg, stop)
        assert folder.lease is not None and folder.lease.pending
        emulator.faults.clear()
        [exp] = [f["id"] for f in emulator.files() if f["title"] == "exp"]
        _ahead_property(store, exp, stale_s=folder.lease.stale_s)

        folder.lease.check()   # (main: LeaseLostError, "pid 7 on elsewhere holds the run's lease")
        assert folder.lease.pending and folder.lease.lost is None and not stop.is_set()
        with pytest.raises(LeaseNotTakenError) as caught:
            folder.lease.guard()
        assert str(caught.value) == (
            "drive:runs/exp: the run's lease is not taken yet: pid 7 on elsewhere holds a "
            "claim dated 1440 min ahead of Drive's clock, so told by its changes: seen "
            f"unchanged for {str(caught.value).split('seen unchanged for ')[1].split(';')[0]}"
            "; it is taken over once seen unchanged for 2 s, and this trainer stops if it "
            "changes; until it is, nothing there is replaced or removed, so the send stopped "
            "at its first replacement or removal (new files may have gone); the next push "
            "tries again")
        held = lease(folder, 0.01)
        assert held is not None and not held["stale"] and held["ahead_s"] > DAY - 60
        line = lease_line(DEST, held)
        assert "renewed 0 s ago" not in line
        assert re.fullmatch(r"drive:runs/exp: trained now by pid 7 on elsewhere \(its lease "
                            r"dated 1440 min ahead of Drive's clock, so told by its changes: "
                            r"seen unchanged for \d s\)", line), line

        _until(lambda: lease(folder, 0.01)["stale"], "status never read the claim stale")
        assert lease_line(DEST, lease(folder, 0.01)).startswith(
            "drive:runs/exp: trained last by pid 7 on elsewhere (its lease dated 1440 min "
            "ahead of Drive's clock, so told by its changes: seen unchanged for ")
        folder.lease.check()   # (seen unchanged past stale_s: no one's, taken over)
        assert not folder.lease.pending and folder.lease.generation == 4
        assert _props(emulator) == [] and _claims(emulator) == [folder.lease.name]
        assert not stop.is_set()
    finally:
        release_all()


def test_a_pending_trainer_stops_where_the_claim_dated_ahead_is_renewed(
        drive_env, emulator, tmp_path, fast_retries, store, monkeypatch):
    """The same claim, changed (renewed: its holder lives, its clock ahead) between two
    checks: the trainer stops, as for any live claim it finds when it reaches Drive."""
    from trainer.config import load_config
    from trainer.errors import LeaseLostError
    from trainer.lease import held_folder, release_all
    from trainer.stopping import StopFlag

    cfg = load_config(None, [f"drive.logs={DEST}", f"train.out_dir={tmp_path / 'run'}",
                             "drive.lease_minutes=0.05"])
    stop = StopFlag(60.0)
    emulator.faults.inject(method="POST", path="/upload/", status=503, times=None)
    try:
        folder = held_folder(cfg, stop)
        emulator.faults.clear()
        [exp] = [f["id"] for f in emulator.files() if f["title"] == "exp"]
        _ahead_property(store, exp, stale_s=folder.lease.stale_s)
        folder.lease.check()
        assert folder.lease.pending and not stop.is_set()
        _ahead_property(store, exp, folder.lease.stale_s, later=1.0)   # (renewed)
        with pytest.raises(LeaseLostError, match="pid 7 on elsewhere holds the run's lease"):
            folder.lease.check()
        assert stop.is_set() and _props(emulator) == [KEY]
    finally:
        release_all()


def _sights_back(seconds: float) -> None:
    """Every first sight of a claim this machine noted (the state folder's, read at each
    look: :func:`drivestage.run_claims.silent_for`) moved ``seconds`` back."""
    from drivestage import run_claims
    from drivestage.state import state_dir

    path = state_dir() / run_claims.SEEN_FILE
    seen = json.loads(path.read_text())
    assert seen, "no sight noted"
    path.write_text(json.dumps({k: v - seconds for k, v in seen.items()}))


@pytest.mark.parametrize("where", ["property", "file"])
def test_dedupe_waits_a_dead_claim_dated_ahead_out_by_its_own_sight(
        env, drive_env, emulator, store, fast_retries, monkeypatch, where):
    """Refused once, with a line that says the date is ahead (not "renewed 0 s ago"); run
    again once the claim was seen unchanged past its stale_s (1 s): merged. Main refused
    until that date, a day ahead, plus stale_s."""
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "2")
    old, new = _twins(emulator, store)
    if where == "property":
        _ahead_property(store, new, stale_s=1.0)
        name = f"{KEY}, a property of the folder"
    else:
        made = put(emulator, store, new, f"{KEY}.json", json.dumps(
            {"owner": KEY[-16:], "host": "elsewhere", "pid": 7, "generation": 3,
             "stale_s": 1.0}).encode())
        emulator.store.update(made, modified=time.time() + DAY)   # (as setModifiedDate sets it)
        name = f"{KEY}.json"
    before = live(emulator)
    code, out, err = _run("dedupe", DEST)
    assert code == 1, err
    line = err.splitlines()[-1]
    assert re.fullmatch(re.escape(
        f"Error: drive:runs/exp (id {new}) is held by a training run now (its lease {name}: "
        "pid 7 on elsewhere, dated 1440 min ahead of Drive's clock, so told by its changes: "
        "seen unchanged for ") + r"\d s" + re.escape(
        "): merging it would move files under that run's pushes. Stop that run first (or "
        "wait until its lease is stale: ") + r"\d s" + re.escape(
        " without a renewal), then run this again"), line), line
    assert live(emulator) == before
    # Seen unchanged past its stale_s (shrunk to 1 s): this machine's first sight of it moved
    # back (as tests/test_skew44_date.py's _seen_since), not waited for; by 2.2 s, past the
    # 1 s and the second that Drive's Date, cut short, may read the sight younger by.
    _sights_back(2.2)
    code, out, err = _run("dedupe", DEST)
    assert code == 0, err
    assert {"runs/exp/a.txt", "runs/exp/b.txt"} <= set(live(emulator))
