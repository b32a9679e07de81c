"""attackout38: an item ``push --delete`` removes item by item from two folders of DEST
(``--exclude`` keeps each folder, so neither goes whole) is in no folder the push leaves:
outside38 lets it go. The check before each deletion now leaves any item also in a folder
other than the one it was listed in (a prune, a push's old copy: they never decided on its
other parents), and it cannot tell that push --delete did: the item stays, said in a line.

Through the real stack (the CLI in-process, PyDrive2, the emulator over HTTP). No sleeps."""
from __future__ import annotations

import pytest

from _cli import run
from test_attacksync36_walk import _parents
from test_outside38_delete import _ids, _src, _trashed


@pytest.mark.xfail(strict=True, reason=(
    "the store's check before a deletion knows only the folder an item was listed in: "
    "push --delete would have to tell it which other folders it removes the item from too "
    "(a parameter of RemoteStore.delete_many), or take it out of one with removeParents "
    "first; left: the item stays, in both, said in one line (attackout38)"))
def test_an_item_removed_item_by_item_from_two_folders_of_dest_goes(
        emulator, local_state, drive_env, tmp_path):
    emulator.add_file("runs/a/x.txt", b"x\n")
    emulator.add_file("runs/a/keep.log", b"log\n")
    emulator.add_file("runs/b/keep.log", b"log\n")
    _parents(emulator, "runs/a/x.txt", "runs/b")
    ids = _ids(emulator, "runs/a/x.txt")

    code, _, err = run("push", str(_src(tmp_path)), "drive:runs", "--delete",
                       "--exclude", "*.log")

    assert code == 0, err
    assert _trashed(emulator, ids) == {"runs/a/x.txt": True}, err
