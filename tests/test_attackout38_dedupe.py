"""attackout38: ``dedupe`` trashes a copy in the newer folder that holds the same bytes as
the oldest folder's item of its name. A copy filed before 2020 in ``Archive`` too went to the
trash from ``Archive`` as well. Now the copy's listing, which names its parents, keeps it:
it stays, its folder with it (not empty), the rest is merged, and the run ends as for a
conflict (exit 1: the path still holds two folders), naming it and what to do.

Through the real stack (the CLI in-process, PyDrive2, the emulator over HTTP). No sleeps."""
from __future__ import annotations

import pytest

from _messages import error_line
from test_messages_dedupe import folder, live, md5, put, run, trashed


@pytest.fixture(autouse=True)
def _world(env, drive_env, fast_retries):
    """Local state in tmp_path, the CLI and the library on the emulator, fast retries."""


def test_a_same_bytes_copy_also_in_another_folder_stays(emulator, store):
    root = emulator.add_folder("runs")
    old, new = folder(store, "exp", root), folder(store, "exp", root)
    put(emulator, store, old, "a.pt", b"same")
    copy = put(emulator, store, new, "a.pt", b"same")
    put(emulator, store, new, "b.pt", b"b")
    archive = emulator.add_folder("Archive")
    emulator.store.update_meta(copy, {}, add_parents=[archive])

    code, _, err = run("dedupe", "drive:runs/exp")

    assert copy not in trashed(emulator), err
    assert [c["title"] for c in emulator.store.children(archive)] == ["a.pt"], err
    assert sorted(c["title"] for c in emulator.store.children(old)) == ["a.pt", "b.pt"], err
    assert new not in trashed(emulator), err
    assert code == 1, err
    assert ("dedupe drive:runs/exp: 1 folder stays: 1 moved, 0 copies trashed, 0 empty "
            "folders trashed, 1 also in another folder, left in place") in err, err
    assert error_line(err) == (
        f"Error: 1 item stays in a newer folder: drive:runs/exp/a.pt (in id {new}); the oldest "
        "folder holds its bytes, but it is also in another folder (an item with two parents, "
        "kept from before 2020), which the trash would take it from too. Take it out of the "
        "newer folder on Drive (it stays in its other folder), then run `drivestage dedupe "
        "drive:runs/exp` again")
    assert live(emulator)["runs/exp/a.pt"] == [md5(b"same"), md5(b"same")]


def test_once_taken_out_the_copy_is_no_copy_any_more_and_the_merge_ends(emulator, store):
    """The user takes the copy out of the newer folder (it stays in ``Archive``): dedupe
    trashes the empty newer folder; ``Archive/a.pt`` stays."""
    root = emulator.add_folder("runs")
    old, new = folder(store, "exp", root), folder(store, "exp", root)
    put(emulator, store, old, "a.pt", b"same")
    copy = put(emulator, store, new, "a.pt", b"same")
    archive = emulator.add_folder("Archive")
    emulator.store.update_meta(copy, {}, add_parents=[archive])
    assert run("dedupe", "drive:runs/exp")[0] == 1
    emulator.store.update_meta(copy, {}, remove_parents=[new])

    code, _, err = run("dedupe", "drive:runs/exp")

    assert code == 0, err
    assert new in trashed(emulator) and copy not in trashed(emulator), err
    assert [c["title"] for c in emulator.store.children(archive)] == ["a.pt"], err
