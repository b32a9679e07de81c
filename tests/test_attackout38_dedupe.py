"""attackout38: ``dedupe`` trashes a copy in the newer folder that holds the same bytes as
the oldest folder's item of its name. A copy filed before 2020 in ``Archive`` too went to the
trash from ``Archive`` as well. attackout38 left it (the merge unfinished, exit 1, the user
told to take it out by hand); now (parents39) dedupe takes it out of the newer folder only
(files.update ``removeParents``): it stays in ``Archive``, the newer folder empties and goes,
exit 0. Where Drive refuses that, it stays, as attackout38 left it (exit 1, the line says).

Through the real stack (the CLI in-process, PyDrive2, the emulator over HTTP). No sleeps."""
from __future__ import annotations

import pytest

from _messages import error_line
from test_messages_dedupe import folder, live, md5, put, run, trashed


@pytest.fixture(autouse=True)
def _world(env, drive_env, fast_retries):
    """Local state in tmp_path, the CLI and the library on the emulator, fast retries."""


def _filed_twice(emulator, store) -> tuple[str, str, str, str]:
    """``runs/exp`` twice (the oldest first), each holding ``a.pt`` with the same bytes; the
    newer one's copy filed in ``Archive`` too (a second parent, kept from before 2020): the
    ids of the oldest folder, the newer one, the copy, Archive."""
    root = emulator.add_folder("runs")
    old, new = folder(store, "exp", root), folder(store, "exp", root)
    put(emulator, store, old, "a.pt", b"same")
    copy = put(emulator, store, new, "a.pt", b"same")
    archive = emulator.add_folder("Archive")
    emulator.store.update_meta(copy, {}, add_parents=[archive])
    return old, new, copy, archive


def test_a_same_bytes_copy_also_in_another_folder_is_taken_out_of_the_newer_only(
        emulator, store):
    old, new, copy, archive = _filed_twice(emulator, store)
    put(emulator, store, new, "b.pt", b"b")

    code, _, err = run("dedupe", "drive:runs/exp")

    assert code == 0, err
    assert copy not in trashed(emulator), err
    assert emulator.store.get(copy)["parents"] == [archive], err
    assert sorted(c["title"] for c in emulator.store.children(old)) == ["a.pt", "b.pt"], err
    assert new in trashed(emulator), err
    assert ("dedupe drive:runs/exp: 1 folder merged: 1 moved, 0 copies trashed, 1 empty "
            "folder trashed, 1 copy taken out (also in another folder, where it stays)") in err, err
    assert (f"WARNING drivestage.drive.store: drive:runs/exp/a.pt: taken out of drive:runs/exp "
            f"only, not deleted: it is also in another folder (id {archive}; an item with two "
            "parents, kept from before 2020), where it stays. For good: Drive gives no item a "
            "second parent since 2020 (a shortcut may stand for it in drive:runs/exp)"
            ) in err.splitlines(), err
    assert live(emulator)["runs/exp/a.pt"] == [md5(b"same")]


def test_a_dry_run_says_it_would_take_it_out(emulator, store):
    old, new, copy, archive = _filed_twice(emulator, store)

    code, _, err = run("dedupe", "drive:runs/exp", "--dry-run")

    assert code == 0, err
    assert "1 copy would be taken out (also in another folder, where it stays)" in err, err
    assert sorted(emulator.store.get(copy)["parents"]) == sorted([new, archive]), err


def test_where_drive_refuses_taking_it_out_it_stays_and_the_run_says_so(emulator, store):
    old, new, copy, archive = _filed_twice(emulator, store)
    emulator.faults.inject(None, r"removeParents=", reason="insufficientFilePermissions")

    code, _, err = run("dedupe", "drive:runs/exp")

    assert code == 1, err
    assert sorted(emulator.store.get(copy)["parents"]) == sorted([new, archive]), err
    assert new not in trashed(emulator), err
    assert error_line(err) == (
        f"Error: 1 item stays in a newer folder: drive:runs/exp/a.pt (in id {new}); the oldest "
        "folder holds its bytes, but it is also in another folder (an item with two parents, "
        "kept from before 2020), which the trash would take it from too, and Drive refused "
        "taking it out of the newer folder only (the warning above says why). Take it out of "
        "the newer folder on Drive (it stays in its other folder), then run `drivestage dedupe "
        "drive:runs/exp` again")


def test_once_taken_out_the_copy_is_no_copy_any_more_and_the_merge_ends(emulator, store):
    """The user takes the copy out of the newer folder (it stays in ``Archive``): dedupe
    trashes the empty newer folder; ``Archive/a.pt`` stays."""
    old, new, copy, archive = _filed_twice(emulator, store)
    emulator.store.update_meta(copy, {}, remove_parents=[new])

    code, _, err = run("dedupe", "drive:runs/exp")

    assert code == 0, err
    assert new in trashed(emulator) and copy not in trashed(emulator), err
    assert [c["title"] for c in emulator.store.children(archive)] == ["a.pt"], err
