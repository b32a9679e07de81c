"""seen36: the re-check just before ``push --delete`` removes a Drive folder reads every
folder inside it, not only the folder itself (:mod:`drivestage.drive.marks_below`).

``runs/old`` is not in the pushing machine's ``./runs``, so ``--delete`` plans to remove it
whole, after its files are sent. Meanwhile a run on another machine begins in a folder
inside it: marked by its property (a push to ``drive:runs/old/sub/exp1``), or by the file
``.drivestage/run-folder`` a Drive mount synced. Before, the re-check read ``old`` alone,
and the trash (``--delete-permanently``: deletion) took the run with it.

Through the real stack (the CLI in-process, PyDrive2, googleapiclient, the emulator over
HTTP, a proxy that lets the other machine act when the first upload starts). No sleeps."""
from __future__ import annotations

import os

import pytest

from _cli import run, warning_lines
from _drive_state import live_md5s
from _envs import env_drive  # noqa: F401  (a fixture)
from _liar import liar_env  # noqa: F401  (fixtures)
from _proxy import when_sending
from drivestage.drive import marks_below
from drivestage.drive.resources import RUN_MARK


def _runs(tmp_path):
    """This machine's ./runs: exp2 with enough files that --delete may remove a folder."""
    runs = tmp_path / "runs"
    (runs / "exp2").mkdir(parents=True)
    for i in range(12):
        (runs / "exp2" / f"log{i}.txt").write_text(f"{i}\n")
    return runs


def _pair(emulator, rel: str) -> dict:
    """A run's first checkpoint and its sidecar in ``rel`` on Drive; its live md5s."""
    emulator.add_file(f"{rel}/epoch_001.pt", os.urandom(3000))
    emulator.add_file(f"{rel}/epoch_001.json", b'{"epoch": 1}\n')
    return live_md5s(emulator, rel)


@pytest.mark.parametrize("leaves_out", [False, True])
@pytest.mark.parametrize("flag", ["--delete", "--delete-permanently"])
def test_a_run_folder_marked_inside_a_folder_to_go_keeps_it(emulator, proxy, liar_env,
                                                            tmp_path, flag, leaves_out):
    """``runs/old/sub/exp1`` holds a checkpoint pair, no mark, when the push lists; while it
    sends, the other machine's run marks exp1 (its property). Before: ``old`` went, exp1's
    checkpoints with it. Now ``old`` is left whole, said once; the rest is pushed. A listing
    that leaves properties out (``leaves_out``) changes nothing: the re-check names them."""
    emulator.list_leaves_out = {"properties"} if leaves_out else set()
    emulator.add_file("runs/old/notes.txt", b"n\n")
    theirs = _pair(emulator, "runs/old/sub/exp1")
    when_sending(proxy, lambda: emulator.set_properties(
        emulator.find("runs/old/sub/exp1")["id"],
        [{"key": RUN_MARK, "value": "1", "visibility": "PUBLIC"}]))

    code, _, err = run("push", str(_runs(tmp_path)), "drive:runs", flag)

    assert code == 0, err
    assert live_md5s(emulator, "runs/old/sub/exp1") == theirs, err
    assert set(live_md5s(emulator, "runs/old")) == {"notes.txt", "sub"}
    assert set(live_md5s(emulator, "runs")) == {"old", "exp2"}
    assert warning_lines(err, "runs/old") == [
        "WARNING drivestage.drive.store: drive:runs/old holds drive:runs/old/sub/exp1, "
        "marked a run folder on Drive since it was listed; not deleted"], err


def test_a_run_a_mount_began_inside_a_folder_to_go_keeps_it(emulator, proxy, liar_env,
                                                            tmp_path):
    """``runs/old/sub`` is empty when the push lists; while it sends, a run on another
    machine begins in ``runs/old/sub/exp1`` through a Drive mount: its mark file and first
    checkpoint sync in. Before: ``old`` went with them. Now it is left, said once."""
    emulator.add_folder("runs/old/sub")

    def mount_syncs():
        emulator.add_file("runs/old/sub/exp1/.drivestage/run-folder", b"")
        return _pair(emulator, "runs/old/sub/exp1")
    synced = when_sending(proxy, mount_syncs)

    code, _, err = run("push", str(_runs(tmp_path)), "drive:runs", "--delete-permanently")

    assert code == 0, err
    assert live_md5s(emulator, "runs/old/sub/exp1") == synced[0], err
    assert set(synced[0]) == {".drivestage", "epoch_001.pt", "epoch_001.json"}
    assert warning_lines(err, "runs/old") == [
        "WARNING drivestage.drive.store: drive:runs/old holds drive:runs/old/sub/exp1, marked "
        "a run folder on Drive since it was listed (its .drivestage/run-folder, synced by a "
        "Drive mount); not deleted"], err


def _walk_asks(emulator) -> list:
    """The re-check's listings: of a folder's children (named fields; of its subfolders
    alone before lag36, which holds its files against the plan's listing too, at no request
    more), of a state folder's mark."""
    return [r.query.get("q") for r in emulator.requests if r.kind == "files.list"
            and (r.query.get("fields") == marks_below.FIELDS or "title='run-folder'" in
                 str(r.query.get("q")))]


def test_the_re_check_costs_one_listing_a_folder(emulator, env_drive, tmp_path):
    """``runs/old`` holding a/b/c (nested) and d goes, as planned: the re-check lists each of
    the five folders' children once (the folder itself included), nothing more."""
    for rel in ("runs/old/a/b/c/x.txt", "runs/old/d/y.txt"):
        emulator.add_file(rel, b"z\n")
    ids = {name: emulator.find(f"runs/old/{name}")["id"] for name in ("a", "a/b", "a/b/c", "d")}
    old = emulator.find("runs/old")["id"]
    emulator.clear_requests()

    code, _, err = run("push", str(_runs(tmp_path)), "drive:runs", "--delete")

    assert code == 0, err
    assert set(live_md5s(emulator, "runs")) == {"exp2"}, err
    asked = _walk_asks(emulator)
    assert sorted(asked) == sorted(f"'{i}' in parents and trashed=false"
                                   for i in [old, *ids.values()]), asked


def test_a_tree_too_large_to_read_again_is_left(emulator, env_drive, tmp_path, monkeypatch):
    """A folder with more folders inside than the re-check's bound (set to 3 here; 1,000 by
    default) is left, never removed unread: three listings, then a warning; the push exits 0
    with the rest done."""
    monkeypatch.setattr(marks_below, "MAX_FOLDERS", 3)
    emulator.add_file("runs/old/a/b/c/d/x.txt", b"z\n")
    emulator.clear_requests()

    code, _, err = run("push", str(_runs(tmp_path)), "drive:runs", "--delete")

    assert code == 0, err
    assert set(live_md5s(emulator, "runs")) == {"old", "exp2"}, err
    assert live_md5s(emulator, "runs/old/a/b/c/d") == {"x.txt": [emulator.find(
        "runs/old/a/b/c/d/x.txt")["md5Checksum"]]}
    assert len(_walk_asks(emulator)) == 3
    assert warning_lines(err, "runs/old") == [
        "WARNING drivestage.drive.store: drive:runs/old was not deleted: it holds more "
        "folders than could be read again before its removal (3 read in 0 s, at most 3 and "
        "120 s), to see that no run began in one since it was listed; delete it on Drive, "
        "or push again"], err
