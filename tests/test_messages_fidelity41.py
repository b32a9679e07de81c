"""docs/troubleshooting.md, "… this account has most likely reached Drive's daily download
cap …" (fidelity41; see tests/_messages.py): a folder pull whose account reached Drive's
daily download cap (every file 403 downloadQuotaExceeded, the per-file quota's body) stops
after three refusals in a row with one line. Before, it asked for every file and printed
one message per file, each advising a copy the cap refuses too."""
from __future__ import annotations

from _messages import command_error as error
from _messages import renders, shown

HEADING = "… this account has most likely reached Drive's daily download cap …"


@renders(HEADING)
def test_a_folder_pull_under_the_accounts_download_cap_ends_in_one_line(
        emulator, local_state, drive_env, fast_retries, tmp_path):
    for i in range(8):
        emulator.add_file(f"F/f{i:02d}.bin", bytes([65 + i]) * 100)
    emulator.set_api_quota(None, download_bytes_per_day=150)   # f00 and f01 come

    line = error("pull", "-j", "1", "drive:F", str(tmp_path / "d"))

    shown(HEADING, line)
    assert line == (
        "Error: drive:F: Drive refused 3 files in a row as downloaded too often (HTTP 403 "
        "downloadQuotaExceeded) and served none since: this account has most likely reached "
        "Drive's daily download cap (about 10 TB per user per day), which refuses every file "
        "with that answer, so no other file was started. 2 staged, 6 not (drive:F/f02.bin, "
        "drive:F/f03.bin, drive:F/f04.bin and 3 more). Not retried: the cap lifts within 24 "
        "hours; pull again then, and only what is missing comes. (If only these files are "
        "popular ones, pull the rest with --exclude.)"), line
    assert emulator.api_calls("media.download") == 5
    assert sorted(p.name for p in (tmp_path / "d" / "F").iterdir()
                  if not p.name.startswith(".")) == ["f00.bin", "f01.bin"]
