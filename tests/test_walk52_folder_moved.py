"""walk52: a subfolder moved out of the pulled tree, or renamed in it, while a folder pull runs.

The look again at the end (stage_recheck) lists each folder the pull staged files from by its
id: a subfolder moved elsewhere on Drive, or renamed, still lists its files, unchanged, and
the pull ended exit 0 with a folder at a path Drive no longer had (the rerun staged it again
under its new name beside it: walk51's left). Now the folder above each one the walk took is
listed again too (a folder of folders as well), and one that no longer holds it under its
name fails the pull as a folder gone does: exit 1, naming it, nothing declared staged. The
change is made while the last file's download is held at its fifth byte (the emulator's
hold): after the subfolder's files were staged; no sleeps.
"""
from __future__ import annotations

import pytest

from _envs import env  # noqa: F401  (a fixture)
from _held_pull import pull_while_held
from _messages import error_line

LINE = ("Error: drive:run/{path} (a folder, and the 2 files staged from it) went away on Drive "
        "while this pull ran ({how} after the folder was listed: a run still writing there, "
        "its retention removing old checkpoints?), after it was staged: {folder} is a "
        "folder Drive no longer holds. Pull again once the folder is settled, or pull a run's "
        "folder once its trainer has stopped")


@pytest.mark.parametrize("path,how", [("old", "moved out of its folder"),
                                      ("old", "renamed to older"),
                                      ("set/old", "moved out of its folder")],
                         ids=["moved", "renamed", "moved-below-a-folder-of-folders"])
def test_a_subfolder_moved_or_renamed_during_the_pull_fails_it_named(emulator, env, tmp_path,
                                                                      path, how):
    emulator.add_file("run/a.txt", b"a" * 100)
    emulator.add_file(f"run/{path}/epoch_001.pt", b"p" * 100)
    emulator.add_file(f"run/{path}/epoch_002.pt", b"q" * 100)
    last = emulator.add_file("run/zz/train.log", b"l" * 100)
    emulator.add_folder("archive")
    old = emulator.find(f"run/{path}")["id"]
    above = emulator.find(f"run/{path}".removesuffix("/old"))["id"]   # (run, or run/set)
    if how.startswith("renamed"):
        def change():
            emulator.store.update_meta(old, {"title": "older"})
    else:
        def change():
            emulator.store.update_meta(old, {}, add_parents=[emulator.find("archive")["id"]],
                                       remove_parents=[above])
    code, out, err = pull_while_held(emulator, last, change, tmp_path / "d")
    folder = tmp_path / "d" / "run" / path
    # (its files staged before the folder went: the last download waited for the change)
    assert (folder / "epoch_001.pt").read_bytes() == b"p" * 100
    assert code == 1, err
    assert out == ""   # (nothing declared staged)
    assert error_line(err) == LINE.format(path=path, how=how, folder=folder), err
