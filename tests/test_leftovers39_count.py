"""leftovers39: "--delete: removing N items" counted an item ``push --delete`` removes item
by item from two folders of DEST (an item with two parents, kept from before 2020) twice,
once per path: "removing 2 items" of one item. It counts items now, once each; the line
after the removals (where some were left) counts the same way.

Through the real stack (the CLI in-process, PyDrive2, the emulator over HTTP). No sleeps."""
from __future__ import annotations

from _cli import run
from test_attacksync36_walk import _parents
from test_outside38_delete import _ids, _src, _trashed


def _lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "WARNING" in line and (
        "--delete" in line or "was not deleted" in line)]


def test_an_item_removed_from_two_folders_counts_once(emulator, local_state, drive_env,
                                                      tmp_path):
    emulator.add_file("runs/a/x.txt", b"x\n")
    emulator.add_file("runs/a/keep.log", b"log\n")
    emulator.add_file("runs/b/keep.log", b"log\n")
    emulator.add_file("runs/b/y.txt", b"y\n")
    _parents(emulator, "runs/a/x.txt", "runs/b")
    ids = _ids(emulator, "runs/a/x.txt", "runs/b/y.txt", "runs/a/keep.log")

    code, _, err = run("push", str(_src(tmp_path)), "drive:runs", "--delete",
                       "--exclude", "*.log")

    assert code == 0, err
    assert _trashed(emulator, ids) == {"runs/a/x.txt": True, "runs/b/y.txt": True,
                                       "runs/a/keep.log": False}, err
    assert _lines(err) == [
        "WARNING drivestage.extra: --delete: removing 2 items from drive:runs that are not in "
        "SRC (to the Drive trash)"], err


def test_a_folder_holding_what_src_has_stays_after_a_run_folder_was_left(
        emulator, local_state, drive_env, tmp_path):
    """``runs/b`` holds ``runs/exp2/log.txt`` too (two parents), which SRC has: --delete
    leaves ``b`` whole, as its removal would take the file along. After a run folder was
    left (``runs/a``, which holds one, earlier in the listing) that check looked for the
    file's id in the text of the run folder's warning (a name reused): it missed, and only
    the later step that spares items kept the file, removing ``b``'s other files item by item
    under another line."""

    from drivestage.drive.resources import RUN_MARK

    emulator.add_file("runs/a/exp1/epoch_001.pt", b"ckpt\n")
    emulator.add_file("runs/exp2/log.txt", b"1\n")
    emulator.add_file("runs/b/other.txt", b"o\n")
    _parents(emulator, "runs/exp2/log.txt", "runs/b")
    ids = _ids(emulator, "runs/a", "runs/b", "runs/exp2/log.txt")
    emulator.set_properties(emulator.find("runs/a/exp1")["id"], [{"key": RUN_MARK, "value": "1",
                                             "visibility": "PUBLIC"}])

    code, _, err = run("push", str(_src(tmp_path)), "drive:runs", "--delete")
    assert code == 0, err
    assert _trashed(emulator, ids) == {"runs/a": False, "runs/b": False,
                                       "runs/exp2/log.txt": False}, err
    assert [x for x in _lines(err) if "drive:runs/b" in x] == [
        "WARNING drivestage.extra: --delete leaves drive:runs/b whole: it holds "
        "drive:runs/b/log.txt too (an item with two parents, kept from before 2020), which "
        "SRC has or the push keeps; its removal would take that along. Take it out of "
        "drive:runs/b on Drive"], err
