"""A Drive title holding half of a UTF-16 surrogate pair (attack28, a lying server): Drive's
JSON may carry ``"a\\ud800b.bin"``, which Python reads as a string no file system encoding
takes. ``drivestage ls`` ended in a traceback (``UnicodeEncodeError: 'utf-8' codec can't
encode character '\\ud800'``), and so did a pull of the folder, or of the file, before
anything was said. Now ``ls`` shows the character escaped, as it shows a control character,
and a pull refuses the name in one line that says how to go on (``--exclude``); the rest of
the folder comes with ``--exclude``."""
from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from _messages import command_error as error
from _messages import renders, shown
from drivestage.cli import cli

HEADING = "is not valid Unicode (half of a surrogate pair)"
NAME = "a\ud800b.bin"


@pytest.fixture(autouse=True)
def _env(local_state, drive_env, fast_retries, monkeypatch):
    monkeypatch.delenv("DRIVESTAGE_DEBUG", raising=False)


def test_ls_shows_a_lone_surrogate_escaped(emulator):
    emulator.add_file(f"F/{NAME}", b"lone surrogate")
    result = CliRunner().invoke(cli, ["ls", "drive:F"])
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert result.stdout.rstrip("\n").endswith("  a\\ud800b.bin"), result.stdout


@renders(HEADING)
def test_a_pull_refuses_a_lone_surrogate_in_one_line_and_takes_the_rest_with_exclude(
        emulator, tmp_path):
    emulator.add_file("F/ok.bin", b"fine")
    emulator.add_file(f"F/{NAME}", b"lone surrogate")
    dest = tmp_path / "data"
    line = error("pull", "drive:F", str(dest), code=2)
    assert line == ("Error: drive:F: the remote name a\\ud800b.bin is not valid Unicode (half "
                    "of a surrogate pair): no local file name can be it. Rename it on Drive, "
                    "or leave it out of a folder pull (--exclude)")
    shown(HEADING, line)
    assert not os.path.exists(dest / "F" / "ok.bin")
    result = CliRunner().invoke(cli, ["pull", "drive:F", str(dest), "--exclude", "a?b.bin"])
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert sorted(n for n in os.listdir(dest / "F") if n != ".drivestage") == ["ok.bin"]
    assert (dest / "F" / "ok.bin").read_bytes() == b"fine"


def test_a_pull_of_the_file_itself_refuses_it_in_one_line(emulator, tmp_path):
    emulator.add_file(f"F/{NAME}", b"lone surrogate")
    line = error("pull", f"drive:F/{NAME}", str(tmp_path / "data"), code=2)
    assert line == ("Error: drive:F/a\\ud800b.bin: the remote name a\\ud800b.bin is not valid "
                    "Unicode (half of a surrogate pair): no local file name can be it. Rename "
                    "it on Drive, or leave it out of a folder pull (--exclude)")
    assert not os.path.exists(tmp_path / "data" / "a")
