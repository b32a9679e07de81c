"""mount50's messages: a folder push could not read, on a mount not mounted now, that holds
what was written into the bare mount point (the disk beneath)."""
from __future__ import annotations

from _drivemount import FullDriveMount, _mounted
from _messages import error_line, renders, shown
from test_mount50_memory import _line
from test_pushread48_unread import live
from test_pushremount49_memory import (KEPT, _memory, _memory_of_this_process_none,  # noqa: F401
                                       _push, _said, mounted)

BENEATH = ("holds what is on the disk beneath: the mount at … that the last push could not "
           "read")


@renders(BENEATH)
def test_files_written_into_an_unmounted_mount_point_do_not_stand_for_the_mount(
        emulator, drive_env, local_state, tmp_path, mounted: FullDriveMount):
    """The mount stopped (remembered), was unmounted, and a program wrote a file into its
    mount point (the disk beneath): the file is not sent and the mount's copies stay (on
    main: exit 0, the new file sent and the mount's copies trashed). Mounted again, the
    memory is forgotten and --delete acts as ever."""
    mounted.disconnect()
    assert _push(tmp_path)[0] == 1
    mounted.stop()
    (tmp_path / "src" / "mnt" / "new.txt").write_bytes(b"beneath")
    code, _out, err = _push(tmp_path)
    assert code == 1, err
    assert _said(err, tmp_path) == [_line(tmp_path, "holds what is on the disk beneath:")], err
    shown(BENEATH, err)
    assert error_line(err).startswith("Error: 1 path of SRC could not be read")
    assert live(emulator) == KEPT
    (tmp_path / "src" / "mnt" / "new.txt").unlink()
    for again in _mounted(tmp_path / "src" / "mnt", writable=True):   # (mounted again)
        (again.point / "n.txt").write_bytes(b"n, new")
        code, _out, err = _push(tmp_path)
        assert code == 0, err
        assert live(emulator) == {"a.txt": b"a", "mnt/n.txt": b"n, new"}
        assert _memory(tmp_path) == {}
