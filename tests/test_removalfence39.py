"""removalfence39: a push's removals are each preceded by its guard (drivestage.push_fence).
A loop of removals (``--delete``, retention's deletions after the uploads and the room made
before them, the same-named copies a push replaces or repairs) asked the guard once, before
its first removal: a trainer whose run's lease another trainer took over meanwhile went on
removing files from the run's folder until the loop ended. Each removal request is now
preceded by a check (one per item, where the store removes them one by one; one per batch
request on Drive), and a check costs no request while the lease's last renewal proves it.
The guard refuses by what the emulator's request log (or the directory) shows, never by
time; the real PyDrive2 stack against the emulator."""
from __future__ import annotations

import os
from collections import Counter

import pytest

from _checkpoints import save
from _guarded_runs import REMOVALS, Refused, titles_in


def _removed_since(emulator, start: int) -> int:
    """Removals Drive carried out since the request log's ``start``."""
    return sum(1 for r in emulator.requests[start:] if r.kind in REMOVALS and r.status < 300)


def _refusing_after_one_removal(emulator) -> "tuple[list[int], object]":
    """A guard that refuses once Drive removed an item since it was first called (the
    lease lost after a removal), and the log's start it counts from."""
    start: list[int] = []

    def guard() -> None:
        if not start:
            start.append(len(emulator.requests))
        if _removed_since(emulator, start[0]):
            raise Refused("the lease is another trainer's now")
    return start, guard


def _no_batches(emulator) -> None:
    """The server refuses batch requests (a Drive look-alike): each item is removed by a
    request of its own, in a loop."""
    emulator.faults.inject("POST", "/batch", status=404, times=None)


def _live(emulator, folder: str) -> list[str]:
    return titles_in(emulator, folder, trashed=False)


def test_push_delete_on_drive_removes_nothing_more_once_the_guard_refuses(
        emulator, drive_env, local_state, tmp_path):
    from drivestage.upload_tree import push

    src = tmp_path / "run"
    src.mkdir()
    (src / "keep.txt").write_text("kept")
    push(str(src), "drive:runs/exp", jobs=1)
    for name in ("a.txt", "b.txt", "c.txt"):
        emulator.add_file(f"runs/exp/{name}", name.encode())
    _no_batches(emulator)
    start, guard = _refusing_after_one_removal(emulator)
    with pytest.raises(Refused):
        push(str(src), "drive:runs/exp", delete=True, jobs=1, guard=guard)
    assert _removed_since(emulator, start[0]) == 1
    assert len(_live(emulator, "runs/exp")) == 3   # keep.txt and two of the three


def test_push_delete_in_batches_sends_no_batch_more_once_the_guard_refuses(
        emulator, drive_env, local_state, tmp_path):
    """On Drive the deletes of a pass go 100 to a batch request: the guard is asked before
    each batch of deletes (its window one request, as at every commit point)."""
    from drivestage.upload_tree import push

    src = tmp_path / "run"
    src.mkdir()
    (src / "keep.txt").write_text("kept")
    push(str(src), "drive:runs/exp", jobs=1)
    for i in range(130):
        emulator.add_file(f"runs/exp/old_{i:03d}.txt", b"x")
    start, guard = _refusing_after_one_removal(emulator)
    with pytest.raises(Refused):
        push(str(src), "drive:runs/exp", delete=True, max_delete=200, jobs=1, guard=guard)
    assert _removed_since(emulator, start[0]) == 100
    assert len(_live(emulator, "runs/exp")) == 1 + 30


def test_push_delete_into_a_directory_removes_nothing_more_once_the_guard_refuses(
        local_state, tmp_path):
    from drivestage.upload_tree import push

    src, dest = tmp_path / "run", tmp_path / "nas" / "exp"
    src.mkdir()
    dest.mkdir(parents=True)
    (src / "keep.txt").write_text("kept")
    extra = ("a.txt", "b.txt", "c.txt")
    for name in extra:
        (dest / name).write_text(name)

    def guard() -> None:   # refuses once one of them is gone
        if not all((dest / name).exists() for name in extra):
            raise Refused("the lease is another trainer's now")

    with pytest.raises(Refused):
        push(str(src), str(dest), delete=True, delete_permanently=True, jobs=1, guard=guard)
    assert sum((dest / name).exists() for name in extra) == 2


def _checkpoints_on_drive(emulator, tmp_path, folder: str, epochs: int) -> "os.PathLike":
    """``epochs`` checkpoint pairs pushed to ``folder``, then only the next one kept
    locally (the run goes on: the older pairs are retention's to delete)."""
    from drivestage.upload_tree import push

    src = tmp_path / folder.replace("/", "_")
    for epoch in range(1, epochs + 1):
        save(str(src), f"epoch_{epoch:03d}", epoch, 1000.0 + epoch)
    push(str(src), f"drive:{folder}", jobs=1)
    for name in os.listdir(src):
        os.remove(src / name)
    save(str(src), f"epoch_{epochs + 1:03d}", epochs + 1, 1000.0 + epochs + 1)
    return src


def test_retention_after_the_uploads_removes_nothing_more_once_the_guard_refuses(
        emulator, drive_env, local_state, tmp_path):
    from drivestage.retention import RetentionPolicy
    from drivestage.upload_tree import push

    src = _checkpoints_on_drive(emulator, tmp_path, "runs/exp", 3)
    _no_batches(emulator)
    start, guard = _refusing_after_one_removal(emulator)
    with pytest.raises(Refused):
        push(str(src), "drive:runs/exp", RetentionPolicy(keep_last=1), jobs=1, guard=guard)
    assert _removed_since(emulator, start[0]) == 1
    # the new pair, and the three before it but for one checkpoint
    assert len(_live(emulator, "runs/exp")) == 2 + 2 * 3 - 1


def test_room_made_before_the_uploads_removes_nothing_more_once_the_guard_refuses(
        emulator_factory, local_state, monkeypatch, tmp_path):
    from drivestage.retention import RetentionPolicy
    from drivestage.upload_tree import push

    emulator = emulator_factory(quota_bytes=3 * 3200 + 1000)   # no room for a 4th pair
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emulator.url)
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
    src = _checkpoints_on_drive(emulator, tmp_path, "runs/exp", 3)
    _no_batches(emulator)
    start, guard = _refusing_after_one_removal(emulator)
    with pytest.raises(Refused):
        push(str(src), "drive:runs/exp", RetentionPolicy(keep_last=1), jobs=1, guard=guard)
    assert _removed_since(emulator, start[0]) == 1
    assert len(_live(emulator, "runs/exp")) == 2 * 3 - 1   # nothing sent: no room yet


@pytest.mark.parametrize("changed", [True, False], ids=["replaced", "repaired"])
def test_same_named_copies_go_no_further_once_the_guard_refuses(
        emulator, drive_env, local_state, tmp_path, changed):
    """Three copies of notes.txt on Drive (other machines' pushes): a push keeps one (the
    one it updated, or the newest, equal to the local file) and removes the others."""
    from drivestage.upload_tree import push

    for body in (b"one", b"two", b"three"):
        emulator.add_file("runs/exp/notes.txt", body)
    src = tmp_path / "run"
    src.mkdir()
    (src / "notes.txt").write_bytes(b"four" if changed else b"three")
    start, guard = _refusing_after_one_removal(emulator)
    with pytest.raises(Refused):
        push(str(src), "drive:runs/exp", jobs=1, guard=guard)
    assert _removed_since(emulator, start[0]) == 1
    assert _live(emulator, "runs/exp") == ["notes.txt", "notes.txt"]


def _kinds(records) -> Counter:
    return Counter(r.kind for r in records)


def _pushed(emulator, tmp_path, folder: str, guard) -> "tuple[Counter, dict]":
    """Three checkpoint pairs the run left behind and five other files, which retention
    and ``--delete`` remove, each by a request of its own: the push's requests, and what it
    removed."""
    from drivestage.retention import RetentionPolicy
    from drivestage.upload_tree import push

    src = _checkpoints_on_drive(emulator, tmp_path, folder, 3)
    for i in range(5):
        emulator.add_file(f"{folder}/old_{i}.txt", b"x")
    before = len(emulator.requests)
    result = push(str(src), f"drive:{folder}", RetentionPolicy(keep_last=1), delete=True,
                  jobs=1, guard=guard)
    return _kinds(emulator.requests[before:]), {"deleted": result.deleted,
                                                "pruned": sorted(d.name for d in result.pruned)}


def test_a_check_before_each_removal_costs_no_request_while_the_lease_is_renewed(
        emulator, drive_env, local_state, tmp_path):
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    _no_batches(emulator)
    plain, plain_gone = _pushed(emulator, tmp_path, "runs/plain", None)
    holder = tmp_path / "holder"
    holder.mkdir()
    lease = RunLease(DriveFolder("drive:leases/run", str(holder)), period_s=600.0)
    lease.acquire()
    calls: list[int] = []

    def guard() -> None:
        calls.append(1)
        lease.guard()

    try:
        leased, leased_gone = _pushed(emulator, tmp_path, "runs/leased", guard)
    finally:
        lease.release()
    assert leased_gone == plain_gone
    removals = sum(plain[k] for k in REMOVALS)
    assert removals == len(plain_gone["deleted"]) + len(plain_gone["pruned"]) >= 5 + 6
    assert len(calls) >= removals   # (each removal, and the uploads' commit points)
    assert lease.guard_checks == 0
    assert leased == plain, (plain, leased)
