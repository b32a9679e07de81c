"""attackpull35: a pull from a local folder whose file's bytes did not match its checksum
twice (read back other bytes than were hashed: a file of /proc or /sys, whose size says 0;
a network or FUSE mount; a failing disk) said `the downloaded bytes do not match Drive …
The file may be changing on Drive, or something between here and Drive alters data`, of a
file that never was on Drive. It names the local file's case now; a Drive file's line is as
before (tests/test_messages_checksums.py)."""
from __future__ import annotations

import os

import pytest

from _cli import run


@pytest.mark.skipif(not os.path.exists("/proc/cpuinfo"), reason="needs Linux's /proc")
def test_a_local_file_read_back_other_than_hashed_is_not_said_of_drive(local_state,
                                                                        tmp_path):
    code, _, err = run("pull", "/proc/cpuinfo", str(tmp_path / "dest"))

    assert code == 1
    line = err.strip().splitlines()[-1]
    assert line.startswith("Error: /proc/cpuinfo: the bytes copied do not match the file as "
                           "it was hashed (expected md5 "), line
    assert line.endswith("twice. Deleted the download for safety. The file changes as it is "
                         "read, its size and times the same (a file of /proc or /sys, a "
                         "network or FUSE mount), or its disk reads back other bytes (a "
                         "failing disk)."), line
    assert "Drive" not in line
    assert not os.path.exists(tmp_path / "dest" / "cpuinfo")
