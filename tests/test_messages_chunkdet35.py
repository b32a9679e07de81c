"""Messages of the chunkdet35 fixes, as the user sees them (see docs/troubleshooting.md).

- A file added to a Drive folder where an archive of it extracted a member: the folder
  pull names both and the path, before a byte moves.
"""
from __future__ import annotations

import _cli
from _messages import error_line, renders, shown
from test_chunkdet35_order import BIG, _zip

HEADING = "… and the member … of … both land on …; a pull lets neither replace the other"


@renders(HEADING)
def test_a_file_added_where_a_member_lies(emulator, local_state, drive_env, tmp_path):
    dest = tmp_path / "d"
    emulator.add_file("F/a.zip", _zip({"ds/x": b"member", "ds/big": BIG}))
    assert _cli.run("pull", "drive:F", str(dest), "-x", "-q")[0] == 0
    emulator.add_file("F/ds/x", b"plain")

    code, _, err = _cli.run("pull", "drive:F", str(dest), "-x")

    assert code == 1, err
    shown(HEADING, error_line(err))
    assert error_line(err) == (
        f"Error: drive:F/ds/x and the member ds/x of drive:F/a.zip both land on "
        f"{dest / 'F/ds/x'}; a pull lets neither replace the other: rename one of them on "
        "Drive, or pull without one (--exclude 'ds/x' or --exclude 'a.zip')")
