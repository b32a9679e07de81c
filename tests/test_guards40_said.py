"""guards40: a push whose guard refuses in the middle of a pass of removals says what went
before it. ``RemoteStore.delete_many`` raised the guard's error and lost the outcomes of
the batches (or lone removals) already done: their "deleted …" lines were never printed,
and the user could not tell what had gone. Now every removal Drive carried out before the
guard refused has its line, and the push still ends with the guard's error. The guard
refuses by what the emulator's request log shows, never by time; the real PyDrive2 stack
against the emulator."""
from __future__ import annotations

import logging
import os
import re

import pytest

from _checkpoints import save
from _guarded_runs import REMOVALS, Refused, titles_in


def _refusing_after_one_removal(emulator):
    start: list[int] = []

    def guard() -> None:
        if not start:
            start.append(len(emulator.requests))
        if any(r.kind in REMOVALS and r.status < 300 for r in emulator.requests[start[0]:]):
            raise Refused("the lease is another trainer's now")
    return guard


def _trashed(emulator, folder: str) -> list[str]:
    return titles_in(emulator, folder, trashed=True)


def _lines(caplog, logger: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger]


def test_the_deletes_of_the_batches_done_are_said_when_the_guard_refuses(
        emulator, drive_env, local_state, tmp_path, caplog):
    from drivestage.upload_tree import push

    src = tmp_path / "run"
    src.mkdir()
    (src / "keep.txt").write_text("kept")
    push(str(src), "drive:runs/exp", jobs=1)
    for i in range(130):
        emulator.add_file(f"runs/exp/old_{i:03d}.txt", b"x")
    caplog.set_level(logging.INFO, logger="drivestage")
    with pytest.raises(Refused):
        push(str(src), "drive:runs/exp", delete=True, max_delete=200, jobs=1,
             guard=_refusing_after_one_removal(emulator))
    gone = _trashed(emulator, "runs/exp")
    assert len(gone) == 100
    said = [line for line in _lines(caplog, "drivestage.extra") if line.startswith("deleted ")]
    assert said == [f"deleted {name} (not in the local tree) to the trash" for name in gone]


def test_a_lone_removal_done_is_said_when_the_guard_refuses(
        emulator, drive_env, local_state, tmp_path, caplog):
    """No batches (a Drive look-alike): one request per item."""
    from drivestage.upload_tree import push

    src = tmp_path / "run"
    src.mkdir()
    (src / "keep.txt").write_text("kept")
    push(str(src), "drive:runs/exp", jobs=1)
    for name in ("a.txt", "b.txt", "c.txt"):
        emulator.add_file(f"runs/exp/{name}", name.encode())
    emulator.faults.inject("POST", "/batch", status=404, times=None)
    caplog.set_level(logging.INFO, logger="drivestage")
    with pytest.raises(Refused):
        push(str(src), "drive:runs/exp", delete=True, jobs=1,
             guard=_refusing_after_one_removal(emulator))
    gone = _trashed(emulator, "runs/exp")
    assert len(gone) == 1
    said = [line for line in _lines(caplog, "drivestage.extra") if line.startswith("deleted ")]
    assert said == [f"deleted {gone[0]} (not in the local tree) to the trash"]


def test_retention_says_the_checkpoint_it_deleted_before_the_guard_refused(
        emulator, drive_env, local_state, tmp_path, caplog):
    from drivestage.retention import RetentionPolicy
    from drivestage.upload_tree import push

    src = tmp_path / "run"
    for epoch in (1, 2, 3):
        save(str(src), f"epoch_{epoch:03d}", epoch, 1000.0 + epoch)
    push(str(src), "drive:runs/exp", jobs=1)
    for name in os.listdir(src):
        os.remove(src / name)
    save(str(src), "epoch_004", 4, 1004.0)
    emulator.faults.inject("POST", "/batch", status=404, times=None)
    caplog.set_level(logging.INFO, logger="drivestage")
    before = {f["id"] for f in emulator.files()}
    with pytest.raises(Refused):
        push(str(src), "drive:runs/exp", RetentionPolicy(keep_last=1), jobs=1,
             guard=_refusing_after_one_removal(emulator))
    gone = [f["title"] for f in emulator.files() if f["id"] in before and (
        f["labels"]["trashed"])] + [n for n in ("epoch_001.pt", "epoch_002.pt", "epoch_003.pt")
                                    if not emulator.find(f"runs/exp/{n}")]
    assert len(gone) == 1
    said = [line for line in _lines(caplog, "drivestage.pruning") if line.startswith("deleted ")]
    assert said == [f"deleted {gone[0]} (2.9 KiB)"]


def test_an_item_not_tried_after_a_failed_removal_is_not_said_deleted(
        emulator, drive_env, local_state, tmp_path, caplog, monkeypatch):
    """No batches: each item its own trash; b.txt's fails (Drive refuses it, 500 at every
    retry). The pass stops there: c.txt, checked but never sent, was said "deleted" (its
    check's outcome stood for its removal's)."""
    from drivestage.errors import DriveStageError
    from drivestage.upload_tree import push

    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "2")
    src = tmp_path / "run"
    src.mkdir()
    (src / "keep.txt").write_text("kept")
    push(str(src), "drive:runs/exp", jobs=1)
    ids = {name: emulator.add_file(f"runs/exp/{name}", name.encode())
           for name in ("a.txt", "b.txt", "c.txt")}
    emulator.faults.inject("POST", "/batch", status=404, times=None)
    emulator.faults.inject("POST", rf"/files/{ids['b.txt']}/trash", status=500, times=None)
    caplog.set_level(logging.INFO, logger="drivestage")
    with pytest.raises(DriveStageError, match="b.txt"):
        push(str(src), "drive:runs/exp", delete=True, jobs=1)
    assert _trashed(emulator, "runs/exp") == ["a.txt"]
    said = [line for line in _lines(caplog, "drivestage.extra") if line.startswith("deleted ")]
    assert said == ["deleted a.txt (not in the local tree) to the trash"]


@pytest.mark.parametrize("changed", [True, False], ids=["replaced", "repaired"])
def test_same_named_copies_left_when_the_guard_refuses_are_said(
        emulator, drive_env, local_state, tmp_path, caplog, changed):
    """Three copies of notes.txt on Drive: the push keeps one and says it "removed the
    others" before removing them; the guard refuses after the first went: the one left is
    named, by id."""
    from drivestage.upload_tree import push

    ids = [emulator.add_file("runs/exp/notes.txt", body) for body in (b"one", b"two", b"three")]
    emulator.faults.inject("POST", "/batch", status=404, times=None)
    src = tmp_path / "run"
    src.mkdir()
    (src / "notes.txt").write_bytes(b"four" if changed else b"three")
    caplog.set_level(logging.INFO, logger="drivestage")
    with pytest.raises(Refused):
        push(str(src), "drive:runs/exp", jobs=1, guard=_refusing_after_one_removal(emulator))
    lines = [r.getMessage() for r in caplog.records if r.name == "drivestage.old_copies"]
    kept = re.search(r"kept (?:the one just uploaded \()?([\w-]+)", lines[0]).group(1)
    live = {f["id"] for f in emulator.files() if not f["labels"]["trashed"]}
    stays = [i for i in ids if i in live and i != kept]
    assert len(stays) == 1 and len(live & set(ids) - {kept}) == 1
    assert lines == [lines[0], f"notes.txt: 1 of those copies was not removed (ids {stays[0]}): "
                     "the push stopped first"], lines
