"""A Drive folder holding ``.drivestage-held.<12>.<name>`` items (a Drive mount synced from a
local DEST; or anyone's folder): since pair36 a folder pull takes such a copy under the
name it stands for. A title whose rest is no file name (``..``, ``.``) stood for that:
the whole pull failed, naming ``'..'``, an item the folder does not hold (before pair36 it
was left out as drivestage's own) (found by attacknet36)."""
from __future__ import annotations

import os

import pytest

from _cli import run
from drivestage.local_held import PREFIX as HELD_PREFIX


@pytest.mark.parametrize("rest", ["..", "."])
def test_a_drive_item_named_as_a_copy_aside_of_no_file_name_is_left_out(
        emulator, drive_env, local_state, tmp_path, rest):
    emulator.add_file("run/a.txt", b"data")
    emulator.add_file(f"run/{HELD_PREFIX}0123456789ab.{rest}", b"planted")

    code, _, err = run("pull", "drive:run", str(tmp_path / "x"))

    assert code == 0, err
    assert sorted(os.listdir(tmp_path / "x" / "run")) == [".drivestage", "a.txt"]
    assert (tmp_path / "x" / "run" / "a.txt").read_bytes() == b"data"


def test_a_local_file_named_as_a_copy_aside_of_dot_dot_is_left_out(local_state, tmp_path):
    """The same in a local folder pulled: the store listed the file as ``..``."""
    folder = tmp_path / "nas" / "run"
    folder.mkdir(parents=True)
    (folder / "a.txt").write_bytes(b"data")
    (folder / f"{HELD_PREFIX}0123456789ab..").write_bytes(b"planted")

    code, _, err = run("pull", str(folder), str(tmp_path / "x"))

    assert code == 0, err
    assert sorted(os.listdir(tmp_path / "x" / "run")) == [".drivestage", "a.txt"]
