"""lease48: a server that ignores ``If-Match`` (a proxy dropping the header, a Drive-compatible
server without it): lease47's compare-and-swap on the run folder's property is then silently a
plain write, and two trainers racing both held, each believing Drive chose it. Each trainer now
asks once per start, one ``files.patch`` more (its swap's properties again, naming the etag
its swap replaced): applied, one WARNING line, and the listing decides (the 0.1.x rules); refused
(412), the compare-and-swap holds. The emulator's ``ignores_if_match`` is that server; the
real PyDrive2 stack, RunLease as the trainer makes it (tokens as two machines)."""
from __future__ import annotations

import json
import logging
import threading
import time

import pytest

from trainer.errors import LeaseLostError

DEST = "drive:runs/exp"
IGNORED = "(If-Match ignored)"
#: The requests a first trainer's acquire sent to a fresh run folder before lease48 (measured
#: on main 9514d645 with this test's set-up): the probe adds exactly one.
BEFORE = 11


def _lease(tmp_path, name: str):
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    return RunLease(DriveFolder(DEST, str(tmp_path / name)), period_s=3.0)


def _patches(emulator, folder: str, since: int = 0) -> list[tuple[str, int]]:
    """The folder's patches: (the If-Match each named, the status answered)."""
    out = []
    for r in emulator.requests[since:]:
        if r.method == "PATCH" and f"/files/{folder}" in r.path:
            named = {k.lower(): v for k, v in r.headers.items()}.get("if-match", "")
            out.append((named, r.status))
    return out


def _stale_old_claim(emulator) -> None:
    """A claim file of a trainer of 0.1.x on another machine (no arbiter), silent an hour."""
    body = {"owner": "0ld0ld0ld0ld0ld0", "host": "old-machine", "pid": 4242,
            "machine": "0badf00d", "generation": 1, "renewals": 9, "written": 0}
    fid = emulator.add_file("runs/exp/trainer-lease-0ld0ld0ld0ld0ld0.json",
                            json.dumps(body).encode())
    emulator.store.update(fid, modified=time.time() - 3600)


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
    emulator.faults.latency(60, "GET", rf"/files/{folder}\?.*fields=etag", times=1)
    out: dict = {}

    def take_a() -> None:
        try:
            a.acquire()
            out["a"] = "held"
        except BaseException as exc:   # (said below)
            out["a"] = exc
    t = threading.Thread(target=take_a)
    t.start()
    try:
        came, _ = emulator.faults.wait_latencies(lambda n: n >= 1, timeout=30)
        assert came, "a never read the folder"
        b.acquire()
        emulator.faults.hurry()
        t.join(30)
        assert not t.is_alive()
        assert out["a"] == "held"   # (the listing blind: its documented window)
        said = [w for w in _warnings(caplog) if IGNORED in w]
        assert len(said) == 2, _warnings(caplog)   # one line each, no more
        assert all(w.startswith("drive:runs/exp: the run's lease is decided by the folder's "
                                "listing only") for w in said), said
        assert a._cas is None and b._cas is None   # (no CAS claimed: renewals swap nothing)
        # Each claim says it is held by the listing only (written again at the fallback): a
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
    finally:
        emulator.faults.hurry()
        t.join(30)
        a.release()
        b.release()


def test_the_probe_costs_one_request_per_start_refused_where_if_match_is_honoured(
        drive_env, emulator, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="trainer.lease")
    emulator.add_folder("runs/exp")
    folder = emulator.find("runs/exp")["id"]
    lease = _lease(tmp_path, "a")
    since = len(emulator.requests)
    lease.acquire()
    try:
        sent = emulator.requests[since:]
        [(named, status), (probed, refused)] = _patches(emulator, folder, since)
        assert (status, refused) == (200, 412) and probed == named   # the swap's etag again
        assert len(sent) == BEFORE + 1, [(r.method, r.path) for r in sent]
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
        assert lease._cas is not None
        # A renewal swaps once, and probes no more.
        since = len(emulator.requests)
        lease._write(lease._folder)
        assert [s for _, s in _patches(emulator, folder, since)] == [200]
        assert json.loads(emulator.read_bytes(lease._mine.id))["arbiter"] is True
    finally:
        lease.release()


def test_a_trainer_held_by_the_listing_only_is_obeyed_by_one_that_reaches_drive_directly(
        drive_env, emulator, proxy, monkeypatch, tmp_path):
    """a reaches Drive through a proxy that refuses every conditional write of the folder
    (attackint47's case: the listing decides for a), b directly (its swap lands: the arbiter
    names b). Both started at once, their listings blind to each other: both hold (the 0.1.x
    window). Once the listing shows both, a's claim is first: a holds by the listing; b's
    check dropped a's claim because it said ``arbiter`` and the arbiter named b, so both held
    for good. A claim held by the listing only now says ``arbiter: false`` (written again at
    once), and b stands back at its next check."""
    from _proxy import Reply

    emulator.add_folder("runs/exp")
    folder = emulator.find("runs/exp")["id"]
    refused = json.dumps({"error": {"code": 412, "message": "Precondition Failed", "errors": [
        {"domain": "global", "reason": "conditionNotMet", "message": "Precondition Failed",
         "locationType": "header", "location": "If-Match"}]}}).encode()
    proxy.on("PATCH", rf"/files/{folder}\?", lambda *_: Reply(
        412, {"Content-Type": "application/json", "Content-Length": str(len(refused))},
        [refused]), forward=False)
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
