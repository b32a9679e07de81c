"""lag36: ``push ./runs drive:runs --delete`` must not remove a Drive folder whose contents
changed since the plan listed it, even where Drive's listing does not show the change that
marks it a run folder yet.

``runs/exp9`` (made by hand, notes in it) is not in this machine's ``./runs``: the push plans
to remove it whole once its files are sent. Meanwhile a run on another machine begins in it
through a Drive mount: its ``.drivestage/run-folder`` mark and its first checkpoint pair sync
in. Drive's listing is eventually consistent (the emulator's ``lag_listing``, here on the
mark's two names only): the check just before the removal (:mod:`drivestage.drive.
marks_below`) lists exp9 and does not see the mark, but does see the new checkpoint. Before,
exp9 was trashed (``--delete-permanently``: deleted) with the run's checkpoint. Now a folder
in which an item came, or changed (md5, modified date), since the plan's listing is left,
said in one line; the next push decides again.

Through the real stack (the CLI in-process, PyDrive2, googleapiclient, the emulator over
HTTP, a proxy that lets the other machine act when the push's first upload starts). No
sleeps."""
from __future__ import annotations

import hashlib
import os
import time

import pytest

from _cli import run, warning_lines
from _drive_state import live_md5s
from _envs import env_drive  # noqa: F401  (a fixture)
from _liar import liar_env  # noqa: F401  (fixtures)
from _proxy import when_sending
from drivestage.drive import marks_below


def _runs(tmp_path):
    """This machine's ./runs: exp2 with enough files that --delete may remove a folder."""
    runs = tmp_path / "runs"
    (runs / "exp2").mkdir(parents=True)
    for i in range(12):
        (runs / "exp2" / f"log{i}.txt").write_text(f"{i}\n")
    return runs


def _pushed(emulator) -> dict:
    """What the push itself leaves in runs/exp2."""
    return {f"log{i}.txt": [hashlib.md5(f"{i}\n".encode()).hexdigest()] for i in range(12)}


@pytest.mark.parametrize("flag", ["--delete", "--delete-permanently"])
def test_a_run_a_mount_began_behind_a_lagging_listing_keeps_its_folder(
        emulator, proxy, liar_env, tmp_path, flag):
    emulator.add_file("runs/exp9/notes.txt", b"n\n")

    def mount_syncs():
        # Drive lists the mark (and its folder) only some answers later: the re-check's
        # listings do not see it; the checkpoint pair, synced with it, is listed at once.
        emulator.faults.lag_listing(created=5, titles=r"^(\.drivestage|run-folder)$")
        emulator.add_file("runs/exp9/.drivestage/run-folder", b"")
        emulator.add_file("runs/exp9/epoch_001.pt", os.urandom(3000))
        emulator.add_file("runs/exp9/epoch_001.json", b'{"epoch": 1}\n')
        return live_md5s(emulator, "runs/exp9")
    synced = when_sending(proxy, mount_syncs)

    code, _, err = run("push", str(_runs(tmp_path)), "drive:runs", flag)

    assert code == 0, err
    assert synced and set(synced[0]) == {"notes.txt", ".drivestage", "epoch_001.pt",
                                         "epoch_001.json"}
    assert live_md5s(emulator, "runs/exp9") == synced[0], err
    assert set(live_md5s(emulator, "runs/exp9/.drivestage")) == {"run-folder"}
    assert set(live_md5s(emulator, "runs")) == {"exp9", "exp2"}, err
    assert live_md5s(emulator, "runs/exp2") == _pushed(emulator)
    assert warning_lines(err, "runs/exp9") == [
        "WARNING drivestage.drive.store: drive:runs/exp9 was not deleted: "
        "drive:runs/exp9/epoch_001.pt came in since it was listed (someone writes there); "
        "the next push decides again"], err


def _given_other_content(emulator, rel: str) -> None:
    """Another machine wrote new bytes over ``rel`` (Drive: a new md5 and modified date)."""
    emulator.store.update(emulator.find(rel)["id"], md5=hashlib.md5(b"new").hexdigest(),
                          modified=time.time() + 5)


def _touched(emulator, rel: str) -> None:
    """Another machine touched ``rel`` (its modified date moved, its bytes the same)."""
    emulator.store.update(emulator.find(rel)["id"], modified=time.time() + 5)


@pytest.mark.parametrize("change,said", [
    (lambda emu: emu.add_file("runs/old/a/b/epoch_001.pt", os.urandom(500)),
     "drive:runs/old/a/b/epoch_001.pt came in"),
    (lambda emu: emu.add_folder("runs/old/a/new"), "drive:runs/old/a/new came in"),
    (lambda emu: _given_other_content(emu, "runs/old/a/b/last.pt"),
     "drive:runs/old/a/b/last.pt was given other content"),
    (lambda emu: _touched(emu, "runs/old/notes.txt"), "drive:runs/old/notes.txt was modified"),
], ids=["file-deep", "folder", "md5", "modified"])
def test_a_folder_whose_contents_changed_since_the_plan_is_left(
        emulator, proxy, liar_env, tmp_path, change, said):
    """No mark at all: the other machine only writes inside ``runs/old`` (at any depth the
    re-check reads). ``old`` is left whole, said once; the rest is pushed."""
    emulator.add_file("runs/old/notes.txt", b"n\n")
    emulator.add_file("runs/old/a/b/last.pt", b"0" * 100)
    done = when_sending(proxy, lambda: change(emulator))
    before = {rel: live_md5s(emulator, rel) for rel in ("runs/old", "runs/old/a")}

    code, _, err = run("push", str(_runs(tmp_path)), "drive:runs", "--delete")

    assert code == 0, err
    assert done
    assert set(live_md5s(emulator, "runs")) == {"old", "exp2"}, err
    assert live_md5s(emulator, "runs/old") == before["runs/old"]
    assert set(live_md5s(emulator, "runs/old/a")) == set(before["runs/old/a"]) | (
        {"new"} if "a/new" in said else set())
    assert set(live_md5s(emulator, "runs/old/a/b")) == {"last.pt"} | (
        {"epoch_001.pt"} if "epoch" in said else set())
    assert warning_lines(err, "runs/old") == [
        f"WARNING drivestage.drive.store: drive:runs/old was not deleted: {said} since it "
        "was listed (someone writes there); the next push decides again"], err


def test_a_folder_nobody_wrote_in_still_goes_at_one_listing_a_folder(emulator, env_drive,
                                                                      tmp_path):
    """The guard costs no request: ``runs/old`` (a/b nested, files at each depth) goes as
    planned; just before, each of its three folders is listed once (all children, with the
    fields the check reads), nothing more."""
    for rel in ("runs/old/x.txt", "runs/old/a/y.txt", "runs/old/a/b/z.txt"):
        emulator.add_file(rel, b"z\n")
    ids = [emulator.find(rel)["id"] for rel in ("runs/old", "runs/old/a", "runs/old/a/b")]
    emulator.clear_requests()

    code, _, err = run("push", str(_runs(tmp_path)), "drive:runs", "--delete")

    assert code == 0, err
    assert set(live_md5s(emulator, "runs")) == {"exp2"}, err
    asked = [r.query.get("q") for r in emulator.requests if r.kind == "files.list"
             and r.query.get("fields") == marks_below.FIELDS]
    assert sorted(asked) == sorted(f"'{i}' in parents and trashed=false" for i in ids), asked


@pytest.mark.parametrize("trash", [False, True])
def test_a_lone_delete_of_a_folder_written_in_since_listed_leaves_it(emulator, env_drive,
                                                                     trash):
    """The store's lone delete (dedupe's emptied twins, a duplicate folder's cleanup) checks
    the same: a folder listed empty, a file written in it since, is left (LeftAloneError,
    said once); listed again, it goes (the next decision is made on that listing)."""
    from drivestage.errors import LeftAloneError
    from drivestage.remote import open_store
    emulator.add_folder("runs/twin")
    store, _ = open_store("drive:runs")
    twin = next(e for e in store.list(store.resolve("runs")) if e.name == "twin")
    assert store.list(twin) == []
    emulator.add_file("runs/twin/epoch_001.pt", b"w" * 100)

    with pytest.raises(LeftAloneError) as left:
        store.delete(twin, trash=trash)

    assert str(left.value) == ("drive:runs/twin was not deleted: drive:runs/twin/epoch_001.pt "
                               "came in since it was listed (someone writes there); the next "
                               "push decides again")
    assert set(live_md5s(emulator, "runs/twin")) == {"epoch_001.pt"}
    assert len(store.list(twin)) == 1
    store.delete(twin, trash=trash)
    assert set(live_md5s(emulator, "runs")) == set()
