"""mount51: the mount a folder push could not read was on, known again by what it is.

mount50 noted the mount point (M) each unread folder was on, and while M was not mounted the
folder was the disk beneath: kept, exit 1. Any mount at M counted as the mount back: a tmpfs,
another account's Drive, a bind of another folder mounted there made the folder "back", and
``push --delete`` compared Drive against *its* contents and trashed the copies of the mount
that was read before. A record now notes what the mount was (type, source, the folder of
the source it shows); another mount at M keeps the folder, one line naming both."""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import socket

import pytest

from _cli import run
from _drivemount import FullDriveMount
from test_pushread48_unread import live
from test_pushremount49_memory import (KEPT, _memory, _memory_of_this_process_none,  # noqa: F401
                                       _push, _said, mounted)

_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_MS_BIND = 4096


def _mount(source: str, point, kind=None, data=None, flags: int = 0) -> None:
    if _LIBC.mount(os.fsencode(source), os.fsencode(point), kind, flags, data) != 0:
        pytest.skip(f"cannot mount here: {os.strerror(ctypes.get_errno())}")


def _umount(point) -> None:
    _LIBC.umount2(os.fsencode(point), 2)   # (MNT_DETACH)


def _other_line(tmp_path, now: str, was: str = "fuse.drive drive",
                why: str = "Transport endpoint is not connected") -> str:
    mnt = tmp_path / "src" / "mnt"
    return (f"ERROR drivestage.upload_tree: {mnt} is on another mount than when the last push "
            f"could not read it ({why}): {now} is mounted at {mnt} now, {was} was. Not sent, "
            "and nothing at drive:runs/x/mnt or under it on Drive is removed this time; mount "
            f"{was} at {mnt} again, then push again; if the mount there now is the one to "
            f"push, run drivestage unread forget {mnt}, then push again")


def test_a_tmpfs_mounted_where_the_drive_mount_was_is_not_the_mount_back(
        emulator, drive_env, local_state, tmp_path, mounted: FullDriveMount):
    """The Drive mount stopped (remembered), was undone, and a tmpfs holding a file was
    mounted at its point: on main exit 0, ``1 uploaded, 2 deleted``, the Drive mount's copies
    trashed for the tmpfs's file. Kept, said naming both mounts; ``unread list`` says so too;
    ``unread forget`` when the tmpfs is the one to push."""
    mnt = tmp_path / "src" / "mnt"
    mounted.disconnect()
    assert _push(tmp_path)[0] == 1
    assert _memory(tmp_path)[str(mnt)][socket.gethostname()]["fs"] == \
        {"type": "fuse.drive", "source": "drive", "root": "/"}
    mounted.stop()
    _mount("scratch", mnt, b"tmpfs", b"size=64k")
    try:
        (mnt / "x.txt").write_bytes(b"x")
        code, _out, err = _push(tmp_path)
        assert code == 1, err
        assert _said(err, tmp_path) == [_other_line(tmp_path, "tmpfs scratch")], err
        assert live(emulator) == KEPT
        out = run("unread", "list")[1]
        assert out.endswith(f", on the mount at {mnt} (fuse.drive drive) (another mount there "
                            "now: tmpfs scratch)\n"), out
        assert run("unread", "forget", str(mnt))[0] == 0
        code, _out, err = _push(tmp_path)
        assert code == 0, err
        assert live(emulator) == {"a.txt": b"a", "mnt/x.txt": b"x"}
    finally:
        _umount(mnt)


def test_a_bind_of_another_folder_where_a_bind_was_is_not_the_mount_back(
        emulator, drive_env, local_state, tmp_path):
    """Two binds from the same disk share type and source; the folder each shows (the
    mount's root) tells them apart. A record made on a bind of ``data``, then ``other``
    bound there instead: on main the files of ``other`` replaced the copies of ``data``'s
    (exit 0, ``1 uploaded, 1 deleted``)."""
    from drivestage import mount_table, unread_memory

    mnt = tmp_path / "src" / "mnt"
    for name in ("data", "other"):
        (tmp_path / name).mkdir()
    (tmp_path / "other" / "o.txt").write_bytes(b"o")
    mnt.mkdir(parents=True)
    emulator.add_file("runs/x/mnt/d.txt", b"d")
    _mount(str(tmp_path / "data"), mnt, flags=_MS_BIND)
    try:
        noted = unread_memory._mounts([str(mnt)], mount_table.table())
        assert noted[str(mnt)]["fs"]["root"].endswith("/data"), noted
        unread_memory._change((), {str(mnt): errno.EIO}, mounts=noted)   # (as a push notes it)
    finally:
        _umount(mnt)
    _mount(str(tmp_path / "other"), mnt, flags=_MS_BIND)
    try:
        code, _out, err = _push(tmp_path)
        assert code == 1, err
        disk = noted[str(mnt)]["fs"]
        bound = f"{disk['type']} {disk['source']} (folder {disk['root'][:-len('data')]}"
        assert _said(err, tmp_path) == [_other_line(
            tmp_path, bound + "other of it)", bound + "data of it)", "Input/output error")], err
        assert live(emulator) == {"mnt/d.txt": b"d"}
    finally:
        _umount(mnt)


def test_a_folder_below_the_mount_point_keeps_the_whole_mount(
        emulator, drive_env, local_state, tmp_path, mounted: FullDriveMount):
    """A folder below M that could not be read (EIO in a live mount: noted as a push notes
    it, the emulator's mount fails a call for every folder alike), then M undone: on main
    that folder's copies were kept, said as "the mount at M that the last push could not
    read" (M was read) and "its mount point removed" (M is there), and ``--delete`` trashed
    every other copy of the mount (``2 deleted``). Now M stands for it, in its own words."""
    from drivestage import mount_table, unread_memory

    mnt, sub = tmp_path / "src" / "mnt", tmp_path / "src" / "mnt" / "sub"
    emulator.add_file("runs/x/mnt/sub/s.txt", b"s")
    unread_memory._change((), {str(sub): errno.EIO},
                          mounts=unread_memory._mounts([str(sub)], mount_table.table()))
    mounted.stop()
    code, _out, err = _push(tmp_path)
    assert code == 1, err
    assert [line for line in err.splitlines() if line.startswith("ERROR")][0] == (
        f"ERROR drivestage.upload_tree: {mnt} holds what is on the disk beneath: the mount at "
        f"{mnt} that {sub} was on when the last push could not read it (Input/output error) "
        "is not mounted now. Not sent, and nothing at drive:runs/x/mnt or under it on Drive "
        f"is removed this time; mount {mnt} again, then push again; if its copies on Drive "
        f"should go, push once with --emptied {sub}"), err
    assert live(emulator) == {**KEPT, "mnt/sub/s.txt": b"s"}
    code, _out, err = _push(tmp_path, "--emptied", str(sub))
    assert code == 0, err
    assert live(emulator) == {"a.txt": b"a"}
    assert _memory(tmp_path) == {}


def test_src_itself_on_another_mount_is_not_pushed(emulator, drive_env, local_state, tmp_path):
    """SRC was a bind of ``data`` when a push could not read it; ``other`` is bound there now:
    nothing pushed (on main: its file sent, ``data``'s copy trashed, exit 0)."""
    from _messages import error_line
    from drivestage import mount_table, unread_memory

    src = tmp_path / "src"
    for name in ("data", "other", "src"):
        (tmp_path / name).mkdir()
    (tmp_path / "other" / "o.txt").write_bytes(b"o")
    emulator.add_file("runs/x/d.txt", b"d")
    _mount(str(tmp_path / "data"), src, flags=_MS_BIND)
    try:
        noted = unread_memory._mounts([str(src)], mount_table.table())
        unread_memory._change((), {str(src): errno.EIO}, mounts=noted)
    finally:
        _umount(src)
    _mount(str(tmp_path / "other"), src, flags=_MS_BIND)
    try:
        code, _out, err = run("push", str(src), "drive:runs/x", "--delete")
        assert code == 1, err
        was = mount_table.words(noted[str(src)]["fs"])
        now = was[:-len("data of it)")] + "other of it)"
        assert error_line(err) == (
            f"Error: SRC {src} is on another mount than when the last push could not read it "
            f"(Input/output error): {now} is mounted at {src} now, {was} was. Nothing was "
            f"pushed; mount {was} at {src} again, then push again; if the mount there now is "
            f"the one to push, run drivestage unread forget {src}, then push again"), err
        assert live(emulator) == {"d.txt": b"d"}
    finally:
        _umount(src)
