"""lease49: the windows of the run's lease where a trainer's path to Drive does not honour
``If-Match`` and another's does (lease48 left them: notes/s48/lease48.md). a reaches Drive
through a proxy (tests/_proxy.py) that refuses every conditional write of the folder, or
drops the ``If-Match`` header; b goes direct, its compare-and-swap working. The two never
both hold but in the one window docs/guarantees.md states ("The run's lease: when two
trainers can both hold it"), pinned here. Every wait is on the emulator's count of held
answers."""
from __future__ import annotations

import json
import logging
import os

import pytest

from _lease_race import Held, arbiter, claims_on_drive, lease, patches, refusing
from trainer.errors import LeaseHeldError, LeaseLostError

IGNORED = "(If-Match ignored)"
#: A claim's write in place: its resumable upload's first request (a create is a POST).
REWRITE = r"/upload/drive/v2/files/[^/?]+\?"


def _pair(monkeypatch, proxy, emulator, tmp_path):
    """a through ``proxy``, b direct."""
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
    a = lease(tmp_path, "a")
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emulator.url)
    return a, lease(tmp_path, "b")


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "trainer.lease" and r.levelno == logging.WARNING]


def test_a_direct_trainer_checking_while_the_other_rewrites_its_claim_is_not_held_twice(
        drive_env, emulator, proxy, monkeypatch, tmp_path):
    """lease48's rewrite window: a (its conditional writes all refused by a proxy) falls
    back to the listing and writes its claim again, ``arbiter: false``; until that write
    lands the claim says ``arbiter: true``. b (direct) took the arbiter meanwhile, its
    listing blind to a's claim, then checked with the listing caught up: a's claim (first)
    said it obeys the arbiter, which names b, so b dropped it. Before lease49 a then held
    by the listing and b by the arbiter: both held (until b's next check). Now a reads the
    arbiter once its claim says ``arbiter: false``: it names b's live claim, and a stands
    back; b holds."""
    emulator.add_folder("runs/exp")
    folder = emulator.find("runs/exp")["id"]
    refusing(proxy, folder)
    emulator.faults.lag_listing(created=20, titles="^trainer-lease-")
    a, b = _pair(monkeypatch, proxy, emulator, tmp_path)
    with Held(emulator, folder, a, "PUT", REWRITE) as race:   # (a's claim written again)
        try:
            b.acquire()
            assert arbiter(emulator) == f"1 {b.token} {b._mine.id}"
            emulator.faults.clear()   # (the listing shows both claims now; a's first)
            assert json.loads(emulator.read_bytes(a._mine.id))["arbiter"] is True
            b.check()   # (a's claim says it obeys the arbiter, which names b: dropped)
            out = race.go()
            assert isinstance(out, LeaseHeldError), out
            assert f"pid {os.getpid()} on " in str(out) and "holds its lease" in str(out)
            b._written_at -= b.period_s   # (b's renewal due: its swap lands, held)
            b.check()
            assert claims_on_drive(emulator) == [b.name]
            assert arbiter(emulator) == f"1 {b.token} {b._mine.id}"
        finally:
            b.release()


def _dropping(proxy, emulator, monkeypatch, tmp_path, caplog):
    """a through a proxy that drops ``If-Match`` (its writes all plain), b direct; their
    listings blind to each other's claims."""
    caplog.set_level(logging.WARNING, logger="trainer.lease")
    proxy.drop("If-Match")
    emulator.add_folder("runs/exp")
    emulator.faults.lag_listing(created=20, titles="^trainer-lease-")
    return (emulator.find("runs/exp")["id"],) + _pair(monkeypatch, proxy, emulator, tmp_path)


def _a_said_ignored(caplog, a) -> None:
    """a said once, before its claim was made, that the listing decides; its claim says so."""
    said = [w for w in _warnings(caplog) if IGNORED in w]
    assert len(said) == 1 and said[0].startswith(
        "drive:runs/exp: the run's lease is decided by the folder's listing only"), said
    assert a._if_match is False and a._cas is None


@pytest.mark.parametrize("first", ["a", "b"])
def test_behind_a_proxy_dropping_if_match_or_direct_the_first_to_write_the_arbiter_holds(
        drive_env, emulator, proxy, monkeypatch, tmp_path, caplog, first):
    """One after the other, listings blind: a's write (plain, the header dropped) or b's
    swap names its claim, and the other reads that live claim named and stands back, in
    the refusal's words; a writes nothing where it stands back, and says once (before its
    claim is made) that the listing decides for it, its claim saying so from its first
    write."""
    folder, a, b = _dropping(proxy, emulator, monkeypatch, tmp_path, caplog)
    holder, other = (a, b) if first == "a" else (b, a)
    holder.acquire()
    try:
        with pytest.raises(LeaseHeldError) as refused:
            other.acquire()
        assert str(refused.value).startswith(
            "drive.logs drive:runs/exp is the folder of a run another trainer still trains: "
            f"pid {os.getpid()} on ")
        _a_said_ignored(caplog, a)
        assert arbiter(emulator) == f"1 {holder.token} {holder._mine.id}"
        # The holder's probe (a's applied, b's refused) and write; the other's probe only.
        assert [s for _, s in patches(emulator, folder)] == \
            ([200, 200, 412] if first == "a" else [412, 200, 200])
        emulator.faults.clear()   # (the listing shows every claim now)
        holder._written_at -= holder.period_s
        holder.check()
        assert claims_on_drive(emulator) == [holder.name]
        if first == "a":
            assert json.loads(emulator.read_bytes(a._mine.id))["arbiter"] is False
    finally:
        holder.release()


def test_the_window_left_a_plain_write_landing_after_the_direct_ones_swap_until_its_renewal(
        drive_env, emulator, proxy, monkeypatch, tmp_path, caplog):
    """The one window left (docs/guarantees.md): b's swap lands between a's read of the
    arbiter (none named; its answer held) and a's plain write, which overwrites it, as any
    write whose ``If-Match`` a proxy dropped may. Both hold then: a by the listing (its
    claim says ``arbiter: false``), b by its swap, until b's next renewal, whose swap
    Drive refuses: the arbiter names a, and b stops, saying a took the lease over; a holds
    on. (lease48 had the same window, and a's claim said ``arbiter: true`` in it.)"""
    folder, a, b = _dropping(proxy, emulator, monkeypatch, tmp_path, caplog)
    with Held(emulator, folder, a) as race:
        try:
            b.acquire()
            assert race.go() == "held"
            assert b.lost is None and arbiter(emulator) == f"1 {a.token} {a._mine.id}"
            assert [s for _, s in patches(emulator, folder)] == [200, 412, 200, 200]
            _a_said_ignored(caplog, a)
            assert json.loads(emulator.read_bytes(a._mine.id))["arbiter"] is False
            b._written_at -= b.period_s   # (b's next renewal)
            with pytest.raises(LeaseLostError, match=f"pid {os.getpid()} on [^ ]+ took the "
                                                     "run's lease on drive:runs/exp over"):
                b.check()
            emulator.faults.clear()   # (the listing shows both claims now: a's first)
            a._written_at -= a.period_s
            a.check()
            assert a.lost is None
        finally:
            b.release()


def test_a_swap_answered_with_the_etag_it_named_leaves_the_listing_to_decide_and_says_so(
        drive_env, emulator, proxy, monkeypatch, tmp_path, caplog):
    """A proxy that answers the swap with the etag the swap named (a later swap naming it
    would land too: no compare-and-swap) though the probe was refused: one line, and the
    claim, written saying it obeys the arbiter, is written again saying not."""
    from _proxy import Reply

    caplog.set_level(logging.WARNING, logger="trainer.lease")
    emulator.add_folder("runs/exp")
    rec = emulator.find("runs/exp")
    named = json.dumps({"etag": f'"{rec["id"]}/{rec["version"]}"'}).encode()
    proxy.on("PATCH", rf"/files/{rec['id']}\?.*fields=etag", lambda status, headers, _: Reply(
        status, {"Content-Type": "application/json", "Content-Length": str(len(named))},
        [named]))
    a, _ = _pair(monkeypatch, proxy, emulator, tmp_path)
    a.acquire()
    try:
        [line] = [w for w in _warnings(caplog) if "listing only" in w]
        assert "answered a write of the folder with the etag it named" in line, line
        assert a._if_match is False and a._cas is None
        assert json.loads(emulator.read_bytes(a._mine.id))["arbiter"] is False
        assert arbiter(emulator) == f"1 {a.token} {a._mine.id}"
    finally:
        a.release()
