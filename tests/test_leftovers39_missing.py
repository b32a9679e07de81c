"""A local path the user typed that is not there is a usage error, exit 2 (leftovers39), as
README's exit-code table says of a bad path and as click's ``Path(exists=True)`` makes it:
``push /no/such drive:x`` exited 1, as did ``mirror``, ``pull``, ``ls``, ``prune``,
``runs forget`` and ``dedupe`` of a missing local path. A ``drive:`` path that is not there stays exit 1:
it is looked up on a server, where another machine's push may bring it. The real CLI,
forked with its imports done (tests/_forkcli.py), against the emulator."""
from __future__ import annotations

import os

import pytest

from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)


def _run(args, cwd):
    done = cli_server().run(args, env=dict(os.environ), cwd=str(cwd), timeout=60, text=True)
    return done.returncode, done.stderr


@pytest.fixture
def cwd(emulator, drive_env, local_state, tmp_path):
    emulator.add_file("F/a.bin", b"alpha")
    (tmp_path / "cwd").mkdir()
    return tmp_path / "cwd"


@pytest.mark.parametrize("args, line", [
    (["push", "/no/such", "drive:G"],
     "Error: /no/such is not a local folder; give the folder to push (e.g. logs/)"),
    (["mirror", "/no/such", "drive:G", "--every", "600"],
     "Error: /no/such is not a local folder; give the folder to mirror (e.g. logs/)"),
    (["pull", "/no/such.zip", "d"],
     "Error: no such file or folder: /no/such.zip (looked up as 'no/such.zip')"),
    (["pull", "VOC/x.zip", "d"],
     "Error: no such file or folder: {cwd}/VOC/x.zip (looked up as 'VOC/x.zip'); a file on "
     "Google Drive is written drive:VOC/x.zip"),
    (["ls", "/no/such"], "Error: no such file or folder: /no/such (looked up as 'no/such')"),
    (["prune", "/no/such", "--keep-last", "1"],
     "Error: no such file or folder: /no/such (looked up as 'no/such')"),
    (["runs", "forget", "/no/such"],
     "Error: no such file or folder: /no/such (looked up as 'no/such')"),
    (["dedupe", "/no/such"],
     "Error: /no not found (no item named 'no' in /; names are case-sensitive)"),
])
def test_a_missing_local_path_is_a_usage_error(cwd, args, line):
    code, err = _run(args, cwd)
    assert (code, err) == (2, line.format(cwd=cwd) + "\n")
    assert os.listdir(cwd) == []


def test_a_missing_drive_path_stays_exit_1(cwd):
    code, err = _run(["pull", "drive:F/b.bin", "d"], cwd)
    assert code == 1 and err.startswith("Error: drive:F/b.bin not found"), err
