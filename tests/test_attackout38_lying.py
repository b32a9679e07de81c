"""attackout38: ``push --delete`` against a listing that leaves out ``parents`` (a proxy, a
server that is not Drive: ``emulator.list_leaves_out``). outside38's rule keeps an item also
in a folder the push does not remove, on what the plan's listing says; a listing that names
no parents said nothing, and ``drive:Photos`` (also ``runs/old/sub/Photos``) went to the
trash with ``runs/old`` again. The check just before a removal reads every item again with
its parents (files.get of the item; the listing of each folder inside, whose ``fields`` name
them): an item in a folder the plan did not know of is left, said in one line.

Through the real stack (the CLI in-process, PyDrive2, the emulator over HTTP); second
parents seeded on the emulator's store as tests/test_attacksync36_walk.py does. No sleeps."""
from __future__ import annotations

from collections import Counter

from _cli import run
from test_attacksync36_walk import _parents
from test_outside38_delete import _deep, _ids, _src, _trashed


def DEST(emulator) -> str:
    """``runs`` by its id: read by files.get, which the lie leaves whole (by its path, the
    listing that finds it hides its parent, and the push refuses --delete: the first test)."""
    return f"drive:id:{emulator.find('runs')['id']}"


def test_a_folder_outside_dest_deep_in_a_removed_one_is_left_when_the_listing_hides_parents(
        emulator, local_state, drive_env, tmp_path):
    """The plan, blind to ``Photos``'s second parent, means to trash ``runs/old`` whole; the
    re-check before it goes reads ``runs/old/sub``'s items with their parents and leaves
    ``old``: ``drive:Photos`` and its photo stay, one line names it. Exit 0: nothing was
    lost, nothing failed."""
    _deep(emulator)
    emulator.list_leaves_out = {"parents"}
    ids = _ids(emulator, "Photos", "Photos/pic.jpg", "runs/old", "runs/old/sub")

    code, _, err = run("push", str(_src(tmp_path)), DEST(emulator), "--delete")

    assert code == 0, err
    assert _trashed(emulator, ids) == {
        "Photos": False, "Photos/pic.jpg": False, "runs/old": False, "runs/old/sub": False}, err
    dest = DEST(emulator)   # (as the lines name it)
    assert (f"WARNING drivestage.drive.store: {dest}/old was not deleted: {dest}/old/sub/Photos "
            "is also in a folder outside it (an item with two parents, kept from before 2020), "
            "and its removal would take that from there too. Take Photos out of "
            f"{dest}/old/sub on Drive (it stays in its other folder) to let {dest}/old go"
            ) in err.splitlines(), err
    assert "deleted (not local)" not in err, err


def test_a_file_of_dest_also_elsewhere_is_left_when_the_listing_hides_parents(
        emulator, local_state, drive_env, tmp_path):
    """``runs/report.pdf`` is ``drive:Docs/report.pdf`` too; the listing hides it. The
    files.get just before the trash shows both parents: left, said so; ``stray.txt`` goes."""
    emulator.add_file("runs/stray.txt", b"stray\n")
    emulator.add_file("Docs/report.pdf", b"%PDF a report\n")
    _parents(emulator, "Docs/report.pdf", "runs")
    emulator.list_leaves_out = {"parents"}
    ids = _ids(emulator, "Docs/report.pdf", "runs/stray.txt")

    code, _, err = run("push", str(_src(tmp_path)), DEST(emulator), "--delete")

    assert code == 0, err
    assert _trashed(emulator, ids) == {"Docs/report.pdf": False, "runs/stray.txt": True}, err
    dest = DEST(emulator)   # (as the lines name it)
    assert (f"WARNING drivestage.drive.store: {dest}/report.pdf was not deleted: it is also in "
            "another folder (an item with two parents, kept from before 2020), and its removal "
            f"would take it from there too. Take it out of {dest} on Drive (it stays in its "
            "other folder) to let it go") in err.splitlines(), err
    assert ", 1 deleted (not local)" in err, err


def test_a_hidden_second_parent_inside_what_the_push_removes_still_goes(
        emulator, local_state, drive_env, tmp_path):
    """``runs/old/shared`` is ``runs/older/shared`` too and both go (SRC has neither). With
    parents hidden the plan cannot tell that second parent from one outside: the re-check of
    ``old`` sees ``shared`` in ``older``, no folder of its own walk, and of ``older`` sees it
    in ``old``: both are left (safe: nothing of the user's is lost; a push on a truthful
    listing removes both, test_outside38_delete)."""
    emulator.add_file("runs/old/shared/a.txt", b"a\n")
    emulator.add_file("runs/older/b.txt", b"b\n")
    _parents(emulator, "runs/old/shared", "runs/older")
    emulator.list_leaves_out = {"parents"}
    ids = _ids(emulator, "runs/old", "runs/older", "runs/old/shared/a.txt")

    code, _, err = run("push", str(_src(tmp_path)), DEST(emulator), "--delete")

    assert code == 0, err
    assert _trashed(emulator, ids) == {
        "runs/old": False, "runs/older": False, "runs/old/shared/a.txt": False}, err


def test_with_parents_listed_the_re_check_asks_nothing_more(emulator, local_state,
                                                           drive_env, tmp_path):
    """A plain push --delete of a folder (parents listed, one parent each): the re-check's
    requests are those it made before (one listing per folder inside, one files.get), and
    the folder goes."""
    emulator.add_file("runs/old/a/x.txt", b"x\n")
    emulator.add_file("runs/old/b.txt", b"b\n")
    ids = _ids(emulator, "runs/old")
    emulator.clear_requests()

    code, _, err = run("push", str(_src(tmp_path)), DEST(emulator), "--delete")

    assert code == 0, err
    assert _trashed(emulator, ids) == {"runs/old": True}, err
    kinds = Counter(r.kind for r in emulator.requests)
    assert kinds["files.trash"] == 1, kinds


def test_by_its_path_a_lying_listing_has_the_push_refuse_delete(emulator, local_state,
                                                                drive_env, tmp_path):
    """DEST by its path: the listing that finds ``runs`` hides its parent too, and the push
    refuses --delete before it sends anything (exit 2); nothing is trashed."""
    _deep(emulator)
    emulator.list_leaves_out = {"parents"}
    ids = _ids(emulator, "Photos", "runs/old", "runs/old/notes.txt")

    code, _, err = run("push", str(_src(tmp_path)), "drive:runs", "--delete")

    assert code == 2, err
    assert err.startswith("Error: refusing --delete into drive:runs: it has no parent folder "
                          "you can see"), err
    assert _trashed(emulator, ids) == dict.fromkeys(ids, False), err
    assert not [r for r in emulator.requests if r.kind in ("files.trash", "files.delete")]
