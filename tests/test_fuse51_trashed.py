"""fuse51: a file trashed (or moved out of its folder) on Drive while a folder pull runs.

Drive serves a trashed file to its owner by id, so a file listed by the walk and trashed
before its download downloads fine: the pull ended exit 0 with a file the folder no longer
held, nothing said (pull50's left). pull50 named a file *deleted* then (the download's 404).
Now the look again at the end (stage_recheck), which lists each folder again, treats a file
missing from the new listing the same way: the same line, exit 1. The change is made while
the file's own download is held at its fifth byte (the emulator's hold): after the listing,
before the look again; no sleeps.
"""
from __future__ import annotations

import os

import pytest

import drivestage
from drivestage.errors import NotFoundError

from _cli import run
from _envs import env  # noqa: F401  (a fixture)
from _held_pull import pull_while_held
from _local_src import old_files, once_staged
from _messages import error_line


def test_a_file_trashed_during_its_download_fails_the_pull_named(emulator, env, tmp_path):
    emulator.add_file("run/a.txt", b"a" * 100)
    gone_id = emulator.add_file("run/epoch_001.pt", b"p" * 100)
    emulator.add_file("run/train.log", b"l" * 100)
    code, _, err = pull_while_held(
        emulator, gone_id,
        lambda: emulator.store.update_meta(gone_id, {"labels": {"trashed": True}}),
        tmp_path / "d")
    assert code == 1, err
    target = tmp_path / "d" / "run" / "epoch_001.pt"
    assert error_line(err) == (
        "Error: drive:run/epoch_001.pt went away on Drive while this pull ran (trashed after "
        "the folder was listed: a run still writing there, its retention removing old "
        "checkpoints?), after it was staged: "
        f"{target} is a file the folder no longer holds. Pull again once the folder is "
        "settled, or pull a run's folder once its trainer has stopped"), err
    # (downloaded whole: Drive served the trashed file to its owner)
    assert target.read_bytes() == b"p" * 100


def test_a_file_moved_out_of_its_folder_during_its_download_fails_the_pull(
        emulator, env, tmp_path):
    emulator.add_file("run/a.txt", b"a" * 100)
    moved_id = emulator.add_file("run/epoch_001.pt", b"p" * 100)
    emulator.add_file("old/keep.txt", b"k")
    old = emulator.find("old")["id"]
    run_id = emulator.find("run")["id"]
    code, _, err = pull_while_held(
        emulator, moved_id,
        lambda: emulator.store.update_meta(moved_id, {}, add_parents=[old],
                                           remove_parents=[run_id]),
        tmp_path / "d")
    assert code == 1, err
    assert error_line(err).startswith(
        "Error: drive:run/epoch_001.pt went away on Drive while this pull ran (moved out of "
        "its folder after the folder was listed: "), err
    # The rerun lists the folder as it is now: nothing more to fetch, exit 0.
    code, _, err = run("pull", "-q", "drive:run", str(tmp_path / "d"))
    assert code == 0, err


def test_a_local_file_removed_after_its_copy_fails_the_pull_named(tmp_path):
    """The same for a local folder pulled: ``a.txt`` and ``b.txt``, copied, are removed from
    the folder while ``c.txt`` is copied (the pull's progress callback: one file at a time);
    the first is named, the other counted."""
    src, out = tmp_path / "ds", tmp_path / "out"
    old_files(src, {name: name.encode() * 50 for name in ("a.txt", "b.txt", "c.txt")})
    progress, removed = once_staged(
        out / "ds" / "b.txt", lambda: [os.unlink(src / n) for n in ("a.txt", "b.txt")])
    with pytest.raises(NotFoundError) as caught:
        drivestage.pull(str(src), str(out), jobs=1, progress=progress)
    assert removed, "a.txt and b.txt were never removed"
    assert str(caught.value) == (
        f"{src}/a.txt (and 1 more file) went away from its folder while this pull ran "
        "(deleted after the folder "
        "was listed: a run still writing there, its retention removing old checkpoints?), "
        f"after it was staged: {out}/ds/a.txt is a file the folder no longer holds. Pull "
        "again once the folder is settled, or pull a run's folder once its trainer has "
        "stopped")
