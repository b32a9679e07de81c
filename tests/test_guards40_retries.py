"""guards40: a removal request sent again (its first try failed before Drive did it: a 503, a
connection cut) goes after a guard check, as its first try did. The guard was asked before
a removal's first try only: the transport's retries (a lone delete's, a batch's calls sent
again in a new batch request, the batch request itself sent again, take_out's update) went
without it, so a lease lost between the try and its retry still removed. The guard refuses
by what the emulator's request log shows (a removal was tried), never by time; the real
PyDrive2 stack against the emulator."""
from __future__ import annotations

from collections import Counter

import pytest
from _guarded_runs import REMOVALS, Refused, run_with_extras, titles_in


def _refusing_once_a_removal_was_tried(emulator) -> "tuple[list[int], object]":
    """A guard that refuses once Drive was sent a removal (whatever its answer) since the
    guard was first called: the lease lost between a removal's try and its retry."""
    start: list[int] = []

    def guard() -> None:
        if not start:
            start.append(len(emulator.requests))
        if any(_removes(r) for r in emulator.requests[start[0]:]):
            raise Refused("the lease is another trainer's now")
    return start, guard


def _removed_since(emulator, start: int) -> int:
    return sum(1 for r in emulator.requests[start:] if r.status < 300 and _removes(r))


def _removes(r) -> bool:
    """A request that removes: a delete, a trash, a parent taken away."""
    return r.kind in REMOVALS or (r.kind in ("files.update", "files.patch")
                                  and "removeParents" in r.query)


def _live(emulator, folder: str) -> list[str]:
    return titles_in(emulator, folder, trashed=False)


def _with_extras(emulator, tmp_path, names):
    return run_with_extras(emulator, tmp_path, names)


def test_a_lone_delete_retried_after_a_503_is_guarded_again(
        emulator, drive_env, local_state, tmp_path):
    """No batches (a Drive look-alike): each item its own delete; the first answered 503
    before Drive did it, and the lease is lost before its retry."""
    from drivestage.upload_tree import push

    src = _with_extras(emulator, tmp_path, ("a.txt", "b.txt", "c.txt"))
    emulator.faults.inject("POST", "/batch", status=404, times=None)
    emulator.faults.inject("POST", r"/trash", status=503, times=1)   # (--delete: the trash)
    start, guard = _refusing_once_a_removal_was_tried(emulator)
    with pytest.raises(Refused):
        push(str(src), "drive:runs/exp", delete=True, jobs=1, guard=guard)
    assert _removed_since(emulator, start[0]) == 0
    assert _live(emulator, "runs/exp") == ["a.txt", "b.txt", "c.txt", "keep.txt"]


def test_calls_of_a_batch_sent_again_are_guarded_again(
        emulator, drive_env, local_state, tmp_path):
    """One delete call of a batch answered 503 (Drive did the other two): sent again alone in
    a new batch request, which waits for the guard."""
    from drivestage.upload_tree import push

    src = _with_extras(emulator, tmp_path, ("a.txt", "b.txt", "c.txt"))
    emulator.faults.inject("POST", r"/trash", status=503, times=1)
    start, guard = _refusing_once_a_removal_was_tried(emulator)
    with pytest.raises(Refused):
        push(str(src), "drive:runs/exp", delete=True, jobs=1, guard=guard)
    assert _removed_since(emulator, start[0]) == 2
    assert len(_live(emulator, "runs/exp")) == 2   # keep.txt and the one answered 503


def test_a_batch_request_sent_again_is_guarded_again(
        emulator, drive_env, local_state, tmp_path):
    """The batch request of the deletes cut before Drive read it (a reset): sent again whole,
    after the guard."""
    from drivestage.upload_tree import push

    src = _with_extras(emulator, tmp_path, ("a.txt", "b.txt", "c.txt"))
    start = len(emulator.requests)
    tried: list[int] = []

    def guard() -> None:   # (lost once the deletes' batch request was sent)
        if tried:
            raise Refused("the lease is another trainer's now")
        if any(r.kind == "files.get" and r.in_batch for r in emulator.requests[start:]):
            tried.append(1)   # (the batch request after the checks' is the deletes')
            emulator.faults.inject("POST", "/batch", status=503, times=1)
    with pytest.raises(Refused):
        push(str(src), "drive:runs/exp", delete=True, jobs=1, guard=guard)
    assert _removed_since(emulator, start) == 0
    assert _live(emulator, "runs/exp") == ["a.txt", "b.txt", "c.txt", "keep.txt"]


def test_an_old_copy_taken_out_again_is_guarded_again(
        emulator, drive_env, local_state, tmp_path):
    """Two same-named copies on Drive (other machines' pushes): the push keeps the newest
    (equal to the local file) and removes the other; that delete answered 503 once."""
    from drivestage.upload_tree import push

    for body in (b"one", b"two"):
        emulator.add_file("runs/exp/notes.txt", body)
    src = tmp_path / "run"
    src.mkdir()
    (src / "notes.txt").write_bytes(b"two")
    emulator.faults.inject("DELETE", r"/files/", status=503, times=1)
    start, guard = _refusing_once_a_removal_was_tried(emulator)
    with pytest.raises(Refused):
        push(str(src), "drive:runs/exp", jobs=1, guard=guard)
    assert _removed_since(emulator, start[0]) == 0
    assert _live(emulator, "runs/exp") == ["notes.txt", "notes.txt"]


def test_a_guard_before_each_retry_costs_no_request_more(
        emulator, drive_env, local_state, tmp_path):
    """The same push (three --delete removals in a batch, one call answered 503 once) with
    and without a lease's guard: the same requests; the guard asked once more (the retry's
    batch request), with no listing (its renewal proves the lease)."""
    from drivestage.upload_tree import push
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    def pushed(folder: str, guard) -> Counter:
        src = tmp_path / folder
        src.mkdir()
        (src / "keep.txt").write_text("kept")
        push(str(src), f"drive:{folder}", jobs=1)
        for name in ("a.txt", "b.txt", "c.txt"):
            emulator.add_file(f"{folder}/{name}", name.encode())
        emulator.faults.inject("POST", r"/trash", status=503, times=1)
        before = len(emulator.requests)
        push(str(src), f"drive:{folder}", delete=True, jobs=1, guard=guard)
        assert _live(emulator, folder) == ["keep.txt"]
        return Counter(r.kind for r in emulator.requests[before:])

    plain = pushed("plain", None)
    holder = tmp_path / "holder"
    holder.mkdir()
    lease = RunLease(DriveFolder("drive:leases/run", str(holder)), period_s=600.0)
    lease.acquire()
    calls: list[int] = []

    def guard() -> None:
        calls.append(1)
        lease.guard()
    try:
        leased = pushed("leased", guard)
    finally:
        lease.release()
    assert leased == plain, (plain, leased)
    assert plain["batch"] == 3   # the checks, the deletes, the one sent again
    assert len(calls) == 3       # the pass's start, each batch request that removes
    assert lease.guard_checks == 0


def test_an_old_copy_also_in_another_folder_taken_out_again_is_guarded_again(
        emulator, drive_env, local_state, tmp_path):
    """The older copy is also in Archive (a second parent kept from before 2020): only the
    run's folder loses it (files.update removeParents), and that update answered 503 once."""
    from drivestage.upload_tree import push

    emulator.add_folder("Archive")
    old = emulator.add_file("runs/exp/notes.txt", b"one")
    emulator.add_file("runs/exp/notes.txt", b"two")
    rec = emulator.store.get(old)
    emulator.store.update(old, parents=[*rec["parents"], emulator.find("Archive")["id"]])
    src = tmp_path / "run"
    src.mkdir()
    (src / "notes.txt").write_bytes(b"two")
    emulator.faults.inject(None, r"removeParents", status=503, times=1)
    start, guard = _refusing_once_a_removal_was_tried(emulator)
    with pytest.raises(Refused):
        push(str(src), "drive:runs/exp", jobs=1, guard=guard)
    assert _removed_since(emulator, start[0]) == 0
    assert _live(emulator, "runs/exp") == ["notes.txt", "notes.txt"]
    assert len(emulator.store.get(old)["parents"]) == 2
