"""An archive holding the temporary file of an interrupted atomic write (attackpull32).

A write that drivestage or the trainer makes (``localfs.atomic_file``: split and annotation
files, the image cache, checkpoints, sidecars) goes through ``.<name>.<tag>-<pid>.<random>.tmp``
beside the file, and a process killed mid-write leaves it in the folder, in the user's dataset.
A data root zipped whole then holds it as a member. On the machine that pulls the archive,
the next atomic write into that folder (the trainer's ``annotations/<year>_<split>.txt`` at
every start) removes it as a dead process's leftover (another machine's, a day old: the
member's mtime), so the next pull found a member gone and, with ``--remove-archive``
(``data.keep_archive: false``), downloaded the whole archive again to put it back: at every
start. Such a member is now left out of the extraction, said once; nothing else changes.
"""
from __future__ import annotations

import json
import os
import time

import pytest

import _cli
from _archives import a_fixed_zip, a_tgz, tree

LEFTOVER = "annotations/.2007_train.txt.abcdef01-4242.123abc.tmp"
DATA = {"VOCdevkit/a.jpg": b"jpg", "annotations/2007_val.txt": b"val lines\n",
        LEFTOVER: b"half a li"}


def _pull(name: str, dest) -> tuple[dict, str]:
    code, out, err = _cli.run("pull", f"drive:d/{name}", str(dest), "-x", "--remove-archive",
                              "--json")
    assert code == 0, err
    return json.loads(out), err


@pytest.mark.parametrize("name", ["data.zip", "data.tgz"])
def test_an_interrupted_write_s_leftover_in_an_archive_is_not_fetched_again_at_each_start(
        emulator, local_state, drive_env, fast_retries, tmp_path, name):
    from drivestage.localfs import atomic_write

    emulator.add_file(f"d/{name}", a_fixed_zip(DATA) if name.endswith(".zip") else a_tgz(DATA))
    dest = tmp_path / "data"
    first, err = _pull(name, dest)
    assert first["action"] == "download"
    assert tree(dest) == {"VOCdevkit/a.jpg": b"jpg", "annotations/2007_val.txt": b"val lines\n"}
    assert f"left out member {LEFTOVER!r} of {dest / name}: the temporary file of a write " \
        "that was interrupted where the archive was made, not part of the data" in err, err
    # The trainer's start: its annotation lines written beside the member's folder mates.
    atomic_write(str(dest / "annotations" / "2007_train.txt"), b"ours\n")
    emulator.clear_requests()

    again, err = _pull(name, dest)

    assert again["action"] == "cached"
    assert emulator.api_calls("media.download") == 0
    assert tree(dest) == {"VOCdevkit/a.jpg": b"jpg", "annotations/2007_val.txt": b"val lines\n",
                          "annotations/2007_train.txt": b"ours\n"}


def test_an_interrupted_write_s_leftover_in_a_drive_folder_is_not_pulled(
        emulator, local_state, drive_env, fast_retries, tmp_path):
    """The same leftover as a file of a Drive folder (a folder synced to Drive by another
    tool, from a machine where a save was killed: a checkpoint's may be gigabytes): a folder
    pull staged it, the next save into the folder removed it, and every pull downloaded it
    again. A folder pull now skips it, as a push leaves such files out."""
    from drivestage.localfs import atomic_write

    leftover = ".epoch_003.pt.abcdef01-4242.123abc.tmp"
    emulator.add_file(f"runs/exp1/{leftover}", b"half a checkpoint")
    emulator.add_file("runs/exp1/epoch_002.pt", b"a checkpoint")
    dest = tmp_path / "runs"
    code, out, err = _cli.run("pull", "drive:runs/exp1", str(dest), "--json")
    assert code == 0, err
    assert f"skipping drive:runs/exp1/{leftover}: the temporary file of a write that was " \
        "interrupted where it was made, not data" in err, err
    day_ago = time.time() - 2 * 86400   # (another machine's leftover is stale after a day)
    if (dest / "exp1" / leftover).exists():
        os.utime(dest / "exp1" / leftover, (day_ago, day_ago))
    atomic_write(str(dest / "exp1" / "epoch_003.pt"), b"the save")   # the next save
    emulator.clear_requests()

    code, out, err = _cli.run("pull", "drive:runs/exp1", str(dest), "--json")

    assert code == 0, err
    assert emulator.api_calls("media.download") == 0
    assert tree(dest) == {"exp1/epoch_002.pt": b"a checkpoint", "exp1/epoch_003.pt": b"the save"}
