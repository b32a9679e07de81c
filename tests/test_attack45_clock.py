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

The real PyDrive2 stack against the emulator (``date_offset``, ``send_date``)."""
from __future__ import annotations

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
    store.resolve("runs")
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
