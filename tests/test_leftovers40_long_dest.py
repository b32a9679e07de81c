"""``pull drive:x/f DEST`` where the local path is longer than Linux takes (leftovers40).

It said ``cannot stage drive:x/f.txt into <4 KB of DEST>: File name too long``, exit 1, which
says nothing of what to do, where a folder pull's file that lands too deep gets a line that
does (``stage_walk``). A file pull now says the same, a usage error (exit 2), before a byte
is asked for; a DEST that is itself too long is named, shortened, before Drive is asked.
"""
from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from drivestage.cli import cli


def _deep(tmp_path, size: int) -> str:
    """A folder path of exactly ``size`` bytes under tmp_path (not made)."""
    top = str(tmp_path / "d")
    left = size - len(os.fsencode(top))
    parts = []
    while left > 0:
        take = min(200, left - 1)
        if left - 1 - take in range(1, 3):   # (no part shorter than 2 bytes at the end)
            take -= 3
        parts.append("e" * take)
        left -= take + 1
    path = top + "/" + "/".join(parts)
    assert len(os.fsencode(path)) == size
    return path


def test_a_file_that_would_land_too_deep_says_what_to_do(emulator, drive_env, local_state,
                                                        tmp_path):
    emulator.add_file("x/f.txt", b"hi")
    dest = _deep(tmp_path, 4_080)   # DEST fits; DEST/f.txt with its partial's 64 does not
    r = CliRunner().invoke(cli, ["pull", "drive:x/f.txt", dest])
    assert (r.exit_code, r.stderr) == (2, (
        "Error: drive:x/f.txt: its local path would be 4,086 bytes, and a download needs 64 "
        "more for its partial file, over the 4,095 bytes Linux takes; pull it into a folder "
        "with a shorter path\n")), r.output
    assert not os.path.lexists(tmp_path / "d")


@pytest.mark.parametrize("what", ["drive:x/f.txt", "drive:x"])
def test_a_dest_too_long_is_named_short(emulator, drive_env, local_state, tmp_path, what):
    emulator.add_file("x/f.txt", b"hi")
    dest = _deep(tmp_path, 4_200)
    r = CliRunner().invoke(cli, ["pull", what, dest])
    assert (r.exit_code, r.stderr) == (2, (
        f"Error: DEST {dest[:100]}...{dest[-100:]} is 4,200 bytes long, over the 4,095 "
        "bytes Linux takes in a path; pull into a folder with a shorter path\n")), r.output
    assert not os.path.lexists(tmp_path / "d")
