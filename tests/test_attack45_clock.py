"""attack45: Drive's ``Date`` from a pool of proxies (server_clock, skew44) — one skewed, one
that strips it or one whose clock is right, answer by answer.

1. A ``Date`` three hours back, then answers with none (a second proxy strips it): ``now()``
   kept the skewed offset whole (only a skew *heard on the last answer* took the later
   clock), so a mirror behind that pair dated its claim three hours back, and ``drivestage
   dedupe`` on a machine with the right ``Date`` merged under the live mirror — skew44's
   case, one stripped answer later.
2. A trainer holding its lease by a property (Drive full): an answer three hours ahead had it
   date its claim by the later clock (+3 h); the next answers, by the right clock, found that
   claim "renewed in the future" and never renewed it (``now - written > period/2`` is
   negative for three hours): to every other machine the claim read dated ahead, then
   unchanged, then gone, and a live trainer's lease was taken over.
3. A live claim seen first through the proxy three hours ahead, then answers with no
   ``Date``: its sight read three hours old, and a pending trainer took the lease over.
4. No ``Date`` and this machine's clock 100 s behind Drive's: the holder renewed every third
   period, stale by Drive's dates in between.
5. No ``Date`` and this machine's clock stepped an hour forward: a live claim seen before the
   step read an hour unchanged, and a pending trainer took the lease over.

The real PyDrive2 stack against the emulator (``date_offset``, ``send_date``)."""
from __future__ import annotations

import json
import time

from drivestage import run_claims
from drivestage.drive import server_clock
from tests.test_guards41_dedupe import _run, _twins
from tests.test_messages_dedupe import live
from test_fullclaim41_lease import _full, _trainer
from test_skew44_date import AHEAD, DEST, skewed  # noqa: F401 (a fixture)


def test_a_date_stripped_after_a_skewed_one_dates_a_mirrors_claim_by_the_later_clock(
        env, drive_env, emulator, store, tmp_path, fast_retries, monkeypatch, skewed):
    from tests.test_leasefull42_dedupe_mirror import _mirror, _ours, _refused

    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "2")
    _twins(emulator, store)
    emulator.date_offset = -AHEAD   # (the first proxy: its clock three hours back)
    store.stat(store.resolve("runs"))   # (two answers: a new offset is taken once two say it)
    assert server_clock.skew() is not None
    emulator.send_date, emulator.date_offset = False, 0.0   # (the second: strips it)
    try:
        store.resolve("runs")
        assert not server_clock.dated()
        assert server_clock.now() >= time.time() - 1   # (main: three hours back)
        mirror = _mirror(emulator, tmp_path, DEST)
        try:
            [key] = _ours(emulator)
            [written] = [run_claims.property_claim(str(p["value"])).written
                         for f in emulator.files() for p in emulator.properties_of(f["id"])
                         if p["key"] == key]
            assert abs(written - time.time()) < 60, written - time.time()
            emulator.send_date = True   # (dedupe elsewhere, its Date right)
            before = live(emulator)
            code, out, err = _run("dedupe", DEST)
            assert code == 1, err
            _refused(err, DEST)
            assert live(emulator) == before
        finally:
            mirror.stop(60)
    finally:
        emulator.send_date = True


def test_a_property_holder_renews_its_claim_dated_ahead_once_the_date_is_right_again(
        drive_env, emulator, tmp_path, fast_retries, monkeypatch, skewed):
    from trainer.lease import release_all

    _full(emulator, tmp_path, monkeypatch)
    try:
        folder, _ = _trainer(tmp_path, "run", 4, 10.0)   # (a 600 s period: no thread's turn)
        lease = folder.lease
        assert lease is not None and not lease.pending

        def written() -> float:
            [(key, value)] = [(p["key"], str(p["value"])) for f in emulator.files()
                              for p in emulator.properties_of(f["id"])
                              if p["key"].startswith("trainer-lease-")]
            claim = run_claims.property_claim(value)
            assert claim is not None
            return claim.written

        emulator.date_offset = AHEAD   # (a proxy whose clock is three hours ahead)
        lease.check()
        assert written() > time.time() + AHEAD - 60   # (the later clock: skew44's choice)
        emulator.date_offset = 0.0   # (the next answers through a proxy whose clock is right)
        lease.check()
        assert server_clock.dated()
        # Renewed by the right clock (main: left three hours ahead, never renewed).
        assert abs(written() - time.time()) < 60, written() - time.time()
        # Seen from another trainer with the right Date: a live claim renewed just now.
        from trainer.lease import RunLease
        from trainer.drive import DriveFolder

        other = DriveFolder(DEST, str(tmp_path / "other"))
        holder = RunLease(other, 600.0).last_claim()
        assert holder is not None and not RunLease(other, 600.0)._gone(holder)
        assert lease.lost is None
    finally:
        release_all()


def test_a_date_hours_ahead_then_none_reads_no_live_claim_stale(
        drive_env, emulator, store, tmp_path, fast_retries, skewed):
    """3. A claim renewed a moment ago, seen first through the proxy three hours ahead (its
    sight by this machine's clock, skew44), then answers with no ``Date``: the sight was read
    by Drive's clock as last heard (three hours ahead), so the claim read three hours
    unchanged, and the pending trainer took a live trainer's lease over. Sights are now read
    by this machine's clock wherever Drive's is not known: still pending; a dead claim is
    taken once seen unchanged for its stale period, as before."""
    from test_lease39_pending_guard import _claims
    from test_lease44_pending import KEY, _pending
    from test_skew44_date import _seen_since
    from trainer.lease import release_all

    try:
        folder, stop, claim = _pending(tmp_path, emulator, store, time.time())
        lease = folder.lease
        emulator.date_offset = AHEAD
        lease.check()
        assert lease.pending and server_clock.skew() is not None
        emulator.send_date, emulator.date_offset = False, 0.0
        lease.check()
        lease.check()
        assert not server_clock.dated()
        # (main: taken over, "seen unchanged for 180 min (its holder is gone …)")
        assert lease.pending and lease.lost is None and not stop.is_set()
        assert _claims(emulator) == [f"{KEY}.json"]
        _seen_since(claim, lease.stale_s + 1)   # (unrenewed past its stale period)
        lease.check()
        assert not lease.pending and lease.generation == 4 and lease.lost is None
        assert _claims(emulator) == [lease.name]
    finally:
        emulator.send_date = True
        release_all()


def test_a_holder_whose_clock_is_behind_with_no_date_renews_each_half_period(
        drive_env, emulator, store, tmp_path, fast_retries, monkeypatch, skewed):
    """4. No ``Date`` heard (a proxy strips it) and this machine's clock 100 s behind Drive's:
    the holder renewed only where its clock said half a period passed since the claim's date
    (Drive's): 100 s + 30 s after each renewal, so at its checks each minute it renewed every
    third (180 s), past the claim's 150 s stale period by Drive's clock, and a trainer on
    another machine took the live lease over. Now half a period by this machine's own
    record of its last write is enough too."""
    from types import SimpleNamespace

    from test_lease39_pending_guard import _claims
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease, release_all
    from trainer.lease_claims import boot_clock

    try:
        folder, _ = _trainer(tmp_path, "run", 4, 1.0)   # (1 min: no thread's turn here)
        lease = folder.lease
        assert lease is not None and not lease.pending
        emulator.send_date = False
        monkeypatch.setattr(server_clock, "_behind", None)   # (none heard: this machine's)
        monkeypatch.setattr(server_clock, "time", SimpleNamespace(
            time=lambda: time.time() - 100.0, monotonic=time.monotonic))
        [claim] = [f["id"] for f in emulator.files() if f["title"] == lease.name]
        # Two periods since its last renewal (the thread's checks at 60 s and 120 s):
        emulator.store.update(claim, modified=time.time() - 121.0)
        lease._written_at -= 121.0   # (its own record of that write, on its boot clock)
        lease.check()
        assert not server_clock.dated()
        renewed = store.resolve(f"runs/exp/{lease.name}").modified
        assert time.time() - renewed < 30, time.time() - renewed   # (main: 121 s)
        assert boot_clock() - lease._written_at < 30
        # Seen from another machine, its Date right: live.
        emulator.send_date = True
        monkeypatch.setattr(server_clock, "time", time)
        other = RunLease(DriveFolder(DEST, str(tmp_path / "other")), 60.0)
        holder = other.last_claim()
        assert holder is not None and not other._gone(holder)
        assert _claims(emulator) == [lease.name] and lease.lost is None
    finally:
        emulator.send_date = True
        release_all()


def test_a_step_of_this_machines_clock_reads_no_live_claim_stale(
        drive_env, emulator, store, tmp_path, fast_retries, monkeypatch, skewed):
    """5. No ``Date`` heard (a proxy strips it), a live claim seen by the pending trainer, then
    this machine's clock stepped an hour forward (NTP, a user setting it) before the claim's
    next renewal: its first sight, read by the stepped clock, was an hour old, and the
    trainer took a live trainer's lease over (attack44 left it: "inherent to a wall clock").
    From a process's first reading of a sight on, the time is counted on the boot clock. A
    claim unrenewed past its stale period is still taken."""
    from types import SimpleNamespace

    from drivestage.state import state_dir
    from test_lease39_pending_guard import _claims
    from test_lease44_pending import KEY, _pending
    from trainer.lease import release_all

    try:
        folder, stop, claim = _pending(tmp_path, emulator, store, time.time())
        lease = folder.lease
        emulator.send_date = False
        monkeypatch.setattr(server_clock, "_behind", None)   # (none heard: this machine's)
        lease.check()
        assert lease.pending and not server_clock.dated()
        stepped = SimpleNamespace(**{n: getattr(time, n) for n in dir(time)
                                     if not n.startswith("_")})
        stepped.time = lambda: time.time() + 3600.0   # (this machine's clock, an hour on)
        monkeypatch.setattr(server_clock, "time", stepped)
        monkeypatch.setattr(run_claims, "time", stepped)
        lease.check()
        # (main: taken over, "seen unchanged for 60 min (its holder is gone …)")
        assert lease.pending and lease.lost is None and not stop.is_set()
        assert _claims(emulator) == [f"{KEY}.json"]
        # Unrenewed past its stale period (its sight moved back, by the clock it was noted
        # by): taken over.
        path = state_dir() / run_claims.SEEN_FILE
        seen = json.loads(path.read_text())
        [key] = [k for k in seen if k.startswith(f"{claim}@")]
        seen[key] = time.time() - (lease.stale_s + 1)
        path.write_text(json.dumps(seen))
        lease.check()
        assert not lease.pending and lease.generation == 4 and lease.lost is None
        assert _claims(emulator) == [lease.name]
    finally:
        emulator.send_date = True
        release_all()
