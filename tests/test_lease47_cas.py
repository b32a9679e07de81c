"""lease47: the run's lease decided by a compare-and-swap on Drive (trainer.lease_cas): the run
folder's property ``trainer-lease`` names the claim that holds, written only by a
``files.patch`` naming the folder's etag as read (``If-Match``; Drive answers 412 where it
changed). Two trainers racing to take a stale claim over, their listings blind to each
other's claims (``lag_listing``) and both having read the same etag: exactly one holds. A
holder frozen while another takes its lease over: its next write is refused by Drive and it
pushes nothing more. A trainer killed between its claim's steps: the next one takes over at
stale time. RunLease as the trainer makes it (tokens as two machines), the real PyDrive2
stack against the emulator; every wait is on the emulator's count of held answers."""
from __future__ import annotations

import threading
import time

import pytest

from _lease_race import Held, arbiter as _arbiter, claims_on_drive as _claims_on_drive, \
    lease as _lease, patches as _patches, stale_old_claim as _stale_old_claim
from trainer.errors import LeaseHeldError, LeaseLostError
from trainer.lease_cas import NEVER

#: Renewals every 0.5 s: a claim is stale after 1.5 s (run_claims.stale_after).
PERIOD = 0.5


def test_two_trainers_racing_to_take_a_stale_claim_over_exactly_one_holds(drive_env, emulator,
                                                                          tmp_path):
    _stale_old_claim(emulator)
    folder = emulator.find("runs/exp")["id"]
    a, b = _lease(tmp_path, "a"), _lease(tmp_path, "b")
    # Neither listing shows the other's claim (the listing cannot decide), and a's read of
    # the folder is answered late: b reads the same etag meanwhile, and writes first.
    emulator.faults.lag_listing(created=20, titles="^trainer-lease-")
    with Held(emulator, folder, a) as race:
        try:
            b.acquire()
            out = race.go()
            assert isinstance(out, LeaseHeldError), out
            assert "holds its lease" in str(out)
            # Each one's probe (lease48, before its claim since lease49: an etag no folder
            # has, refused), then b's swap and a's swap: one etag.
            [a_probe, b_probe, (named, status), (named_too, refused)] = _patches(emulator,
                                                                                 folder)
            assert a_probe == b_probe == (NEVER, 412)
            assert named == named_too and (status, refused) == (200, 412)
            assert _arbiter(emulator) == f"2 {b.token} {b._mine.id}"
            assert _claims_on_drive(emulator) == [b.name]   # (a's removed, the stale one too)
            b.check()
        finally:
            b.release()


def test_a_holder_frozen_while_its_lease_is_taken_over_is_refused_by_drive(drive_env, emulator,
                                                                          tmp_path):
    h = _lease(tmp_path, "h", PERIOD)
    h.acquire()   # (not started: the test makes its renewals)
    folder = emulator.find("runs/exp")["id"]
    # h's next check: its listing answered only once t holds (h frozen past its lease).
    emulator.faults.latency(60, "GET", r"/files\?", times=1)
    out: dict = {}

    def renew() -> None:
        try:
            h.check()
            out["h"] = "renewed"
        except BaseException as exc:
            out["h"] = exc
    t = threading.Thread(target=renew)
    t.start()
    taker = _lease(tmp_path, "t", PERIOD)
    try:
        came, _ = emulator.faults.wait_latencies(lambda n: n >= 1, timeout=30)
        assert came, "h never listed"
        taker.acquire()   # h's claim, unrenewed, goes stale while watched: taken over
        emulator.faults.hurry()
        t.join(30)
        assert not t.is_alive()
        assert isinstance(out["h"], LeaseLostError), out["h"]
        assert "took the run's lease on drive:runs/exp over" in str(out["h"])
        # The renewal's swap named the etag of h's own last one: refused by Drive.
        assert _patches(emulator, folder)[-1][1] == 412
        assert _claims_on_drive(emulator) == [taker.name]   # (no second claim of h's)
        before = len(emulator.requests)
        with pytest.raises(LeaseLostError):
            h.guard()   # a push's commit: nothing more goes
        assert len(emulator.requests) == before
        taker.check()
        assert _arbiter(emulator) == f"2 {taker.token} {taker._mine.id}"
    finally:
        emulator.faults.hurry()
        t.join(30)
        taker.release()
        h.release()


#: A trainer in a process of its own, on "another machine" (its claim is judged by its
#: renewals, not by its pid), that takes the lease and then waits to be killed.
KILLED = """
import socket, sys, time
socket.gethostname = lambda: "other-machine"
from trainer.drive import DriveFolder
from trainer.lease import RunLease
RunLease(DriveFolder("drive:runs/exp", sys.argv[1]), period_s=float(sys.argv[2])).acquire()
time.sleep(60)
"""


@pytest.mark.parametrize("step", ["read", "swap"])
def test_a_trainer_killed_between_its_claims_steps_is_taken_over_at_stale_time(
        drive_env, emulator, tmp_path, step):
    """Killed (SIGKILL) after its claim file was made, before the arbiter named it (``read``:
    its read of the folder held), or after the arbiter named it (``swap``: its patch done,
    the answer held): the next trainer watches the claim go stale, then takes it over."""
    from _forkcli import cli_server

    emulator.add_folder("runs/exp")
    folder = emulator.find("runs/exp")["id"]
    if step == "read":
        emulator.faults.latency(60, "GET", rf"/files/{folder}\?.*fields=etag", times=1)
    else:
        emulator.faults.latency(60, "PATCH", rf"/files/{folder}\?.*fields=etag", times=1)
    # (forked with drivestage imported, tests/_forkcli.py: a fresh interpreter's start and
    # imports were a third of each case; the server's environment is this process's)
    proc = cli_server().popen([str(tmp_path / "k"), str(PERIOD)], script=KILLED)
    try:
        came, _ = emulator.faults.wait_latencies(lambda n: n >= 1, timeout=60)
        assert came, "the trainer never reached its claim's step"
    finally:
        proc.kill()
        proc.wait()
    emulator.faults.hurry()
    [left] = _claims_on_drive(emulator)
    assert _arbiter(emulator) == ("" if step == "read" else
                                  f"1 {left[len('trainer-lease-'):-5]} "
                                  f"{emulator.find('runs/exp/' + left)['id']}")
    nxt = _lease(tmp_path, "n", PERIOD)
    started = time.monotonic()
    nxt.acquire()
    try:
        assert time.monotonic() - started >= 1.0   # (watched: another machine's claim)
        assert _claims_on_drive(emulator) == [nxt.name]
        assert _arbiter(emulator) == f"2 {nxt.token} {nxt._mine.id}"
    finally:
        nxt.release()


def test_a_rival_slow_to_the_arbiter_listed_to_the_holder_meanwhile_costs_it_nothing(
        drive_env, emulator, tmp_path):
    """b holds (the arbiter names it) while a, whose claim Drive made first, still waits for
    its read of the arbiter; b's check lists a's claim now: a claim of a trainer that obeys
    the arbiter, which names b, so b holds on (it lost to that claim by the listing's order,
    and a then stood back too: neither held)."""
    _stale_old_claim(emulator)
    folder = emulator.find("runs/exp")["id"]
    a, b = _lease(tmp_path, "a"), _lease(tmp_path, "b")
    # a's claim left out of a's settle listing and both of b's; listed from then on.
    emulator.faults.lag_listing(created=3, titles=f"^trainer-lease-{a.token}")
    with Held(emulator, folder, a) as race:
        try:
            b.acquire()
            assert a.name in [c.entry.name for c in b._claims(b._folder)]   # (listed now)
            b._written_at -= b.period_s   # (its renewal due: the check lists, and writes)
            b.check()
            assert b.lost is None
            out = race.go()
            assert isinstance(out, LeaseHeldError), out
            b.check()
            assert _arbiter(emulator) == f"2 {b.token} {b._mine.id}"
        finally:
            b.release()


def test_two_take_overs_of_a_live_lease_at_once_one_holds_and_the_holder_stops(
        drive_env, emulator, tmp_path):
    """Two ``--take-over`` trainers of a live lease, blind to each other's claims and having
    read the same etag: the first swap takes it (over the holder's earlier generation), the
    second reads a live claim of its own generation and is refused; the old holder's next
    renewal is refused by Drive, and it stops."""
    h = _lease(tmp_path, "h")
    h.acquire()
    folder = emulator.find("runs/exp")["id"]
    a, b = _lease(tmp_path, "a"), _lease(tmp_path, "b")
    a.take_over = b.take_over = True
    emulator.faults.lag_listing(created=20, titles=f"^trainer-lease-({a.token}|{b.token})")
    with Held(emulator, folder, a) as race:
        try:
            b.acquire()
            out = race.go()
            assert isinstance(out, LeaseHeldError), out
            assert (a.generation, b.generation) == (2, 2)
            assert _arbiter(emulator) == f"2 {b.token} {b._mine.id}"
            h._written_at -= h.period_s   # (its renewal due)
            with pytest.raises(LeaseLostError):
                h.check()
            assert _patches(emulator, folder)[-1][1] == 412
        finally:
            b.release()
            h.release()


def test_a_renewal_whose_folder_changes_at_each_swap_holds_as_each_read_says(
        drive_env, emulator, tmp_path):
    """The folder changed otherwise between each read and swap (its etag is the folder's:
    other properties; on real Drive perhaps each child a push adds): each refusal is read
    again, the arbiter names this claim, and after MAX_SWAPS the renewal holds as the last
    read says; bounded, and no push fails for its own folder's churn."""
    from trainer.lease_cas import MAX_SWAPS

    h = _lease(tmp_path, "h")
    h.acquire()
    folder = emulator.find("runs/exp")["id"]
    emulator.faults.inject("PATCH", rf"/files/{folder}\?", status=412, reason="conditionNotMet",
                           times=MAX_SWAPS)
    emulator.clear_requests()
    h._written_at -= h.period_s   # (its renewal due)
    try:
        h.check()
        assert h.lost is None
        assert [s for _, s in _patches(emulator, folder)] == [412] * MAX_SWAPS
        reads = [r for r in emulator.requests if r.method == "GET" and
                 r.path.endswith(f"/files/{folder}") and "etag" in str(r.query.get("fields"))]
        assert len(reads) == MAX_SWAPS
        h._written_at -= h.period_s
        h.check()   # (the next renewal's swap names the etag last read: it lands)
        assert _patches(emulator, folder)[-1][1] == 200
    finally:
        h.release()
