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

from _envs import env_user_lines  # noqa: F401  (a fixture)
from _messages import command_error as error
from _messages import renders, shown
from drivestage.cli import cli

HEADING = "is not valid Unicode (half of a surrogate pair)"
NAME = "a\ud800b.bin"


pytestmark = pytest.mark.usefixtures("env")   # (_envs.env_user_lines: for every test)


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


PUSH_HEADING = "the name is not valid UTF-8 (…), and a Drive name is Unicode"


@renders(PUSH_HEADING)
def test_a_push_of_a_file_whose_name_is_not_utf8_says_so_in_one_line(emulator, tmp_path):
    """``café.bin`` as Latin-1 bytes (a zip made on Windows, extracted as is): the push ended
    in ``UnicodeEncodeError: 'utf-8' codec can't encode character '\\udce9'`` (a lock's
    name), at every push of the folder. Now one line, exit 2, nothing sent; with the
    ``--exclude`` it names, the rest goes."""
    src = tmp_path / "src"
    src.mkdir()
    with open(os.path.join(os.fsencode(str(src)), b"caf\xe9.bin"), "wb") as fh:
        fh.write(b"latin-1 name")
    (src / "ok.bin").write_bytes(b"ok")
    line = error("push", str(src), "drive:F", code=2)
    assert line == (f"Error: {src}/caf\\udce9.bin: the name is not valid UTF-8 "
                    "(b'caf\\xe9.bin'), and a Drive name is Unicode: rename it (convmv -f "
                    "latin1 -t utf8), or leave it out of the push (--exclude $'caf\\xe9.bin')")
    shown(PUSH_HEADING, line)
    assert emulator.find("F") is None
    # (the word as bash reads it: mount52's $'…', the byte itself, where a ? was)
    result = CliRunner().invoke(cli, ["push", str(src), "drive:F", "--exclude", "caf\udce9.bin"])
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert emulator.find("F/ok.bin") is not None


def test_a_push_of_a_folder_whose_name_is_not_utf8_says_so_in_one_line(emulator, tmp_path):
    src = tmp_path / "src"
    os.makedirs(os.path.join(os.fsencode(str(src)), b"d\xfcr"))
    line = error("push", str(src), "drive:F", code=2)
    assert line == (f"Error: {src}/d\\udcfcr: the name is not valid UTF-8 (b'd\\xfcr'), and a "
                    "Drive name is Unicode: rename it (convmv -f latin1 -t utf8), or leave it "
                    "out of the push (--exclude $'d\\xfcr')")


ARG_HEADING = "a Drive path is Unicode text, and this one holds bytes that are not UTF-8"


@renders(ARG_HEADING)
def test_a_drive_path_typed_with_bytes_that_are_not_utf8(emulator):
    """``drivestage ls $'drive:F/s\\xff'`` (a terminal in Latin-1): Python reads the byte as
    a lone surrogate, the listing's query could not be encoded, and the error blamed the
    server (``the server's answer is not what Drive sends (UnicodeEncodeError ...); is
    --api-root / DRIVESTAGE_API_ROOT a Drive API?``)."""
    emulator.add_file("F/ok.bin", b"fine")
    line = error("ls", "drive:F/s\udcff", code=2)
    assert line == ("Error: 'drive:F/s\\udcff': a Drive path is Unicode text, and this one "
                    "holds bytes that are not UTF-8 (a terminal or script in another "
                    "encoding?); type it again in UTF-8")
    shown(ARG_HEADING, line)
