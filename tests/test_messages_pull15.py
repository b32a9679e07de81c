"""docs/troubleshooting.md: the messages of the fifteenth session's fixes, each made to
happen (see tests/_messages.py): a pull that finds a file of the user's at its target, a
folder pull that meets a link or a file inside its tree or a name no local file system
takes, and an upload whose server answers a Range that is no byte range, or whose state
folder cannot be written."""
from __future__ import annotations

import os

import pytest

from _envs import env_user_lines_two_tries  # noqa: F401  (a fixture)
from _messages import command_error as error
from _messages import renders, shown
from _tmpfs import small_disk  # noqa: F401 (a fixture)
from test_attack15_uploads import _remount_read_only


pytestmark = pytest.mark.usefixtures("env")   # (_envs.env_user_lines_two_tries)


@renders("is already there and is not a copy of … that drivestage staged (its bytes differ); "
         "move it away, or pull with --force to replace it")
def test_a_file_of_the_users_at_the_target(emulator, tmp_path):
    emulator.add_file("d/notes.txt", b"Drive's notes")
    dest = tmp_path / "data"
    dest.mkdir()
    (dest / "notes.txt").write_bytes(b"my own notes")
    line = error("pull", "drive:d/notes.txt", str(dest))
    shown("is already there and is not a copy of … that drivestage staged (its bytes differ); "
          "move it away, or pull with --force to replace it", line)
    assert str(dest / "notes.txt") in line
    assert (dest / "notes.txt").read_bytes() == b"my own notes"


@renders("is a link; a folder pull writes only into real folders inside …, never through a "
         "link", "is a file where the folder pull needs a folder (Drive has a folder of that "
         "name)")
def test_a_link_or_a_file_inside_the_pulled_tree(emulator, tmp_path):
    emulator.add_file("F/sub/b.txt", b"b")
    dest, outside = tmp_path / "data", tmp_path / "outside"
    outside.mkdir()
    (dest / "F").mkdir(parents=True)
    os.symlink(outside, dest / "F" / "sub")
    line = error("pull", "drive:F", str(dest))
    shown("is a link; a folder pull writes only into real folders inside …, never through a "
          "link", line)
    assert os.listdir(outside) == []
    os.unlink(dest / "F" / "sub")
    (dest / "F" / "sub").write_bytes(b"a file of mine")
    line = error("pull", "drive:F", str(dest))
    shown("is a file where the folder pull needs a folder (Drive has a folder of that name)",
          line)
    assert (dest / "F" / "sub").read_bytes() == b"a file of mine"


@renders("the remote name … is … bytes long; local file systems allow at most …")
def test_a_remote_name_too_long_for_a_local_file(emulator, tmp_path):
    emulator.add_file("F/" + "é" * 140, b"x")  # 280 bytes in UTF-8
    line = error("pull", "drive:F", str(tmp_path / "data"), code=2)
    shown("the remote name … is … bytes long; local file systems allow at most …", line)
    assert "is 280 bytes long" in line and "--exclude" in line


@renders("the server answered 'resume incomplete' with Range …, which is no byte range")
def test_a_308_whose_range_is_no_byte_range(emulator, tmp_path):
    src = tmp_path / "logs"
    src.mkdir()
    (src / "epoch_001.pt").write_bytes(os.urandom(300 << 10))
    emulator.faults.inject("PUT", r"upload_id=", status=308, body="",
                           headers={"Range": "bytes=0-oops"}, times=None)
    line = error("push", str(src), "drive:Models/logs", "--chunk-size", "256KiB")
    shown("the server answered 'resume incomplete' with Range …, which is no byte range", line)
    assert "bytes=0-oops" in line


@renders("cannot lock … for this push in drivestage's state folder …; point "
         "DRIVESTAGE_STATE_DIR at a folder you can write")
def test_a_state_folder_that_cannot_be_written(emulator, tmp_path, small_disk, monkeypatch):
    state = small_disk(64 << 10)
    _remount_read_only(state)
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(state))
    src = tmp_path / "logs"
    src.mkdir()
    (src / "epoch_001.pt").write_bytes(b"weights")
    line = error("push", str(src), "drive:Models/logs")
    shown("cannot lock … for this push in drivestage's state folder …; point "
          "DRIVESTAGE_STATE_DIR at a folder you can write", line)
    assert str(state) in line


@renders("is a folder; … would be saved there as a file. Move the folder away or pull into "
         "another DEST")
def test_a_folder_at_the_name_a_file_pull_writes(emulator, tmp_path):
    emulator.add_file("d/data.bin", b"x")
    dest = tmp_path / "data"
    (dest / "data.bin").mkdir(parents=True)
    (dest / "data.bin" / "mine.txt").write_bytes(b"mine")
    line = error("pull", "drive:d/data.bin", str(dest))  # exit 1: DEST's state, no usage error
    shown("is a folder; … would be saved there as a file. Move the folder away or pull into "
          "another DEST", line)
    assert (dest / "data.bin" / "mine.txt").read_bytes() == b"mine"
