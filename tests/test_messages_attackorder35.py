"""Messages of the attackorder35 fixes, as the user sees them (see docs/troubleshooting.md).

- A Drive folder where an archive of the same folder pull holds a file: the first pull
  refuses the archive, naming the folder.
"""
from __future__ import annotations

import _cli
from _messages import error_line, renders, shown
from test_chunkdet35_order import BIG, _zip

HEADING = "is a folder the pull stages from Drive; refusing the archive"


@renders(HEADING)
def test_a_member_file_on_a_drive_folder(emulator, local_state, drive_env, tmp_path):
    dest = tmp_path / "d"
    emulator.add_file("F/a.zip", _zip({"ds/x": b"member", "ds/big": BIG}))
    emulator.add_file("F/ds/x/y", b"plain")

    code, _, err = _cli.run("pull", "drive:F", str(dest), "-x")

    assert code == 1, err
    shown(HEADING, error_line(err))
    assert error_line(err) == (
        f"Error: member 'ds/x' of a.zip is a file, but {dest / 'F/ds/x'} is a folder the pull "
        "stages from Drive; refusing the archive: rename that member, or that folder on "
        "Drive")
