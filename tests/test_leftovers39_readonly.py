"""A push into a local DEST that is there but read-only (leftovers39): a read-only disk
(EROFS, here a ``bindfs -o ro`` mount), a folder this user may not write (EACCES, EPERM).
The folder's own mkdir said so in one line (attackcli39); a file's copy into a folder that
was there ended in the traceback of ``open`` from ``LocalDirStore._copy``. Now one line
that names the folder and what to do, exit 1, and nothing written there. The real CLI,
forked (tests/_forkcli.py); root cannot meet EACCES, so a read-only mount stands for all."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)


@pytest.fixture
def read_only(tmp_path):
    """``(backing, mount)``: a read-only view of an empty folder's ``logs`` folder."""
    if shutil.which("bindfs") is None or os.geteuid() != 0:
        pytest.skip("needs bindfs and root (.ci/run installs bindfs)")
    back, mnt = tmp_path / "back", tmp_path / "mnt"
    (back / "logs").mkdir(parents=True)
    mnt.mkdir()
    made = subprocess.run(["bindfs", "-o", "ro", str(back), str(mnt)], capture_output=True,
                          text=True)
    if made.returncode != 0:
        pytest.skip(f"bindfs cannot mount here: {made.stderr.strip()}")
    try:
        yield back, mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_a_push_into_a_read_only_folder_is_one_line(read_only, local_state, tmp_path):
    back, mnt = read_only
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("hi")
    done = cli_server().run(["push", str(src), str(mnt / "logs")], env=dict(os.environ),
                            cwd=str(tmp_path), timeout=60, text=True)
    # (a FUSE mount: first the warning that a push into a Drive mount gets)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"Error: cannot write a.txt into the folder {mnt / 'logs'}: Read-only file system; "
        "give a folder this user can write")
    assert os.listdir(back / "logs") == []
