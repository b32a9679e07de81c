"""attackpush41: pull's "is in the trash" line (trashed40) when the item of that name in the
trash is not what the path needed. It said ``drive:runs/a is in the trash; restore it first
(drive:runs/a/f.txt is in it)`` for a trashed folder ``a`` that never held f.txt (a folder
trashed, made anew and removed since: a restore brings back other items), and for a trashed
*file* ``a``, whose restore leads nowhere. Now a step the path goes on from counts only as a
folder (or a shortcut), and the line says the path goes through it, which is what is known.
The real PyDrive2 stack against the emulator."""
from __future__ import annotations

import pytest

from _cli import run
from _messages import error_line


def _pull(tmp_path):
    return run("pull", "drive:runs/a/f.txt", str(tmp_path / "out"))


def test_a_trashed_folder_the_path_goes_through_is_said_so(emulator, drive_env, local_state,
                                                          tmp_path):
    emulator.add_file("runs/a/g.txt", b"g")   # (no f.txt in it)
    emulator.store.set_trashed(emulator.find("runs/a")["id"], True)
    code, out, err = _pull(tmp_path)
    assert code == 1, err
    assert error_line(err) == ("Error: drive:runs/a is in the trash; restore it first (the "
                               "path drive:runs/a/f.txt goes through it)"), err


def test_a_trashed_file_of_a_folders_name_is_no_step_of_the_path(emulator, drive_env,
                                                                 local_state, tmp_path):
    emulator.add_file("runs/keep.txt", b"k")
    emulator.add_file("runs/a", b"a file, not a folder")
    emulator.store.set_trashed(emulator.find("runs/a")["id"], True)
    code, out, err = _pull(tmp_path)
    assert code == 1, err
    line = error_line(err)
    assert "trash" not in line and "not found" in line, line
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*"))
