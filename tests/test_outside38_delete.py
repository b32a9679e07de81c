"""outside38: ``push --delete`` never trashes an item, nor a folder holding one at any depth,
that is also in a folder the push does not remove (a second parent, kept from before 2020):
Drive's trash takes a folder with everything in it, whatever else holds it. What else such a
folder holds goes item by item, and one line says what was kept and why.

Through the real stack (the CLI in-process, PyDrive2, the emulator over HTTP, whose trash
takes a folder's descendants as Drive's does); the second parents seeded on the emulator's
store, as tests/test_attacksync36_walk.py does. Requests counted from the emulator's log.
No sleeps."""
from __future__ import annotations

from collections import Counter

from _cli import run
from test_attacksync36_walk import _parents

KEPT = ("WARNING drivestage.extra: --delete kept drive:runs/old: it holds {held}, which is "
        "also in {other} (an item with two parents, kept from before 2020), and its removal "
        "would take that along; what else is in it goes item by item. Take {name} out of "
        "{folder} on Drive (it stays in its other folder) to let it go")


def _src(tmp_path):
    src = tmp_path / "runs"
    (src / "exp2").mkdir(parents=True)
    (src / "exp2" / "log.txt").write_text("1\n")
    return src


def _ids(emulator, *rels: str) -> dict:
    return {rel: emulator.find(rel)["id"] for rel in rels}


def _trashed(emulator, ids: dict) -> dict:
    """rel -> whether the item there before the push is in the trash now."""
    return {rel: emulator.store.get(i)["trashed"] for rel, i in ids.items()}


def _listed(emulator) -> Counter:
    """folder id -> listings of its children (``'<id>' in parents``) sent."""
    return Counter(r.query["q"].split("'")[1] for r in emulator.requests
                   if r.kind == "files.list" and "in parents" in (r.query.get("q") or "")
                   and "title=" not in r.query["q"])


def _deep(emulator) -> None:
    """``runs/old/sub/Photos`` is ``drive:Photos`` too; ``old`` and ``sub`` hold more."""
    emulator.add_file("runs/old/notes.txt", b"old\n")
    emulator.add_file("runs/old/sub/other.txt", b"other\n")
    emulator.add_file("Photos/pic.jpg", b"\xff\xd8 a photo\n")
    _parents(emulator, "Photos", "runs/old/sub")


def test_a_folder_outside_dest_deep_in_a_removed_one_is_left_with_the_folders_above(
        emulator, local_state, drive_env, tmp_path):
    """``drive:Photos`` is also ``runs/old/sub/Photos``: ``old`` and ``sub`` stay (trashed,
    either took Photos along), what else they hold goes, and one line says why. Before:
    ``old`` went to the trash whole, and ``drive:Photos`` with it."""
    _deep(emulator)

    ids = _ids(emulator, "Photos", "Photos/pic.jpg", "runs/old", "runs/old/sub",
               "runs/old/notes.txt", "runs/old/sub/other.txt")

    code, _, err = run("push", str(_src(tmp_path)), "drive:runs", "--delete")

    assert code == 0, err
    assert _trashed(emulator, ids) == {
        "Photos": False, "Photos/pic.jpg": False, "runs/old": False, "runs/old/sub": False,
        "runs/old/notes.txt": True, "runs/old/sub/other.txt": True}, err
    assert KEPT.format(held="drive:runs/old/sub/Photos", other="a folder outside drive:runs",
                       name="Photos", folder="drive:runs/old/sub") in err.splitlines(), err
    assert "--delete: removing 2 items from drive:runs" in err, err


def test_the_exact_line_for_the_folder_in_my_drive_s_top(emulator, local_state, drive_env,
                                                          tmp_path):
    """attackload37's case (``Photos`` directly in ``runs/old``): the one line, once."""
    emulator.add_file("runs/old/notes.txt", b"old\n")
    emulator.add_file("Photos/pic.jpg", b"\xff\xd8 a photo\n")
    _parents(emulator, "Photos", "runs/old")

    ids = _ids(emulator, "Photos", "runs/old", "runs/old/notes.txt")

    code, _, err = run("push", str(_src(tmp_path)), "drive:runs", "--delete")

    assert code == 0, err
    lines = [line for line in err.splitlines() if "--delete kept" in line]
    assert lines == [KEPT.format(held="drive:runs/old/Photos", other="a folder outside drive:runs",
                                 name="Photos", folder="drive:runs/old")], err
    assert _trashed(emulator, ids) == {
        "Photos": False, "runs/old": False, "runs/old/notes.txt": True}, err


def test_a_file_with_a_second_parent_outside_dest_is_left_with_its_folder(
        emulator, local_state, drive_env, tmp_path):
    """A file (not a folder): ``runs/old/report.pdf`` is ``drive:Docs/report.pdf`` too. It
    stays in both, ``old`` stays; ``old``'s other file goes."""
    emulator.add_file("runs/old/notes.txt", b"old\n")
    emulator.add_file("Docs/report.pdf", b"%PDF a report\n")
    _parents(emulator, "Docs/report.pdf", "runs/old")

    ids = _ids(emulator, "Docs/report.pdf", "runs/old", "runs/old/notes.txt")

    code, _, err = run("push", str(_src(tmp_path)), "drive:runs", "--delete")

    assert code == 0, err
    assert _trashed(emulator, ids) == {
        "Docs/report.pdf": False, "runs/old": False, "runs/old/notes.txt": True}, err
    assert KEPT.format(held="drive:runs/old/report.pdf", other="a folder outside drive:runs",
                       name="report.pdf", folder="drive:runs/old") in err.splitlines(), err


def test_a_file_of_dest_with_a_second_parent_outside_it_is_left(emulator, local_state,
                                                               drive_env, tmp_path):
    """``runs/report.pdf`` (SRC lacks it) is ``drive:Docs/report.pdf`` too: trashed, it
    would be gone from ``Docs``; it stays, said so. ``runs/stray.txt`` goes."""
    emulator.add_file("runs/stray.txt", b"stray\n")
    emulator.add_file("Docs/report.pdf", b"%PDF a report\n")
    _parents(emulator, "Docs/report.pdf", "runs")

    ids = _ids(emulator, "Docs/report.pdf", "runs/stray.txt")

    code, _, err = run("push", str(_src(tmp_path)), "drive:runs", "--delete")

    assert code == 0, err
    assert _trashed(emulator, ids) == {
        "Docs/report.pdf": False, "runs/stray.txt": True}, err
    assert ("WARNING drivestage.extra: --delete kept drive:runs/report.pdf: it is also in a "
            "folder outside drive:runs (an item with two parents, kept from before 2020), and "
            "its removal would take it from there too. Take it out of drive:runs on Drive (it "
            "stays in its other folder) to let it go") in err.splitlines(), err


def test_a_second_parent_inside_what_the_push_removes_changes_nothing(
        emulator, local_state, drive_env, tmp_path):
    """``runs/old/shared`` is ``runs/older/shared`` too; both go (SRC has neither): the
    folders go whole, as before, with no line about it."""
    emulator.add_file("runs/old/shared/a.txt", b"a\n")
    emulator.add_file("runs/older/b.txt", b"b\n")
    _parents(emulator, "runs/old/shared", "runs/older")

    ids = _ids(emulator, "runs/old", "runs/older", "runs/old/shared/a.txt")

    code, _, err = run("push", str(_src(tmp_path)), "drive:runs", "--delete")

    assert code == 0, err
    assert "--delete kept" not in err, err
    assert "--delete: removing 5 items from drive:runs" in err, err
    assert _trashed(emulator, ids) == {
        "runs/old": True, "runs/older": True, "runs/old/shared/a.txt": True}, err


def test_a_second_parent_in_a_folder_of_dest_that_stays_is_named(emulator, local_state,
                                                                 drive_env, tmp_path):
    """``runs/old/x.txt`` is ``runs/keep/x.txt`` too, which ``--protect keep`` leaves: ``old``
    stays (its removal took ``x.txt`` from ``keep``), and the line names ``keep``."""
    emulator.add_file("runs/old/notes.txt", b"old\n")
    emulator.add_file("runs/keep/x.txt", b"keep\n")
    _parents(emulator, "runs/keep/x.txt", "runs/old")
    ids = _ids(emulator, "runs/keep/x.txt", "runs/old", "runs/old/notes.txt")

    code, _, err = run("push", str(_src(tmp_path)), "drive:runs", "--delete",
                       "--protect", "keep")

    assert code == 0, err
    assert _trashed(emulator, ids) == {
        "runs/keep/x.txt": False, "runs/old": False, "runs/old/notes.txt": True}, err
    assert KEPT.format(held="drive:runs/old/x.txt",
                       other="drive:runs/keep, which --delete leaves", name="x.txt",
                       folder="drive:runs/old") in err.splitlines(), err


def test_a_second_push_gives_the_same_answer_in_the_same_requests(emulator, local_state,
                                                                  drive_env, tmp_path):
    """The deep case pushed twice: the second push keeps the same, says the same line, sends
    no removal, and lists each folder once (parents come with the listings: no request
    per item)."""
    _deep(emulator)
    src = _src(tmp_path)
    ids = _ids(emulator, "Photos", "Photos/pic.jpg", "runs/old", "runs/old/sub")

    code, _, err = run("push", str(src), "drive:runs", "--delete")
    assert code == 0, err
    emulator.clear_requests()

    code, _, again = run("push", str(src), "drive:runs", "--delete")

    assert code == 0, again
    line = KEPT.format(held="drive:runs/old/sub/Photos", other="a folder outside drive:runs",
                       name="Photos", folder="drive:runs/old/sub")
    assert line in again.splitlines() and "removing" not in again, again
    assert _trashed(emulator, ids) == {
        "Photos": False, "Photos/pic.jpg": False, "runs/old": False, "runs/old/sub": False}
    kinds = Counter(r.kind for r in emulator.requests)
    assert kinds["files.delete"] == kinds["files.trash"] == 0, kinds
    listed = _listed(emulator)
    assert max(listed.values()) == 1, listed
    assert set(listed) == {emulator.find(f)["id"] for f in (
        "runs", "runs/exp2", "runs/old", "runs/old/sub", "Photos")}, listed


def test_many_files_cost_no_request_more(emulator, local_state, drive_env, tmp_path):
    """``runs/old`` holds 40 files and ``sub/Photos``: the decision lists each folder once,
    asks nothing per file (no files.get), and the 40 files and ``sub``'s other go."""
    _deep(emulator)
    for i in range(40):
        emulator.add_file(f"runs/old/f{i}.txt", f"{i}\n".encode())
    emulator.clear_requests()

    code, _, err = run("push", str(_src(tmp_path)), "drive:runs", "--delete",
                       "--max-delete", "100")

    assert code == 0, err
    assert "--delete: removing 42 items from drive:runs" in err, err
    listed = _listed(emulator)
    assert max(listed.values()) == 1, listed
    kinds = Counter(r.kind for r in emulator.requests)
    # (one files.get per item just before it goes, as for any item --delete removes, and
    # one of Photos, kept: its parents read fresh, a lagging listing's are not trusted to
    # keep it: attackout38)
    assert kinds["files.get"] <= kinds["files.trash"] + 7, kinds
    assert not [r for r in emulator.requests if "/parents" in r.path], kinds
