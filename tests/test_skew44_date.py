"""skew44: Drive's answers carry a ``Date`` from a clock hours off (a proxy that sets its own
from a skewed clock, rather than stripping it). Read by it, "Drive's now" was three hours
ahead, and a claim another machine dated by Drive's real clock, renewed a moment ago, read
three hours silent: a pending trainer took a live trainer's lease over at once (two trainers
writing one run folder).

Now a ``Date`` past ``server_clock.TOLERANCE`` (60 s) from this machine's clock is trusted
no more than none: claims are judged by how long this machine has seen them unchanged
(``run_claims.silent_for``), one warning says so, and ``trainer status`` and ``drivestage
dedupe`` name the skew in the same words. Periods are not waited out: the first sight this
machine keeps (drivestage's state folder) is moved back. The real PyDrive2 stack against the
emulator (``date_offset``: the ``Date`` of its answers three hours ahead)."""
from __future__ import annotations

import json
import logging
import re
import time

import pytest

from drivestage import run_claims
from drivestage.drive import server_clock
from test_lease39_pending_guard import _claims
from test_lease44_pending import DEST, KEY, _pending
from tests.test_guards41_dedupe import _run, _twins
from tests.test_messages_dedupe import live, put

AHEAD = 3 * 3600.0
SKEWED = ("of unknown age, Drive's Date 180 min ahead of this machine's clock, so told by its "
          "changes")
WARNING = ("Drive's answers are dated 180 min ahead of this machine's clock (a proxy's clock or "
           "this machine's is wrong): neither is trusted to date a run's lease or a mirror's "
           "claim, so each is judged by how long it is seen unchanged (gone once seen "
           "unchanged for its stale period)")


@pytest.fixture
def skewed(emulator, monkeypatch):
    """Drive's ``Date`` three hours ahead; the clock heard and the warning as they were,
    after (the next tests')."""
    for name in ("_dated", "_behind"):
        monkeypatch.setattr(server_clock, name, getattr(server_clock, name))
    monkeypatch.setattr(server_clock, "_warned", False, raising=False)
    yield
    emulator.date_offset = 0.0


def _seen_since(claim_id: str, seconds: float) -> None:
    """This machine's first sight of the claim ``claim_id`` moved to ``seconds`` ago, by this
    machine's clock (its sights' clock where the Date is skewed)."""
    from drivestage.state import state_dir

    path = state_dir() / run_claims.SEEN_FILE
    seen = json.loads(path.read_text())
    [key] = [k for k in seen if k.startswith(f"{claim_id}@")]
    seen[key] = time.time() - seconds
    path.write_text(json.dumps(seen))


def test_a_date_hours_ahead_takes_no_live_lease_over_and_a_dead_one_once_seen_stale(
        drive_env, emulator, store, tmp_path, fast_retries, skewed, caplog):
    """A claim renewed a moment ago by Drive's real clock, the Date three hours ahead: the
    pending trainer neither takes it over nor stops (main: taken at once, "3 h silent");
    one warning; ``trainer status`` says the claim is told by its changes and why; renewed,
    the trainer stops as for any live holder. A second claim left unrenewed: taken over once
    seen unchanged past its stale period, not before."""
    from trainer.errors import LeaseLostError
    from trainer.lease import release_all
    from trainer.status import lease as status_lease, lease_line

    try:
        folder, stop, claim = _pending(tmp_path, emulator, store, time.time())
        lease = folder.lease
        emulator.date_offset = AHEAD
        with caplog.at_level(logging.WARNING, logger="drivestage.drive.server_clock"):
            lease.check()
            lease.check()
        assert lease.pending and lease.lost is None and not stop.is_set()
        assert _claims(emulator) == [f"{KEY}.json"]
        assert not server_clock.dated() and round(server_clock.skew() or 0) in range(
            int(AHEAD) - 2, int(AHEAD) + 2)
        assert [r.getMessage() for r in caplog.records
                if r.name == "drivestage.drive.server_clock"] == [WARNING]

        held = status_lease(folder, 1)   # (trainer status: a 1-minute lease)
        assert held is not None and not held["stale"]
        line = lease_line(DEST, held)
        assert re.fullmatch(re.escape(
            f"drive:runs/exp: trained now by pid 7 on elsewhere (its lease {SKEWED}: seen "
            "unchanged for ") + r"\d+ s\)", line), line

        _seen_since(claim, lease.stale_s - 15.0)   # (unrenewed, 15 s short of stale)
        lease.check()
        assert lease.pending and lease.lost is None and _claims(emulator) == [f"{KEY}.json"]

        emulator.store.update(claim, modified=time.time())   # (renewed: its holder lives)
        with pytest.raises(LeaseLostError) as caught:
            lease.check()
        assert str(caught.value).startswith(
            f"pid 7 on elsewhere holds the run's lease on {DEST} ({SKEWED}: seen unchanged "
            "for "), str(caught.value)
        assert stop.is_set() and _claims(emulator) == [f"{KEY}.json"]
    finally:
        release_all()


@pytest.mark.parametrize("sign", [1, -1], ids=["ahead", "behind"])
def test_a_skewed_date_a_pending_trainer_takes_a_dead_claim_once_seen_stale(
        drive_env, emulator, store, tmp_path, fast_retries, skewed, sign):
    """Unrenewed, the claim is taken over once seen unchanged past its stale period. Main,
    the Date ahead: taken at the first check, while live by Drive's real clock; behind: still
    pending past the stale period, the dead claim read fresh by a clock three hours back (the
    safe side, but it held the run three hours)."""
    from trainer.lease import release_all

    try:
        folder, stop, claim = _pending(tmp_path, emulator, store, time.time())
        lease = folder.lease
        emulator.date_offset = sign * AHEAD
        lease.check()
        assert lease.pending and _claims(emulator) == [f"{KEY}.json"]
        _seen_since(claim, lease.stale_s + 1.0)
        lease.check()
        assert not lease.pending and lease.lost is None and not stop.is_set()
        assert lease.generation == 4 and _claims(emulator) == [lease.name]

        emulator.date_offset = 30.0   # (within the tolerance: Drive's clock, as ever)
        for _ in range(2):   # (a new offset is taken once two answers say it)
            store.list(folder.lease._folder)
        assert server_clock.dated() and server_clock.skew() is None
    finally:
        release_all()


def test_dedupe_behind_a_date_hours_ahead_says_so_and_merges_once_seen_stale(
        env, drive_env, emulator, store, fast_retries, monkeypatch, skewed):
    """``dedupe`` refuses a live claim with ``trainer status``'s words (main: "renewed 0 s
    ago", its silence by this machine's clock); seen unchanged past its stale_s, merged."""
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "2")
    old, new = _twins(emulator, store)
    made = put(emulator, store, new, f"{KEY}.json", json.dumps(
        {"owner": KEY[-16:], "host": "elsewhere", "pid": 7, "generation": 3,
         "stale_s": 150.0}).encode())
    emulator.date_offset = AHEAD
    before = live(emulator)
    code, out, err = _run("dedupe", DEST)
    assert code == 1, err
    assert [ln for ln in err.splitlines() if "Drive's answers are dated" in ln] == [
        f"WARNING drivestage.drive.server_clock: {WARNING}"], err
    line = err.splitlines()[-1]
    assert re.fullmatch(re.escape(
        f"Error: drive:runs/exp (id {new}) is held by a training run now (its lease "
        f"{KEY}.json: pid 7 on elsewhere, {SKEWED}: seen unchanged for ") + r"\d+ s" + re.escape(
        "): merging it would move files under that run's pushes. Stop that run first (or "
        "wait until its lease is stale: ") + r"[\d.]+ (s|min)" + re.escape(
        " without a renewal), then run this again"), line), line
    assert live(emulator) == before
    _seen_since(made, 151.0)
    code, out, err = _run("dedupe", DEST)
    assert code == 0, err
    assert {"runs/exp/a.txt", "runs/exp/b.txt"} <= set(live(emulator))


def test_a_mirror_behind_a_date_hours_back_dates_its_claim_by_the_later_clock(
        env, drive_env, emulator, store, tmp_path, fast_retries, monkeypatch, skewed):
    """The writer's side: a mirror whose Drive answers are dated three hours back wrote its
    claim by that Date (main: dated three hours ago, past its stale_s, 2 h, so ``dedupe`` on a
    machine with the right Date merged under the live mirror); now by the later of the two
    clocks, so dedupe refuses."""
    from tests.test_leasefull42_dedupe_mirror import _mirror, _refused

    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "2")
    old, new = _twins(emulator, store)
    emulator.date_offset = -AHEAD
    mirror = _mirror(emulator, tmp_path, DEST)
    try:
        emulator.date_offset = 0.0   # (dedupe, as on a machine whose Date is right)
        before = live(emulator)
        code, out, err = _run("dedupe", DEST)
        assert code == 1, err
        _refused(err, DEST)
        assert live(emulator) == before
    finally:
        mirror.stop(60)
