"""lease48: a server that ignores ``If-Match`` (a proxy dropping the header, a Drive-compatible
server without it): lease47's compare-and-swap on the run folder's property is then silently a
plain write, and two trainers racing both held, each believing Drive chose it. Each trainer now
asks once per start, one ``files.patch`` more (lease49: before its claim is made, writing
nothing, naming an etag no folder has): applied, one WARNING line, and the listing decides (the
0.1.x rules); refused (412), the compare-and-swap holds. The emulator's ``ignores_if_match`` is that server; the
real PyDrive2 stack, RunLease as the trainer makes it (tokens as two machines)."""
from __future__ import annotations

import json
import logging

import pytest

from _lease_race import Held, lease as _lease, patches as _patches, refusing, \
    stale_old_claim as _stale_old_claim
from trainer.errors import LeaseLostError
from trainer.lease_cas import NEVER

IGNORED = "(If-Match ignored)"


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "trainer.lease" and r.levelno == logging.WARNING]


def test_two_trainers_racing_on_a_server_ignoring_if_match_claim_no_cas(drive_env, emulator,
                                                                        tmp_path, caplog):
    """Both swaps land (the server applies each): before lease48 both held, each with the
    arbiter taken for proof, no line said. Now each says once that If-Match was ignored,
    and holds by the listing's rules only: once the listing shows both claims, the later
    claim loses at its next check and the first holds (the 0.1.x path, its window)."""
    caplog.set_level(logging.WARNING, logger="trainer.lease")
    emulator.ignores_if_match = True
    _stale_old_claim(emulator)
    folder = emulator.find("runs/exp")["id"]
    a, b = _lease(tmp_path, "a"), _lease(tmp_path, "b")
    # Neither listing shows the other's claim, and a's read of the folder is answered late:
    # b reads the same etag meanwhile and swaps first; a's swap names that etag too.
    emulator.faults.lag_listing(created=20, titles="^trainer-lease-")
    with Held(emulator, folder, a) as race:
        try:
            b.acquire()
            assert race.go() == "held"   # (the listing blind: its documented window)
            _both_said_once_and_hold_by_the_listing(emulator, folder, caplog, a, b)
        finally:
            b.release()


def _both_said_once_and_hold_by_the_listing(emulator, folder, caplog, a, b) -> None:
    """Each said once that If-Match was ignored, holds by the listing only (its claim says
    so), and once the listing shows both claims, the later loses at its next check."""
    said = [w for w in _warnings(caplog) if IGNORED in w]
    assert len(said) == 2, _warnings(caplog)   # one line each, no more
    assert all(w.startswith("drive:runs/exp: the run's lease is decided by the folder's "
                            "listing only") for w in said), said
    assert a._cas is None and b._cas is None   # (no CAS claimed: renewals swap nothing)
    # Each claim says it is held by the listing only (from its first write since lease49): a
    # trainer reaching Drive another way obeys it as a 0.1.x one's. A renewal swaps nothing.
    for lease in (a, b):
        body = json.loads(emulator.read_bytes(lease._mine.id))
        assert body["arbiter"] is False and body["owner"] == lease.token
        since = len(emulator.requests)
        lease._write(lease._folder)
        assert _patches(emulator, folder, since) == []
    emulator.faults.clear()   # (the listing shows both claims now)
    first, later = sorted((a, b), key=lambda lease: lease._order)
    first.check()
    with pytest.raises(LeaseLostError):
        later.check()
    first.check()
    assert len([w for w in _warnings(caplog) if IGNORED in w]) == 2   # (said once a start)


def test_the_probe_costs_one_request_per_start_refused_where_if_match_is_honoured(
        drive_env, emulator, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="trainer.lease")
    before = _unprobed_acquire(emulator, tmp_path)
    emulator.add_folder("runs/exp")
    folder = emulator.find("runs/exp")["id"]
    lease = _lease(tmp_path, "a")
    since = len(emulator.requests)
    lease.acquire()
    try:
        sent = emulator.requests[since:]
        [(probed, refused), (named, status)] = _patches(emulator, folder, since)
        # Before the claim (lease49), an etag no folder has; then the swap, naming the read's.
        assert (refused, status) == (412, 200) and probed == NEVER != named
        # Exactly one request more than an acquire that asks nothing: the probe.
        assert len(sent) == len(before) + 1, ([(r.method, r.path) for r in sent], before)
        assert [r.method for r in sent if not (r.method == "PATCH" and r.status == 412)] \
            == before
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
        assert lease._cas is not None
        # A renewal swaps once, and probes no more.
        since = len(emulator.requests)
        lease._write(lease._folder)
        assert [s for _, s in _patches(emulator, folder, since)] == [200]
        assert json.loads(emulator.read_bytes(lease._mine.id))["arbiter"] is True
    finally:
        lease.release()


def _unprobed_acquire(emulator, tmp_path) -> list[str]:
    """The requests (methods, in order) a first trainer's acquire sends to a fresh run
    folder of its own where it does not ask whether If-Match is honoured (as before lease48):
    what the probe's cost is counted against, measured here, not written down."""
    emulator.add_folder("runs/base")
    base = _lease(tmp_path, "base", dest="drive:runs/base")
    base._if_match = True   # (as if asked already: no probe)
    since = len(emulator.requests)
    base.acquire()
    try:
        return [r.method for r in emulator.requests[since:]]
    finally:
        base.release()


def test_a_trainer_held_by_the_listing_only_is_obeyed_by_one_that_reaches_drive_directly(
        drive_env, emulator, proxy, monkeypatch, tmp_path):
    """a reaches Drive through a proxy that refuses every conditional write of the folder
    (attackint47's case: the listing decides for a), b directly (its swap lands: the arbiter
    names b). Both started at once, their listings blind to each other: both hold (the 0.1.x
    window). Once the listing shows both, a's claim is first: a holds by the listing; b's
    check dropped a's claim because it said ``arbiter`` and the arbiter named b, so both held
    for good. A claim held by the listing only now says ``arbiter: false`` (written again at
    once), and b stands back at its next check."""
    emulator.add_folder("runs/exp")
    folder = emulator.find("runs/exp")["id"]
    refusing(proxy, folder)
    emulator.faults.lag_listing(created=20, titles="^trainer-lease-")
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
    a = _lease(tmp_path, "a")
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emulator.url)
    b = _lease(tmp_path, "b")
    try:
        a.acquire()
        assert a._cas is None   # (the listing decides for a: one line said)
        b.acquire()
        assert b._cas is not None and b._if_match is True
        # (a's claim written again at its fallback: it says so before b can see it)
        assert json.loads(emulator.read_bytes(a._mine.id))["arbiter"] is False
        emulator.faults.clear()   # (the listing shows both claims now)
        a.check()
        with pytest.raises(LeaseLostError):
            b.check()
        a.check()
    finally:
        a.release()
        b.release()
