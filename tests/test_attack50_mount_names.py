"""attack50: push's memory of unread folders (mount50) with a mount point whose name the mount
table's reader split.

``/proc/self/mountinfo`` escapes a space, tab, newline and backslash in a mount point
(``\\040``…) and nothing else: a name holding another character that Python's
``str.splitlines`` takes for a line's end (U+2028 LINE SEPARATOR, U+0085 NEXT LINE, the
file separators ``\\x1c``-``\\x1e``: all legal in a Linux file name) is written raw. Read
with ``splitlines``, that mount's line was cut in two: its mount point was missing from the
table, so a folder in it was noted as on the disk above (always mounted), and once the
mount was undone a file written into the bare mount point stood for the mount again:
``push --delete`` sent it and trashed the mount's copies on Drive (mount50's case 1 again).

A real FUSE mount in SRC whose program ends (ENOTCONN), then unmounted, the real PyDrive2
stack against the emulator."""
from __future__ import annotations

import pytest

from _drivemount import FullDriveMount, _mounted
from _cli import run
from test_pushread48_unread import live
from test_pushremount49_memory import _memory, _memory_of_this_process_none  # noqa: F401


@pytest.fixture(params=["\u2028", "\x1c"], ids=["U+2028", "FS"])
def odd(request, tmp_path, emulator):
    """SRC (``a.txt`` and a FUSE mount whose name holds the character), Drive's runs/x
    holding the mount's file as an earlier push sent it."""
    name = f"m{request.param}nt"
    for mount in _mounted(tmp_path / "src" / name, writable=True):
        (tmp_path / "src" / "a.txt").write_bytes(b"a")
        emulator.add_file(f"runs/x/{name}/m.txt", b"mounted")
        yield name, mount


@pytest.mark.timeout(60)
def test_a_mount_whose_name_holds_a_line_separator_is_the_disk_beneath_once_undone(
        emulator, drive_env, local_state, tmp_path, odd: tuple[str, FullDriveMount]):
    """On main: the record noted the mount at ``/`` (mounted), so the file written into the
    bare mount point was sent and the mount's copy trashed (exit 0)."""
    name, mounted = odd
    point = str(tmp_path / "src" / name)
    mounted.disconnect()
    code, _out, err = run("push", str(tmp_path / "src"), "drive:runs/x", "--delete")
    assert code == 1, err
    assert [r["mount"] for r in _memory(tmp_path)[point].values()] == [point]
    mounted.stop()
    (tmp_path / "src" / name / "new.txt").write_bytes(b"beneath")
    code, _out, err = run("push", str(tmp_path / "src"), "drive:runs/x", "--delete")
    assert code == 1, err
    assert err.count(" holds what is on the disk beneath: the mount at ") == 1, err
    assert live(emulator) == {"a.txt": b"a", f"{name}/m.txt": b"mounted"}


def test_the_mount_table_readers_find_a_drive_mount_whose_name_holds_a_line_separator(
        tmp_path, emulator):
    """The same table, read where a FUSE mount's file identities are not trusted for an md5
    (``fuse_devices``: on main the mount's device was missing, so a file another machine
    rewrote through Drive keeping its size and mtime was taken as unchanged), where a
    folder's mount is named (``mount_of``), and where a Drive mount is told from a plain
    folder (``drive_mount``: the warnings and the side that removes nothing there)."""
    import os

    from drivestage import localfs

    for mount in _mounted(tmp_path / "content" / "m\u2028nt", writable=False):
        point = str(mount.point)
        assert os.stat(point).st_dev in localfs.fuse_devices()
        assert localfs.mount_of(point) == ("fuse.drive", point)
        assert localfs.drive_mount(os.path.join(point, "x")) == point
