"""guards40: while the run's lease is neither held nor lost (not taken at the start: Drive was
down; and Drive silent, or refusing the claim's write, when the push's guard tried again),
a push sends new files that replace nothing, and no removal or update in place: it stops
there with one line (:class:`trainer.errors.LeaseNotTakenError`), its own new copies that no
sidecar vouches for removed (the push's stop path, :mod:`drivestage.push_fence`); the next
push, Drive answering, takes the lease first. lease39's guard let the request after a failed
try through: a retention removal, a file updated in place, in a folder another trainer may
hold. Events ordered by the emulator's faults and a guard that makes Drive silent for its
own try, never by time; the real PyDrive2 stack against the emulator."""
from __future__ import annotations

import pytest

from _lease_pairs import on_drive, save_pair
from test_lease39_pending_guard import DEST, _claims, _pending

NOT_TAKEN = ("drive:runs/exp: the run's lease is not taken yet (Drive did not answer this "
             "trainer's tries to take it); until it is, nothing there is replaced or removed, "
             "so the send stopped at its first replacement or removal (new files may have "
             "gone); the next push tries again")


def test_retention_removes_nothing_while_the_claim_cannot_be_written(
        drive_env, emulator, tmp_path, fast_retries, monkeypatch):
    """Drive answers reads and removals but refuses uploads (the claim's write): the push's
    start and its guard each try for the lease and fail; retention (keep_last 1) of the
    pairs Drive holds removes none of them."""
    from trainer.errors import LeaseNotTakenError
    from trainer.lease import release_all

    from trainer.drive import DriveFolder

    for epoch in (1, 2, 3):
        save_pair(tmp_path / "first", f"epoch_00{epoch}.pt", epoch)
    DriveFolder(DEST, str(tmp_path / "first")).push()   # (before the outage, no lease)
    before = on_drive(emulator)
    assert len(before) == 6
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "2")   # (each try's write fails)
    first, stop = _pending(emulator, tmp_path, "drive.keep_last=1", "drive.keep_best=0")
    try:
        with pytest.raises(LeaseNotTakenError) as caught:
            first.push()
        assert str(caught.value) == NOT_TAKEN
        assert on_drive(emulator) == before
        assert first.lease is not None and first.lease.pending
        assert not stop.is_set()
        assert _claims(emulator) == []
    finally:
        release_all()


def _silent_during(emulator, call):
    """``call`` (the lease's guard, or its check) with Drive silent while it runs (every
    request answered 503) and back once it returned or raised: the request it let through
    reaches Drive."""
    def silent() -> None:
        emulator.faults.inject(status=503, times=None)
        try:
            call()
        finally:
            emulator.faults.clear()
    return silent


def test_no_update_in_place_or_removal_goes_after_a_try_that_found_drive_silent(
        drive_env, emulator, tmp_path, fast_retries):
    """results.csv changed (an update in place) and a same-named old copy of notes.txt (a
    removal): neither goes; the new checkpoint pair sent before them is the push's own (no
    sidecar yet at the stop) and removed; nothing else changes on Drive."""
    from drivestage.upload_tree import push
    from trainer.errors import LeaseNotTakenError
    from trainer.lease import release_all

    src = tmp_path / "first"
    src.mkdir()
    (src / "results.csv").write_text("epoch\n1\n")
    push(str(src), DEST, jobs=1)
    emulator.add_file("runs/exp/notes.txt", b"old")
    emulator.add_file("runs/exp/notes.txt", b"new")
    (src / "notes.txt").write_bytes(b"new")
    (src / "results.csv").write_text("epoch\n1\n2\n")
    save_pair(src, "epoch_002.pt", 2)
    live = sorted((f["title"], f.get("md5Checksum")) for f in emulator.files()
                  if not f["labels"]["trashed"])
    first, stop = _pending(emulator, tmp_path)
    emulator.faults.clear()
    try:
        with pytest.raises(LeaseNotTakenError):
            push(str(src), DEST, jobs=1, guard=_silent_during(emulator, first.lease.guard))
        assert sorted((f["title"], f.get("md5Checksum")) for f in emulator.files()
                      if not f["labels"]["trashed"]) == live
        assert first.lease.pending and not stop.is_set()
    finally:
        release_all()


def test_new_files_that_replace_nothing_go_while_the_lease_is_not_taken(
        drive_env, emulator, tmp_path, fast_retries):
    """Only new files: the pair and a log go, each verified; the lease is still not taken."""
    from drivestage.upload_tree import push
    from trainer.lease import release_all

    src = tmp_path / "first"
    ours = save_pair(src, "epoch_001.pt", 1)
    (src / "log.txt").write_text("step 1\n")
    first, stop = _pending(emulator, tmp_path)
    emulator.faults.clear()
    try:
        result = push(str(src), DEST, jobs=1, guard=_silent_during(emulator, first.lease.guard))
        assert sorted(result.uploaded) == ["epoch_001.json", "epoch_001.pt", "log.txt"]
        assert {n: m for n, ms in on_drive(emulator).items() for m in ms} == ours
        assert first.lease.pending and _claims(emulator) == []
    finally:
        release_all()


def test_a_pair_sent_alone_goes_while_the_lease_is_not_taken(
        drive_env, emulator, tmp_path, fast_retries):
    """A stop's save sent outside a push (``send_alone``): its new pair goes, as a push's new
    files do; the lease is still not taken (Drive silent at each of the lease's tries: its
    check before the send, and those of its guard)."""
    from trainer.lease import release_all

    ours = save_pair(tmp_path / "stop", "epoch_001.pt", 1)
    first, stop = _pending(emulator, tmp_path)
    emulator.faults.clear()
    lease = first.lease
    lease.check = _silent_during(emulator, lease.check)
    try:
        first.send_alone([str(tmp_path / "stop" / "epoch_001.pt"),
                          str(tmp_path / "stop" / "epoch_001.json")])
        assert {n: m for n, ms in on_drive(emulator).items() for m in ms} == ours
        assert lease.pending and _claims(emulator) == []
    finally:
        release_all()


def test_a_spent_first_seen_mark_is_cleared_while_the_lease_is_not_taken(
        drive_env, emulator, tmp_path, fast_retries):
    """A sidecar's first-seen mark whose work is done (its checkpoint is there) is cleared
    by the push's retention pass: a mark's property, neither bytes nor a removal, goes as a
    new file does; nothing stops the push."""
    from drivestage.first_seen import SEEN_MARK
    from drivestage.retention import RetentionPolicy
    from drivestage.upload_tree import push
    from trainer.lease import release_all

    src = tmp_path / "first"
    save_pair(src, "epoch_001.pt", 1)
    push(str(src), DEST, jobs=1)
    side = emulator.find("runs/exp/epoch_001.json")["id"]
    emulator.set_properties(side, [{"key": SEEN_MARK, "value": "1000.0",
                                    "visibility": "PUBLIC"}])
    first, stop = _pending(emulator, tmp_path)
    emulator.faults.clear()
    try:
        push(str(src), DEST, RetentionPolicy(keep_last=5), jobs=1,
             guard=_silent_during(emulator, first.lease.guard))
        assert not [p for p in emulator.store.get(side).get("properties") or []
                    if p["key"] == SEEN_MARK]
        assert first.lease.pending
    finally:
        release_all()
