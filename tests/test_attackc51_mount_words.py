"""mount51's words for a mount attacked (attackc51): a record notes what a mount is (type,
source, the folder of it shown: a bind's root), and the push's line and ``unread list`` name
it. A bind's root is any folder's name: one with a newline wrote a line of its own in
``unread list`` (``ERROR …``, as the name chose), one with a byte that is not UTF-8 ended
``unread list`` in a UnicodeEncodeError traceback. Names go through ``printable`` everywhere
else (attack28); here too. (The push's own line was safe: its log handler escapes them.)"""
from __future__ import annotations

import errno
import os

from _cli import run
from test_mount51_other_mount import _MS_BIND, _mount, _umount

#: A folder's name with a newline (a line of its own after it) and a Latin-1 byte.
ODD = os.fsdecode(b"d\xe9ta\nERROR drivestage: all pushed")


def _noted_on_a_bind(tmp_path, emulator):
    """SRC/mnt noted unread (EIO) while it was a bind of the folder ``ODD``; a bind of
    ``other`` (holding o.txt) there now. Returns the mount point."""
    from drivestage import mount_table, unread_memory

    mnt = tmp_path / "src" / "mnt"
    for name in (ODD, "other"):
        (tmp_path / name).mkdir()
    (tmp_path / "other" / "o.txt").write_bytes(b"o")
    mnt.mkdir(parents=True)
    emulator.add_file("runs/x/mnt/d.txt", b"d")
    _mount(str(tmp_path / ODD), mnt, flags=_MS_BIND)
    try:
        noted = unread_memory._mounts([str(mnt)], mount_table.table())
        assert noted[str(mnt)]["fs"]["root"].endswith("/" + ODD), noted
        unread_memory._change((), {str(mnt): errno.EIO}, mounts=noted)   # (as a push notes it)
    finally:
        _umount(mnt)
    _mount(str(tmp_path / "other"), mnt, flags=_MS_BIND)
    return mnt


def test_unread_list_shows_a_binds_odd_folder_name_on_its_line(emulator, drive_env,
                                                                local_state, tmp_path):
    """On main 53886d51: exit 1, UnicodeEncodeError (surrogates not allowed) from
    click.echo; with the name UTF-8, two lines, the second the forged one."""
    mnt = _noted_on_a_bind(tmp_path, emulator)
    try:
        code, out, err = run("unread", "list")
    finally:
        _umount(mnt)
    assert code == 0, err
    assert len(out.splitlines()) == 1, out
    assert "/d\\udce9ta\\x0aERROR drivestage: all pushed of it)) (another mount there now: " \
        in out, out

