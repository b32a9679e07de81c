"""An empty SRC, DEST or PATH (attackcli39): what a script passes when the shell variable
that holds it is unset (``drivestage push logs "$DEST"``). The empty string was taken for
the working folder: ``push logs ""`` copied SRC's files into it (``push logs -> : 1
uploaded``, exit 0), ``pull drive:F ""`` wrote there, ``dedupe ""``, ``ls ""`` and
``runs forget ""`` acted on it, and ``pull "" d`` said ``cannot pull  into d``. Each is now a
usage error (exit 2) that names the argument, before anything is read or written. The real
CLI, forked with its imports done (tests/_forkcli.py), against the emulator."""
from __future__ import annotations

import os

import pytest

from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)


def _run(args, env, cwd):
    done = cli_server().run(args, env=env, cwd=str(cwd), timeout=60, text=True)
    return done.returncode, done.stderr


@pytest.fixture
def setup(emulator, drive_env, local_state, tmp_path):
    emulator.add_file("F/a.bin", b"alpha")
    src = tmp_path / "src"
    src.mkdir()
    (src / "f.txt").write_text("hi")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    return dict(os.environ), src, cwd


FOLDER = "give a drive: path, a Drive link or a local folder"


@pytest.mark.parametrize("args, line", [
    (["push", "{src}", ""], "Error: DEST is empty (an unset variable?); " + FOLDER),
    (["push", "", "drive:G"], "Error: SRC is empty (an unset variable?); give the local "
                              "folder to push (e.g. logs/)"),
    (["mirror", "{src}", "", "--every", "600"], "Error: DEST is empty (an unset variable?); "
                                                + FOLDER),
    (["mirror", "", "drive:G", "--every", "600"], "Error: SRC is empty (an unset variable?); "
                                                  "give the local folder to mirror (e.g. logs/)"),
    (["pull", "drive:F", ""], "Error: DEST is empty (an unset variable?); give the local "
                              "folder to pull into (e.g. ./data)"),
    (["pull", "", "{cwd}/d"], "Error: SRC is empty (an unset variable?); give a drive: path, "
                              "a Drive link or a local path"),
    (["ls", ""], "Error: PATH is empty (an unset variable?); " + FOLDER),
    (["prune", "", "--keep-last", "1"], "Error: DEST is empty (an unset variable?); " + FOLDER),
    (["dedupe", ""], "Error: DEST is empty (an unset variable?); " + FOLDER),
    (["runs", "forget", ""], "Error: DEST is empty (an unset variable?); " + FOLDER),
])
def test_an_empty_path_is_a_usage_error_that_names_it(setup, args, line):
    env, src, cwd = setup
    (cwd / "mine.txt").write_text("the user's")
    code, err = _run([a.format(src=src, cwd=cwd) for a in args], env, cwd)
    assert (code, err) == (2, line + "\n")
    # Nothing written in the working folder, nor sent to Drive.
    assert sorted(os.listdir(cwd)) == ["mine.txt"]


WINDOWS = ("is a Windows path, and this machine's paths are written /content/data or ./data: "
           "give one of this machine's")


@pytest.mark.parametrize("args, line", [
    (["ls", "C:\\Users\\me\\data"], "Error: PATH C:\\Users\\me\\data " + WINDOWS),
    (["prune", "C:\\runs", "--keep-last", "1"], "Error: DEST C:\\runs " + WINDOWS),
    (["dedupe", "D:/runs"], "Error: DEST D:/runs " + WINDOWS),
    (["runs", "forget", "C:\\runs\\exp1"], "Error: DEST C:\\runs\\exp1 " + WINDOWS),
])
def test_a_windows_path_is_refused_by_every_command(setup, args, line):
    """``ls 'C:\\Users\\me\\data'`` (copied from a guide written on Windows) looked for a
    local folder of that name and hinted ``a folder on Google Drive is written
    drive:C:\\Users\\me\\data``; push, pull and mirror said what it is, and now so do ls,
    prune, dedupe and runs forget."""
    env, _src, cwd = setup
    code, err = _run(args, env, cwd)
    assert (code, err) == (2, line + "\n")
