"""mount50: a folder push could not read inside a mount, read after that mount was undone.

pushremount49 remembers (``unread.json``) a mount in SRC whose program ended (ENOTCONN) and
keeps its copies on Drive while it reads empty. It forgot it on "the folder holds something"
or "it is gone": a program writing into the unmounted mount point (a trainer's log, a user's
``cp``) made it hold the disk beneath's one file, and udisks / ``systemd-mount`` remove their
mount point at unmount; either way ``push --delete`` then trashed the mount's copies on Drive.
The memory now notes the mount the folder was on; while that is not mounted, what the path
shows (files or nothing) is the disk beneath: kept, one line, exit 1."""
from __future__ import annotations

import errno

from _drivemount import OPENDIR, FullDriveMount
from test_pushread48_unread import live
from test_pushremount49_memory import (KEPT, _memory, _memory_of_this_process_none,  # noqa: F401
                                       _push, _said, mounted)


def _line(tmp_path, what: str) -> str:
    mnt = tmp_path / "src" / "mnt"
    return (f"ERROR drivestage.upload_tree: {mnt} {what} the mount at {mnt} that the last "
            "push could not read (Transport endpoint is not connected) is not mounted now. "
            "Not sent, and nothing at drive:runs/x/mnt or under it on Drive is removed this "
            f"time; mount {mnt} again, then push again; if its copies on Drive should go, "
            f"push once with --emptied {mnt}")


def test_a_mount_point_removed_at_unmount_keeps_the_mounts_copies(
        emulator, drive_env, local_state, tmp_path, mounted: FullDriveMount):
    """udisks and systemd-mount remove their mount point as they unmount: gone, it was
    forgotten and --delete trashed the mount's copies (on main: exit 0). Kept, said, until
    ``--emptied`` names it."""
    mounted.disconnect()
    assert _push(tmp_path)[0] == 1
    mounted.stop()
    (tmp_path / "src" / "mnt").rmdir()
    for n in range(2):   # (as often as it is pushed; said once in a process)
        code, _out, err = _push(tmp_path)
        assert code == 1, err
        assert _said(err, tmp_path) == [_line(tmp_path, "is gone (its mount point removed "
                                                         "as it was unmounted?):")][n:], err
        assert live(emulator) == KEPT
    code, _out, err = _push(tmp_path, "--emptied", str(tmp_path / "src" / "mnt"))
    assert code == 0, err
    assert live(emulator) == {"a.txt": b"a"}
    assert _memory(tmp_path) == {}


def test_a_folder_of_a_mount_still_mounted_is_forgotten_once_it_reads(
        emulator, drive_env, local_state, tmp_path, mounted: FullDriveMount):
    """A folder that could not be listed (EIO) in a mount that stays mounted, then read
    again holding something, is forgotten and pushed as ever (the disk or mount fixed), and
    one that is gone is gone."""
    (mounted.point / "m.txt").write_bytes(b"m, new")
    mounted.fail[OPENDIR] = errno.EIO
    assert _push(tmp_path)[0] == 1
    assert list(_memory(tmp_path)) == [str(tmp_path / "src" / "mnt")]
    del mounted.fail[OPENDIR]
    code, _out, err = _push(tmp_path)
    assert code == 0, err
    assert live(emulator) == {"a.txt": b"a", "mnt/m.txt": b"m, new"}
    assert _memory(tmp_path) == {}


def test_unread_list_shows_each_record_and_forget_clears_a_machine_that_is_no_more(
        local_state, tmp_path):
    """``unread list``: each record (folder, machine, date, why, mount); ``unread forget
    --host``: a recreated container's old name, every record of it; nothing named: usage
    (on main: no such command, exit 2 for each)."""
    import json
    import socket

    from _cli import run

    me, mnt, other = socket.gethostname(), str(tmp_path / "src" / "mnt"), str(tmp_path / "o")
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "unread.json").write_text(json.dumps({"version": 1, "folders": {
        mnt: {"old-box": {"errno": errno.ENOTCONN, "t": 86400},
              me: {"errno": errno.ENOTCONN, "t": 0, "mount": mnt}},
        other: {"old-box": {"errno": errno.EIO, "t": 90000}}}}))
    code, out, _err = run("unread", "list")
    assert code == 0
    assert out.splitlines() == [   # (by path; this machine's first)
        f"{other}: old-box, 1970-01-02 01:00 UTC: Input/output error",
        f"{mnt}: {me}, date unknown: Transport endpoint is not connected, on the mount at "
        f"{mnt} (not mounted now)",
        f"{mnt}: old-box, 1970-01-02 00:00 UTC: Transport endpoint is not connected"]
    code, out, err = run("unread", "forget")
    assert code == 2 and err.splitlines()[-1] == (
        "Error: name the folders to forget (PATH...), or --host NAME for every record of a "
        "machine (drivestage unread list shows them)"), err
    code, out, _err = run("unread", "forget", "--host", "old-box")
    assert code == 0 and len(out.splitlines()) == 2 and out.startswith("forgot "), out
    assert [line.split(": ")[1] for line in run("unread", "list")[1].splitlines()] == \
        [f"{me}, date unknown"]
    assert run("unread", "forget", "--host", "old-box")[1] == \
        "no such record (drivestage unread list shows them)\n"


def test_a_bind_mount_on_the_same_disk_is_a_mount_point_while_bound(tmp_path):
    """A bind mount shares its device with the folder above (no st_dev test tells it): the
    mount table does, so a folder in SRC bound from elsewhere on the same disk is a mount
    (forgotten on being read as before) and, unbound, the disk beneath (on main: no table)."""
    import ctypes
    import ctypes.util
    import os

    import pytest

    from drivestage import mount_table

    (tmp_path / "elsewhere").mkdir()
    point = tmp_path / "src" / "bound"
    point.mkdir(parents=True)
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.mount(os.fsencode(tmp_path / "elsewhere"), os.fsencode(point), None, 4096,
                  None) != 0:   # (MS_BIND)
        pytest.skip(f"cannot bind-mount here: {os.strerror(ctypes.get_errno())}")
    try:
        assert os.stat(point).st_dev == os.stat(point.parent).st_dev
        assert getattr(mount_table.holding(str(point / "x"), mount_table.table()), "point",
                       None) == str(point)
    finally:
        libc.umount2(os.fsencode(point), 2)
    assert str(point) not in (mount_table.table() or {})
