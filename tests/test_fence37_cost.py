"""fence37: what the push's guard (drivestage.push_fence) costs when it is the run's lease
(trainer.lease.RunLease.guard). The guard is called at every commit point of every file
(before each upload, after each new copy, before removals), so a listing per call would be a
listing per file and more: a 1,000-file push paid a thousand listings. The lease answers from
its last renewal while that proves no trainer can have taken it over as stale (no request);
past that (this machine slept, the renewals failed) one check (a listing, a renewal) proves it
for ``sure_s`` more: a push adds one listing per ``sure_s`` at most, whatever its files.
Counted on the emulator's request log (a push with the lease against the same push without,
into another folder), the real PyDrive2 stack, real checkpoint files."""
from __future__ import annotations

import time
from collections import Counter

from _lease_pairs import request_kinds, save_pair


def _counted(lease, each=None) -> list[int]:
    """The guard's calls, counted (the lease's own guard, called through; ``each(lease,
    calls so far)`` first, where given)."""
    calls: list[int] = []
    guard = lease.guard

    def counted() -> None:
        calls.append(1)
        if each is not None:
            each(lease, len(calls))
        guard()
    lease.guard = counted
    return calls


def _pushed(emulator, tmp_path, name: str, pairs: int, logs: int, lease_period=None,
            each=None):
    """A run folder pushed once (made and marked), then ``pairs`` checkpoint pairs and
    ``logs`` small files pushed: the second push's requests, its result, the lease, the
    guard's calls (``each``: :func:`_counted`'s) and the push's seconds."""
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    local = tmp_path / name
    local.mkdir()
    folder = DriveFolder(f"drive:runs/{name}", str(local))
    save_pair(local, "epoch_000.pt", 0.5)
    folder.push()
    lease = calls = None
    if lease_period is not None:
        lease = RunLease(folder, period_s=lease_period)
        lease.acquire()
        folder.lease = lease
        calls = _counted(lease, each)
    for i in range(logs):
        (local / f"log_{i:03d}.txt").write_text(f"line {i}\n")
    for i in range(1, pairs + 1):
        save_pair(local, f"epoch_{i:03d}.pt", i)
    try:
        before = len(emulator.requests)
        began = time.monotonic()
        result = folder.push()
        took = time.monotonic() - began
        made = request_kinds(emulator.requests[before:])
    finally:
        if lease is not None:
            lease.release()
    return made, result, lease, calls, took


def test_a_push_of_many_files_adds_one_listing_while_the_lease_is_renewed(drive_env, emulator,
                                                                           tmp_path):
    plain, _, _, _, _ = _pushed(emulator, tmp_path, "plain", pairs=5, logs=50)
    # (600 s renewals: the acquire's proof holds for the whole push, as renewals keep it)
    leased, result, lease, calls, _ = _pushed(emulator, tmp_path, "leased", pairs=5, logs=50,
                                              lease_period=600.0)
    assert len(result.uploaded) == 60
    assert len(calls) >= 2 * 60   # before each upload, after each new copy, ...
    assert lease.guard_checks == 0
    # the push's own check at its start, and nothing for the guard's calls
    assert leased == plain + Counter(list=1), (plain, leased)


def test_a_push_outliving_its_proof_lists_once_per_sure_s_at_most(drive_env, emulator,
                                                                 tmp_path, monkeypatch):
    """No renewal thread (as if its renewals failed): the acquire's proof lasts ``sure_s``;
    past it a guard's call checks (a listing, the claim written again), and that proves it
    for ``sure_s`` more. The lease's clock is moved on by ``sure_s`` at every EVERY-th guard
    call (the test's event: the proof runs out there, whatever the push's own time): two
    checks each, the first renewing the claim (sent past the proof, its answer proves
    nothing: attackfence37), the next one listing again, proved by that renewal. (It ran on
    the wall clock at a 0.6 s period: idle, the push often ended within its proof and
    checked nothing; on a loaded machine it checked, and each check's claim write, two
    upload requests, broke the bound of one: lease52.)"""
    import trainer.lease
    import trainer.lease_write
    from trainer.lease_claims import boot_clock

    moved = [0.0]
    for module in (trainer.lease, trainer.lease_write):   # (the lease's clock, moved on)
        monkeypatch.setattr(module, "boot_clock", lambda: boot_clock() + moved[0])

    def each(lease, calls: int) -> None:
        if calls % EVERY == 0:
            moved[0] += lease.sure_s

    plain, _, _, _, _ = _pushed(emulator, tmp_path, "plain", pairs=30, logs=0)
    leased, result, lease, calls, _ = _pushed(emulator, tmp_path, "leased", pairs=30, logs=0,
                                              lease_period=600.0, each=each)
    assert len(result.uploaded) == 60
    assert len(calls) >= 2 * 60
    moves = len(calls) // EVERY   # (a guard call after the last one: 2 * 50 < 2 * 60)
    assert lease.guard_checks == 2 * moves == 4, (lease.guard_checks, len(calls))
    # a listing for the push's check and one per guard check; the claim written once a move,
    # two upload requests each (a resumable update: its session's start, its bytes)
    assert leased["list"] == plain["list"] + 1 + lease.guard_checks, (plain, leased)
    assert leased["upload"] == plain["upload"] + 2 * moves, (plain, leased)


#: The guard's calls between two moves of the lease's clock past its proof.
EVERY = 50
