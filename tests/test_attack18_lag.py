"""Attacks: a Drive whose files.list lags behind it, as Google's does (eventually consistent):
an item just created is missing from listings and searches by name for a while, one just
deleted is still listed, one just changed is listed as it was. The emulator's
``faults.lag_listing`` makes that happen by count of list answers, never by time.

What is asserted: the exact files (name -> md5s) left on Drive, that every checkpoint a push
sent stays vouched for by its sidecar, which checkpoint a resume takes, and that pushes and
deletions answered "already gone" neither loop nor fail."""
from __future__ import annotations

import dataclasses
import json
import os
import time

import pytest

from _checkpoints import md5, save
from _drive_state import live_md5s
from _signal_env import _fast  # noqa: F401  (an autouse fixture)

FOLDER = "Models/logs"
T0 = time.time() - 3600


def _store(emu):
    """A connection of its own: another process, or another machine."""
    from drivestage.drive import connect

    return connect(api_root=emu.url, token="test-token")


def _titles(store, path: str) -> list[str]:
    return sorted(e.name for e in store.list(store.resolve(path)))


# ------------------------------------------------------------------ the fault itself

def test_lag_listing_hides_new_items_shows_gone_and_old_ones_by_count(emulator, local_state):
    """Deterministic by list answers that would hold the item: a new file misses the next
    ``created``, a deleted one stays ``deleted`` more, a changed one is listed as it was for
    ``updated``; files.get always answers the truth. Nothing lags by default."""
    emu = emulator
    old = emu.add_file(f"{FOLDER}/old.bin", b"old")
    changed = emu.add_file(f"{FOLDER}/changed.bin", b"v1")
    store = _store(emu)
    assert _titles(store, FOLDER) == ["changed.bin", "old.bin"]
    emu.add_file(f"{FOLDER}/a.bin", b"a")
    assert _titles(store, FOLDER) == ["a.bin", "changed.bin", "old.bin"]  # no lag by default

    emu.faults.lag_listing(created=2, updated=1, deleted=3)
    emu.add_file(f"{FOLDER}/new.bin", b"new")
    emu.store.delete(old)
    emu.store.update_meta(changed, {"title": "renamed.bin"})
    assert _titles(store, FOLDER) == ["a.bin", "changed.bin", "old.bin"]
    assert _titles(store, FOLDER) == ["a.bin", "old.bin", "renamed.bin"]
    assert _titles(store, FOLDER) == ["a.bin", "new.bin", "old.bin", "renamed.bin"]
    assert _titles(store, FOLDER) == ["a.bin", "new.bin", "renamed.bin"]
    # A search by name lags the same way; a read by id never does.
    emu.add_file(f"{FOLDER}/b.bin", b"b")
    from drivestage.errors import NotFoundError
    for _ in range(2):
        with pytest.raises(NotFoundError):
            store.resolve(f"{FOLDER}/b.bin")
    entry = store.resolve(f"{FOLDER}/b.bin")
    assert store.stat(entry).md5 == md5(b"b")
    assert emu.faults.describe()["lag_listing"] == {"created": 2, "updated": 1, "deleted": 3,
                                                     "titles": None}
    emu.faults.clear()
    assert emu.faults.describe()["lag_listing"] is None


# ------------------------------------------------------------------ deletions of what is gone

def _seed_run(emu, epochs, src=None) -> dict:
    """Epoch checkpoints and their sidecars on Drive, as a push left them (name -> [md5])."""
    import tempfile

    out: dict = {}
    where = src or tempfile.mkdtemp()
    for e in epochs:
        files = save(where, f"epoch_{e:03d}", e, T0 + 10 * e)
        for name in files:
            with open(os.path.join(where, name), "rb") as fh:
                emu.add_file(f"{FOLDER}/{name}", fh.read())
        out.update(files)
    return out


def test_a_push_pruning_for_room_a_checkpoint_another_machine_deleted_goes_on(
        emulator_factory, local_state, tmp_path):
    """Drive full: the push (``--keep-last 1``) must prune before it sends epoch 5. Another
    machine's prune deleted epochs 1 and 2 a moment ago (and it sent files elsewhere), and
    the listing still shows them: deleting epoch 1 answers 404. The goal (epoch 1 gone) is
    reached, the push goes on and makes room with epoch 3 (epoch 4, the newest verified,
    goes only once epoch 5 is). Before: the push failed with
    "not found" and sent nothing, at every run while the listing lagged."""
    from drivestage.retention import RetentionPolicy
    from drivestage.upload_tree import push

    emu = emulator_factory(quota_bytes=4 * 3000 + 4 * 200 + 1400)
    _seed_run(emu, (1, 2, 3, 4))
    emu.faults.lag_listing(deleted=5)
    for stem in ("epoch_001", "epoch_002"):      # the other machine's prune
        for name in (f"{stem}.pt", f"{stem}.json"):
            emu.store.delete(emu.find(f"{FOLDER}/{name}")["id"])
    emu.add_file("Other/filler.bin", os.urandom(6000))        # and what it sent elsewhere
    src = tmp_path / "logs"
    mine = save(str(src), "epoch_005", 5, T0 + 50)
    result = push(str(src), FOLDER, RetentionPolicy(keep_last=1), store=_store(emu))
    assert sorted(result.uploaded) == ["epoch_005.json", "epoch_005.pt"]
    assert {"epoch_001.pt", "epoch_003.pt"} <= {d.name for d in result.pruned}
    # Epoch 4 waits: the retention after the upload reads what its plan keeps first, and
    # epoch 2, which that plan keeps, is gone (the lagging listing still showed it): none
    # of its deletions is made (test_push_kept25). The next push deletes it.
    assert "epoch_004.pt" not in {d.name for d in result.pruned}
    emu.faults.clear()
    again = push(str(src), FOLDER, RetentionPolicy(keep_last=1), store=_store(emu))
    assert [d.name for d in again.pruned if d.name.endswith(".pt")] == ["epoch_004.pt"]
    assert live_md5s(emu, FOLDER) == mine


# ------------------------------------------------------------------ pushes while the listing lags

@pytest.mark.parametrize("lag", [(1, 1, 1), (2, 0, 2), (3, 3, 0), (0, 2, 3)],
                         ids=lambda lag: "created{}-updated{}-deleted{}".format(*lag))
def test_pushes_one_after_another_keep_the_newest_verified_while_the_listing_lags(
        emulator, drive_env, local_state, tmp_path, lag):
    """A run saves an epoch, pushes (``--keep-last 2``, each push its own process), saves the
    next, pushes again, while Drive's listing lags. Each push may miss what the one before
    sent (and send it again: same-named copies) or still see what it deleted. After every
    push the newest epoch is on Drive with a sidecar that vouches for it, a resume from
    Drive takes it, and once the listing has caught up the next pushes leave exactly the two
    newest epochs, one copy each, after one more push."""
    from drivestage.retention import RetentionPolicy
    from drivestage.upload_tree import push
    from trainer.drive import DriveFolder, newest_of_current_run

    emu = emulator
    emu.add_file(f"{FOLDER}/results.csv", b"epoch\n")
    created, updated, deleted = lag
    emu.faults.lag_listing(created=created, updated=updated, deleted=deleted)
    src = tmp_path / "logs"
    sent: dict = {}
    policy = RetentionPolicy(keep_last=2)
    for epoch in range(1, 6):
        sent[epoch] = save(str(src), f"epoch_{epoch:03d}", epoch, T0 + 10 * epoch)
        push(str(src), FOLDER, policy, store=_store(emu))
        live = live_md5s(emu, FOLDER)
        for name, md5s in sent[epoch].items():
            assert set(md5s) <= set(live.get(name, [])), (epoch, name, live)
        side = [f for f in emu.files() if f["title"] == f"epoch_{epoch:03d}.json"
                and not f["labels"]["trashed"]]
        assert side and all(json.loads(emu.read_bytes(f["id"]))["md5"]
                            in live[f"epoch_{epoch:03d}.pt"] for f in side)
    emu.faults.lag_listing()
    for _ in range(4):   # what still lags is listed as it is after a few answers
        _titles(_store(emu), FOLDER)
    # The same-named copies the lag left go with the next push: every copy with the bytes
    # of a file the plan deletes (test_identical_copies_of_a_name_the_plan_deletes_go_in_one_push).
    expected = {**sent[4], **sent[5], "results.csv": [md5(b"epoch\n")]}
    push(str(src), FOLDER, policy, store=_store(emu))
    assert live_md5s(emu, FOLDER) == expected
    best = newest_of_current_run(DriveFolder(f"drive:{FOLDER}", str(tmp_path / "x"),
                                             policy).checkpoints())
    assert best is not None and best.name == "epoch_005.pt"


# ------------------------------------------------------------------ folders just made

def test_a_second_push_right_after_the_first_uses_the_folder_the_first_made(
        emulator, drive_env, local_state, tmp_path):
    """``drivestage push`` twice in a row (two processes) into a path that did not exist:
    the first makes ``Models/logs``; Drive's listing does not show it yet when the second
    looks. The second uses the same folders (this machine remembers the folders it made),
    so both epochs are in one folder, and a resume from Drive (a third process, the folders
    still not listed) finds the newest. Before: the second made ``Models`` and ``logs`` again,
    its checkpoint went into the copy, every later push and resume took the oldest folder
    (without it), and ``pull`` refused the path."""
    from drivestage.retention import RetentionPolicy
    from drivestage.upload_tree import push
    from trainer.drive import DriveFolder, newest_of_current_run

    emu = emulator
    emu.faults.lag_listing(created=4, titles=r"^(Models|logs)$")
    src = tmp_path / "logs"
    first = save(str(src), "epoch_001", 1, T0 + 10)
    push(str(src), FOLDER, RetentionPolicy(keep_last=2), store=_store(emu))
    second = save(str(src), "epoch_002", 2, T0 + 20)
    push(str(src), FOLDER, RetentionPolicy(keep_last=2), store=_store(emu))
    folders = sorted(f["title"] for f in emu.files() if f["mimeType"].endswith("folder"))
    assert folders == ["logs", "Models"] or folders == ["Models", "logs"]
    best = newest_of_current_run(DriveFolder(f"drive:{FOLDER}", str(tmp_path / "x"),
                                             RetentionPolicy(keep_last=2)).checkpoints())
    assert best is not None and best.name == "epoch_002.pt"
    emu.faults.clear()
    live = live_md5s(emu, FOLDER)
    assert {k: v for k, v in live.items() if k.startswith("epoch_002")} == second
    assert set(first) <= set(live)


# ------------------------------------------------------------------ a replacement, then a prune

def test_a_prune_right_after_a_replacement_keeps_the_new_copy_vouched_for(
        emulator, local_state, tmp_path):
    """A push replaces epoch 3 (saved again: a new file, its sidecar updated in place, the old
    copy deleted); another process's ``prune --keep-last 1`` follows while the listing still
    shows the old copy, not the new one, and the sidecar as it was. The plan keeps that old
    copy, which is gone: it is read first, and nothing is deleted (attack25). Once the
    listing has caught up, a prune deletes epochs 1 and 2. The new copy of epoch 3 and its
    sidecar stay throughout, the sidecar vouching for it; neither prune loops nor fails.
    (Before attack25 the first prune deleted epoch 1, and its answer was lost on the way;
    a batch's lost answer is test_attack23_drive's.)"""
    from drivestage.pruning import prune
    from drivestage.retention import RetentionPolicy
    from drivestage.upload_tree import push

    emu = emulator
    src = tmp_path / "logs"
    on_drive = _seed_run(emu, (1, 2, 3), src=str(src))
    again = save(str(src), "epoch_003", 3, T0 + 40)     # saved again: other bytes
    emu.faults.lag_listing(created=3, updated=3, deleted=3)
    push(str(src), FOLDER, RetentionPolicy(keep_last=3), store=_store(emu))
    prune(FOLDER, RetentionPolicy(keep_last=1), store=_store(emu))
    live = live_md5s(emu, FOLDER)
    assert live == {**on_drive, **again}
    side = json.loads(emu.read_bytes(emu.find(f"{FOLDER}/epoch_003.json")["id"]))
    assert [side["md5"]] == again["epoch_003.pt"]
    emu.faults.clear()    # the listing caught up
    prune(FOLDER, RetentionPolicy(keep_last=1), store=_store(emu))
    assert live_md5s(emu, FOLDER) == again


# ------------------------------------------------------------------ copies the lag left

def test_identical_copies_of_a_name_the_plan_deletes_go_in_one_push(
        emulator, local_state, tmp_path):
    """Pushes during a lag sent epochs 1 and 2 (checkpoint and sidecar) three times each:
    same bytes, same names. The next push (``--keep-last 1``, nothing lagging now) deletes
    every copy of the names the plan deletes, not one copy per push: each extra copy of a
    real checkpoint holds its size of the quota until it goes. Only copies with the very
    bytes count: a same-named copy with other bytes (another run's) is judged on its own."""
    from drivestage.pruning import view
    from drivestage.retention import RetentionPolicy
    from drivestage.state import Md5Cache
    from drivestage.upload_tree import push, walk

    emu = emulator
    src = tmp_path / "logs"
    for name in _seed_run(emu, (1, 2), src=str(src)):
        for _ in range(2):
            emu.add_file(f"{FOLDER}/{name}", (src / name).read_bytes())
    mine = save(str(src), "epoch_003", 3, T0 + 30)
    policy = RetentionPolicy(keep_last=1)
    # Which copies are twins: those of the picked copy's md5, never one with other bytes.
    store = _store(emu)
    listing: dict = {}
    for e in store.list(store.resolve(FOLDER)):
        listing.setdefault(e.name, []).append(e)
    odd = dict(listing)
    odd["epoch_002.pt"] = listing["epoch_002.pt"][:2] + [
        dataclasses.replace(listing["epoch_002.pt"][2], md5="0" * 32)]
    local = {f.name: f for f in walk(str(src)).files}
    twins = view(store, odd, local, policy, Md5Cache()).twins
    assert sorted(len(t) for t in twins.values()) == [1, 2, 2, 2]
    assert all(e.md5 != "0" * 32 for t in twins.values() for e in t)
    push(str(src), FOLDER, policy, store=store)
    assert live_md5s(emu, FOLDER) == mine
