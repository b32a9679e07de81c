"""docs/troubleshooting.md, "Checksums": each message made to happen (see tests/_messages.py)."""
from __future__ import annotations

import os

from click.testing import CliRunner

from _messages import renders, shown
from drivestage.cli import cli


def pull(*args: str) -> tuple[int, str]:
    """``drivestage pull ARGS`` in this process: its exit code and its stderr."""
    result = CliRunner().invoke(cli, ["pull", *args])
    return result.exit_code, result.stderr


@renders("the downloaded bytes do not match Drive")
def test_bytes_that_differ_from_drives_md5(emulator, drive_env, tmp_path):
    fid = emulator.add_file("VOC/set.zip", os.urandom(5000))
    emulator.faults.corrupt(fid)
    code, err = pull("drive:VOC/set.zip", str(tmp_path / "d"))
    assert code == 1
    shown("the downloaded bytes do not match Drive", err.splitlines()[-1])
