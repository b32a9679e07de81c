"""Attacks on ``drivestage dedupe``: what a second parent, a lagging listing, a second
process, a refusing server and a SIGKILL at each request can make it do to the user's files.

Every test asserts what stays on Drive (paths, md5s, the trash) and what the user is told.
"""
from __future__ import annotations

import pytest

from test_messages_dedupe import folder, live, md5, put, run, trashed


@pytest.fixture(autouse=True)
def _world(env, drive_env, fast_retries):
    """Local state in tmp_path, the CLI and the library on the emulator, fast retries."""


def put_in(store, parents: list[str], name: str, data: bytes) -> str:
    """A file with several parents (Drive allowed that until 2020; such items still exist)."""
    f = store.drive.CreateFile({"title": name, "parents": [{"id": p} for p in parents]})
    f.content = __import__("io").BytesIO(data)
    f.Upload()
    return f["id"]


def test_a_file_in_both_folders_is_not_a_copy_of_itself(emulator, store):
    """A file listed in the oldest and in the newer folder (one item, two parents) is not
    a byte-identical copy: trashing it would take it out of both. It stays, in the oldest."""
    root = emulator.add_folder("runs")
    old, new = folder(store, "exp", root), folder(store, "exp", root)
    both = put_in(store, [old, new], "best.pt", b"the only best")
    code, _, err = run("dedupe", "drive:runs/exp")
    assert code == 0, err
    assert both not in trashed(emulator)
    assert live(emulator) == {"runs": ["/"], "runs/exp": ["/"],
                              "runs/exp/best.pt": [md5(b"the only best")]}


def test_a_folder_in_both_folders_is_not_merged_into_itself(emulator, store):
    """A folder with two parents (the oldest and the newer one) merged "into itself" would
    see each of its files as a copy of itself, trash them all, then trash itself."""
    root = emulator.add_folder("runs")
    old, new = folder(store, "exp", root), folder(store, "exp", root)
    f = store.drive.CreateFile({"title": "tb", "mimeType": "application/vnd.google-apps.folder",
                                "parents": [{"id": old}, {"id": new}]})
    f.Upload()
    put(emulator, store, f["id"], "events", b"tensorboard events")
    put(emulator, store, new, "b.txt", b"b")
    code, _, err = run("dedupe", "drive:runs/exp")
    assert code == 0, err
    assert not trashed(emulator) - {new}
    assert live(emulator) == {"runs": ["/"], "runs/exp": ["/"], "runs/exp/tb": ["/"],
                              "runs/exp/tb/events": [md5(b"tensorboard events")],
                              "runs/exp/b.txt": [md5(b"b")]}


def test_a_name_moved_in_a_moment_ago_is_held_though_the_listing_lags(emulator, store):
    """Three same-named folders; the first newer one's x.pt moves into the oldest, and the
    listing of the oldest, lagging, does not show it yet. The second newer one's x.pt (other
    bytes) must stay a conflict, not move in beside it: that made two x.pt in the oldest,
    the very duplicate dedupe removes, with exit 0. Nor is the moved x.pt, still listed in
    its old folder for a moment, "an item that reached it while dedupe ran"."""
    root = emulator.add_folder("runs")
    old, new1, new2 = (folder(store, "exp", root) for _ in range(3))
    put(emulator, store, new1, "x.pt", b"run one")
    theirs = put(emulator, store, new2, "x.pt", b"run two")
    emulator.faults.lag_listing(updated=2, titles=r"^x\.pt$")
    code, out, err = run("dedupe", "drive:runs/exp")
    emulator.faults.lag_listing()
    assert code == 1, err
    assert live(emulator)["runs/exp/x.pt"] == sorted([md5(b"run one"), md5(b"run two")])
    assert [f["parents"][0]["id"] for f in emulator.files() if f["title"] == "x.pt"
            and f["id"] != theirs] == [old]
    assert {f["parents"][0]["id"] for f in emulator.files() if f["id"] == theirs} == {new2}
    assert "reached a newer folder" not in err
    assert "drive:runs/exp/x.pt (in id " + new2 in err
    assert new1 in trashed(emulator) and new2 not in trashed(emulator)


def test_a_dry_run_of_three_folders_says_what_the_run_does(emulator, store):
    """Two newer folders each holding a.txt (other bytes): the dry run counts one move and
    one conflict, as the run does, not two moves."""
    root = emulator.add_folder("runs")
    old, new1, new2 = (folder(store, "exp", root) for _ in range(3))
    put(emulator, store, new1, "a.txt", b"one")
    put(emulator, store, new2, "a.txt", b"two")
    code, _, dry = run("dedupe", "drive:runs/exp", "--dry-run")
    code2, _, err = run("dedupe", "drive:runs/exp")
    assert (code, code2) == (1, 1)
    assert "2 folders to merge: 1 would be moved, 0 copies would be trashed, 1 empty folder " \
           "would be trashed, 1 conflict left in place" in dry
    assert "2 folders merged: 1 moved, 0 copies trashed, 1 empty folder trashed, 1 conflict " \
           "left in place" in err
