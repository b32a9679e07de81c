"""walk51: a whole subfolder trashed or deleted on Drive while a folder pull runs.

fuse51's look again at the end (stage_recheck) names a staged file the folder no longer
lists; a subfolder gone whole (its files staged) was skipped: the listing of a deleted
folder answers "not found", and the pull ended exit 0 with a folder Drive no longer holds,
nothing said. Now it is the same failure as a file gone, naming the folder: exit 1, nothing
declared staged. The change is made while the last file's download is held at its fifth
byte (the emulator's hold): after the subfolder's files were staged; no sleeps.
"""
from __future__ import annotations

import os
import shutil

import pytest

import drivestage
from drivestage.errors import NotFoundError

from _envs import env  # noqa: F401  (a fixture)
from _held_pull import pull_while_held
from _local_src import once_staged
from _messages import error_line


@pytest.mark.parametrize("how", ["trashed", "deleted"])
def test_a_subfolder_gone_during_the_pull_fails_it_named(emulator, env, tmp_path, how):
    emulator.add_file("run/a.txt", b"a" * 100)
    emulator.add_file("run/old/epoch_001.pt", b"p" * 100)
    emulator.add_file("run/old/epoch_002.pt", b"q" * 100)
    last = emulator.add_file("run/zz/train.log", b"l" * 100)
    old = emulator.find("run/old")["id"]
    change = (lambda: emulator.store.update_meta(old, {"labels": {"trashed": True}})) \
        if how == "trashed" else (lambda: emulator.store.delete(old))
    code, out, err = pull_while_held(emulator, last, change, tmp_path / "d")
    folder = tmp_path / "d" / "run" / "old"
    # (its files staged before the folder went: the last download waited for the change)
    assert (folder / "epoch_001.pt").read_bytes() == b"p" * 100
    assert code == 1, err
    assert out == ""   # (nothing declared staged)
    assert error_line(err) == (
        f"Error: drive:run/old (a folder, and the 2 files staged from it) went away on Drive "
        f"while this pull ran ({how} after the folder was listed: a run still writing there, "
        "its retention removing old checkpoints?), after it was staged: "
        f"{folder} is a folder Drive no longer holds. Pull again once the folder is "
        "settled, or pull a run's folder once its trainer has stopped"), err


def test_a_local_subfolder_removed_after_its_copy_fails_the_pull_named(tmp_path):
    """The same for a local folder pulled: ``sub/``, its file copied, is removed while
    ``zz/c.txt`` is copied (the pull's progress callback: one file at a time). Its listing
    at the look again answers "not found", and the pull ended exit 0 on main."""
    src, out = tmp_path / "ds", tmp_path / "out"
    for name in ("a.txt", "sub/b.txt", "zz/c.txt"):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(name.encode() * 50)
        os.utime(src / name, (1e9, 1e9))
    progress, removed = once_staged(out / "ds" / "sub" / "b.txt",
                                    lambda: shutil.rmtree(src / "sub"))
    with pytest.raises(NotFoundError) as caught:
        drivestage.pull(str(src), str(out), jobs=1, progress=progress)
    assert removed, "sub/ was never removed"
    assert str(caught.value) == (
        f"{src}/sub (a folder, and the file staged from it) went away from its folder while "
        "this pull ran (deleted after the folder was listed: a run still writing there, its "
        f"retention removing old checkpoints?), after it was staged: {out}/ds/sub is a folder "
        "its source no longer holds. Pull again once the folder is settled, or pull a run's "
        "folder once its trainer has stopped")
    assert (out / "ds" / "sub" / "b.txt").read_bytes() == b"sub/b.txt" * 50
