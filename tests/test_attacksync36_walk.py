"""attacksync36: the re-check before ``push --delete`` removes a Drive folder
(:mod:`drivestage.drive.marks_below`) walks each folder inside it once, however many parents
a folder has there (an item Drive kept from before 2020's single-parent rule).

Through the real stack (the CLI in-process, PyDrive2, googleapiclient, the emulator over
HTTP); the multi-parent folders are seeded on the emulator's store, as docs/emulator.md says.
No sleeps."""
from __future__ import annotations

from _cli import run
from _drive_state import live_md5s
from drivestage.drive import marks_below


def _runs(tmp_path):
    runs = tmp_path / "runs"
    (runs / "exp2").mkdir(parents=True)
    for i in range(13):
        (runs / "exp2" / f"log{i}.txt").write_text(f"{i}\n")
    return runs


def _walk_asks(emulator) -> list:
    return [r.query.get("q") for r in emulator.requests if r.kind == "files.list"
            and r.query.get("fields") == marks_below.FIELDS]


def _parents(emulator, rel: str, *more: str) -> None:
    """Give the folder ``rel`` the folders ``more`` as parents too (kept from before 2020)."""
    rec = emulator.store.get(emulator.find(rel)["id"])
    emulator.store.update(rec["id"], parents=[*rec["parents"],
                                              *(emulator.find(m)["id"] for m in more)])


def _diamonds(emulator, levels: int) -> None:
    """``runs/old`` holding ``levels`` levels of two folders each, the second of every level
    a parent of the first's child too (kept from before 2020): 2 * levels folders, up to
    2^(levels-1) paths to the deepest."""
    at = "runs/old"
    for level in range(levels):
        emulator.add_folder(f"{at}/l{level}")
        emulator.add_folder(f"{at}/r{level}")
        at = f"{at}/l{level}"
    emulator.add_file(f"{at}/x.txt", b"z\n")
    parent = "runs/old"
    for level in range(1, levels):
        left_child = f"{parent}/l{level - 1}/l{level}"
        _parents(emulator, left_child, f"{parent}/r{level - 1}")
        parent = f"{parent}/l{level - 1}"


def test_a_chain_of_folders_with_two_parents_is_read_once_each(emulator, local_state,
                                                               drive_env, tmp_path):
    """``runs/old`` holds 13 levels of two folders each, the second of every level a parent of
    the first's child too (a chain of diamonds: 27 folders). Before, the re-check read each
    folder once for every path to it (up to 2^12): it passed its 1,000-folder bound and
    ``old`` was left, with a warning that it held more folders than could be read. Now each
    folder is read once: 27 listings, and ``old`` goes as planned."""
    _diamonds(emulator, 13)
    emulator.clear_requests()

    code, _, err = run("push", str(_runs(tmp_path)), "drive:runs", "--delete",
                       "--max-delete", "5000")

    assert code == 0, err
    assert set(live_md5s(emulator, "runs")) == {"exp2"}, err
    assert "WARNING drivestage.drive" not in err, err
    assert len(_walk_asks(emulator)) == 27, len(_walk_asks(emulator))


def test_the_plan_lists_a_chain_of_folders_with_two_parents_once_each(
        emulator, local_state, drive_env, tmp_path):
    """The same chain: the whole push lists each folder about once (under 100 listings).
    Before: 1,654, the count of what ``old`` holds (``extra._inside``) going down every path
    to each folder (fixed by walk37: a listing per folder id for the decision)."""
    _diamonds(emulator, 13)
    emulator.clear_requests()

    code, _, err = run("push", str(_runs(tmp_path)), "drive:runs", "--delete",
                       "--max-delete", "5000")

    assert code == 0, err
    assert len([r for r in emulator.requests if r.kind == "files.list"]) < 100
