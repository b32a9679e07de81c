"""A pull under a locale whose file names cannot hold a Drive name's characters
(attackcli40): ``LC_ALL=C PYTHONUTF8=0`` (ASCII file names; a Latin-1 locale has no €)
ended a pull of ``drive:data`` holding ``ñ.txt`` in ``UnicodeEncodeError`` from
``os.fsencode``, a traceback. One line now, naming the name, the encoding and what to do,
exit 2 as for the other names a local disk cannot take; nothing is written. And a Drive
path typed in UTF-8 there was refused as not UTF-8."""
from __future__ import annotations

import os

import pytest

from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)


ASCII = {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}


@pytest.mark.parametrize("spec, where", [
    ("drive:data", "drive:data"),
    # (the argument as this locale read it: its bytes, each a lone surrogate, escaped)
    ("drive:data/\u00f1.txt", "drive:data/\\udcc3\\udcb1.txt"),
])
def test_a_name_the_locale_cannot_encode_is_one_line(emulator, drive_env, local_state,
                                                     tmp_path, spec, where):
    emulator.add_file("data/ok.txt", b"ok")
    emulator.add_file("data/\u00f1.txt", b"n")
    done = cli_server().run(["pull", spec, str(tmp_path / "out")],
                            env={**os.environ, **ASCII}, timeout=60)
    assert (done.returncode, done.stderr.decode()) == (2, (
        f"Error: {where}: the remote name \u00f1.txt cannot be a file name here: this system "
        "names files in ascii (its locale: LC_ALL=C), which has no '\u00f1'; run with a "
        "UTF-8 locale (LC_ALL=C.UTF-8) or PYTHONUTF8=1, or leave it out of a folder pull "
        "(--exclude)\n"))
    assert not any((tmp_path / "out").rglob("*.txt")) if (tmp_path / "out").exists() else True


def test_a_drive_path_typed_in_utf8_under_that_locale_is_found(emulator, drive_env,
                                                               local_state):
    """``ls drive:data/ñ.txt`` (typed in UTF-8, read by the locale as ASCII: two lone
    surrogates) said the path held bytes that are not UTF-8 and to type it again in UTF-8,
    as it was; its bytes are taken as UTF-8 now, and the file is found."""
    emulator.add_file("data/\u00f1.txt", b"n")
    done = cli_server().run(["ls", "drive:data/\u00f1.txt"], env={**os.environ, **ASCII},
                            timeout=60)
    assert (done.returncode, done.stderr) == (0, b"")
    assert done.stdout.decode().rstrip().endswith("  \u00f1.txt")


def test_a_push_of_utf8_names_under_that_locale_blames_the_locale(emulator, drive_env,
                                                                  local_state, tmp_path):
    """A push of ``logs/ñ.txt`` there said the name was not valid UTF-8 (``b'\\xc3\\xb1'``,
    which is) and to rename it with ``convmv -f latin1 -t utf8``: that makes it ``Ã±.txt``
    for good. It names the locale now, as a pull does; nothing is sent."""
    src = tmp_path / "logs"
    src.mkdir()
    (src / "\u00f1.txt").write_text("n")
    done = cli_server().run(["push", str(src), "drive:logs"], env={**os.environ, **ASCII},
                            timeout=60)
    assert (done.returncode, done.stderr.decode()) == (2, (
        f"Error: {src}/\u00f1.txt: the name is UTF-8, but this system names files in ascii "
        "(its locale: LC_ALL=C), which cannot read it; run with a UTF-8 locale "
        "(LC_ALL=C.UTF-8) or PYTHONUTF8=1, or leave it out of the push "
        "(--exclude $'\\xc3\\xb1.txt')\n"))
    assert emulator.find("logs") is None
