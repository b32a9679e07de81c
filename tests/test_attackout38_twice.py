"""attackout38: an item ``push --delete`` removes item by item from two folders of DEST
(``--exclude`` keeps each folder, so neither goes whole) is in no folder the push leaves:
outside38 lets it go. The check before each deletion leaves any item also in a folder
other than the one it was listed in (a prune, a push's old copy: they never decided on its
other parents); push --delete tells it the folders it removes the item from
(``RemoteStore.delete_many``'s ``removed_from``, parents39), and the item goes. One also in a
folder outside what the push removes still stays.

Through the real stack (the CLI in-process, PyDrive2, the emulator over HTTP). No sleeps."""
from __future__ import annotations

from _cli import run
from test_attacksync36_walk import _parents
from test_outside38_delete import _ids, _src, _trashed


def test_an_item_removed_item_by_item_from_two_folders_of_dest_goes(
        emulator, local_state, drive_env, tmp_path):
    emulator.add_file("runs/a/x.txt", b"x\n")
    emulator.add_file("runs/a/keep.log", b"log\n")
    emulator.add_file("runs/b/keep.log", b"log\n")
    _parents(emulator, "runs/a/x.txt", "runs/b")
    ids = _ids(emulator, "runs/a/x.txt", "runs/a/keep.log", "runs/b/keep.log")

    code, _, err = run("push", str(_src(tmp_path)), "drive:runs", "--delete",
                       "--exclude", "*.log")

    assert code == 0, err
    assert _trashed(emulator, ids) == {"runs/a/x.txt": True, "runs/a/keep.log": False,
                                       "runs/b/keep.log": False}, err
    assert "was not deleted" not in err and "--delete kept" not in err, err


def test_an_item_removed_from_a_folder_and_with_another_folder_that_goes_whole_goes(
        emulator, local_state, drive_env, tmp_path):
    """``runs/a/x.txt`` is ``runs/c/x.txt`` too; ``a`` goes item by item (it keeps a log),
    ``c`` goes whole: x goes, said by no line that it was not (before: said kept, then taken
    along with ``c``)."""
    emulator.add_file("runs/a/x.txt", b"x\n")
    emulator.add_file("runs/a/keep.log", b"log\n")
    emulator.add_file("runs/c/y.txt", b"y\n")
    _parents(emulator, "runs/a/x.txt", "runs/c")
    ids = _ids(emulator, "runs/a/x.txt", "runs/a/keep.log", "runs/c")

    code, _, err = run("push", str(_src(tmp_path)), "drive:runs", "--delete",
                       "--exclude", "*.log")

    assert code == 0, err
    assert _trashed(emulator, ids) == {"runs/a/x.txt": True, "runs/a/keep.log": False,
                                       "runs/c": True}, err
    assert "was not deleted" not in err and "--delete kept" not in err, err


def test_an_item_in_two_folders_of_dest_and_one_outside_it_stays(
        emulator, local_state, drive_env, tmp_path):
    """The same item in ``Docs`` too: the push removes it from both folders of DEST, not
    from ``Docs``: it stays in all three, said once."""
    emulator.add_file("runs/a/x.txt", b"x\n")
    emulator.add_file("runs/a/keep.log", b"log\n")
    emulator.add_file("runs/b/keep.log", b"log\n")
    emulator.add_folder("Docs")
    _parents(emulator, "runs/a/x.txt", "runs/b", "Docs")
    ids = _ids(emulator, "runs/a/x.txt")

    code, _, err = run("push", str(_src(tmp_path)), "drive:runs", "--delete",
                       "--exclude", "*.log")

    assert code == 0, err
    assert _trashed(emulator, ids) == {"runs/a/x.txt": False}, err
    assert [c["title"] for c in emulator.store.children(emulator.find("Docs")["id"])] == \
        ["x.txt"], err
    kept = [line for line in err.splitlines() if "--delete kept" in line]
    assert len(kept) in (1, 2) and all("a folder outside drive:runs" in k for k in kept), err
