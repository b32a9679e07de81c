"""attack50: a file written where a mount point was removed at unmount (mount50's two cases
at once).

mount50 keeps a mount's copies on Drive while its mount is not mounted, whether its mount
point holds what a program wrote into it (the disk beneath) or is gone (udisks and
``systemd-mount`` remove it at unmount). Between the two: the mount point removed, and a
*file* made at its path: ``cp results.csv /media/usb`` with the stick unmounted and its
folder gone makes a file named ``usb``, the classic slip. The walk found a file, not the
folder remembered, and the path was not gone either, so neither rule took it: on main
``push --delete`` exited 0, sent the file and trashed every copy the mount had on Drive.
Kept now as the disk beneath (the ``holds what is on the disk beneath`` line, exit 1), until
``--emptied`` says so.

A real FUSE mount in SRC whose program ends (ENOTCONN), unmounted and its folder removed;
the real PyDrive2 stack against the emulator."""
from __future__ import annotations

import pytest

from _drivemount import FullDriveMount
from test_mount50_memory import _line
from test_pushread48_unread import live
from test_pushremount49_memory import (KEPT, _memory, _memory_of_this_process_none,  # noqa: F401
                                       _push, _said, mounted)


@pytest.mark.timeout(60)
def test_a_file_made_where_the_mount_point_was_removed_keeps_the_mounts_copies(
        emulator, drive_env, local_state, tmp_path, mounted: FullDriveMount):
    mounted.disconnect()
    assert _push(tmp_path)[0] == 1
    mounted.stop()
    point = tmp_path / "src" / "mnt"
    point.rmdir()
    point.write_bytes(b"results")   # (cp results.csv src/mnt)
    code, _out, err = _push(tmp_path)
    assert code == 1, err
    assert _said(err, tmp_path) == [_line(tmp_path, "holds what is on the disk beneath:")], err
    assert live(emulator) == KEPT
    code, _out, err = _push(tmp_path, "--emptied", str(point))   # (the user's word)
    assert code == 0, err
    assert live(emulator) == {"a.txt": b"a", "mnt": b"results"}
    assert _memory(tmp_path) == {}
