"""mount52: a folder on a mount inside another mount remembers every mount on its path.

A record noted only the innermost mount its folder was on (mount51). A FUSE mount inside
another mount in SRC (SRC/o a mount, SRC/o/i one on it) that stopped was noted on SRC/o/i
alone; both undone (``umount -l SRC/o`` takes both), SRC/o shows the disk beneath, and
``push --delete`` kept SRC/o/i only: the outer mount's other copies were trashed. A record
now notes the mounts around its innermost one too (``"outer"``), and where one of them is
away the folder is kept at the outermost away point."""
from __future__ import annotations

import errno

from _cli import run
from test_mount51_other_mount import _MS_BIND, _mount, _umount
from test_pushread48_unread import live
from test_pushremount49_memory import _memory_of_this_process_none, _push  # noqa: F401


def _nested(tmp_path, emulator) -> tuple[dict, str]:
    """SRC/o a bind of ``outer`` (o.txt), SRC/o/i one of ``inner`` (i.txt) on it, both on
    Drive as a push sent them; SRC/o/i noted unread (EIO) as a push notes it. Returns what
    the record notes of its mounts and the outer mount's words."""
    from drivestage import mount_table, unread_memory

    src = tmp_path / "src"
    (tmp_path / "outer" / "i").mkdir(parents=True)
    (tmp_path / "outer" / "o.txt").write_bytes(b"o")
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "i.txt").write_bytes(b"i")
    (src / "o").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"a")
    for rel, data in {"a.txt": b"a", "o/o.txt": b"o", "o/i/i.txt": b"i"}.items():
        emulator.add_file(f"runs/x/{rel}", data)
    _mount(str(tmp_path / "outer"), src / "o", flags=_MS_BIND)
    _mount(str(tmp_path / "inner"), src / "o" / "i", flags=_MS_BIND)
    path = str(src / "o" / "i")
    noted = unread_memory._mounts([path], mount_table.table())
    unread_memory._change((), {path: errno.EIO}, mounts=noted)
    return noted[path], mount_table.words(mount_table.table()[str(src / "o")].fs)


def test_the_outer_mount_undone_keeps_all_of_it(emulator, drive_env, local_state, tmp_path):
    """Both mounts undone: SRC/o is the empty folder beneath. On main 8704ac72: exit 1 for
    o/i alone, and ``1 deleted``: o/o.txt's copy trashed. Now SRC/o is kept whole."""
    o = tmp_path / "src" / "o"
    try:
        noted, was = _nested(tmp_path, emulator)
    finally:
        _umount(o)   # (lazily: the inner one with it)
    code, _out, err = _push(tmp_path)
    assert live(emulator) == {"a.txt": b"a", "o/o.txt": b"o", "o/i/i.txt": b"i"}, err
    assert code == 1, err
    assert f"ERROR drivestage.upload_tree: {o} holds what is on the disk beneath: the mount " \
        f"at {o} that {o / 'i'} was on when the last push could not read it (Input/output " \
        "error) is not mounted now. Not sent, and nothing at drive:runs/x/o or under it on " \
        f"Drive is removed this time; mount {o} again, then push again; if its copies on " \
        f"Drive should go, push once with --emptied {o / 'i'}" in err.splitlines(), err
    listed = run("unread", "list")[1]
    assert f"(the mount at {o} it is inside is not mounted now)" in listed, \
        listed
    assert [m["mount"] for m in noted.get("outer", [])][-1:] == [str(o)], noted


def test_src_the_outer_mount_undone_is_not_pushed(emulator, drive_env, local_state, tmp_path):
    """SRC is the outer mount's point (SRC/o), undone with the inner one. On main 8704ac72:
    exit 0, o.txt's copy trashed (SRC read as an empty folder, never recorded)."""
    o = tmp_path / "src" / "o"
    try:
        _nested(tmp_path, emulator)
    finally:
        _umount(o)
    code, _out, err = run("push", str(o), "drive:runs/x/o", "--delete")
    assert live(emulator) == {"a.txt": b"a", "o/o.txt": b"o", "o/i/i.txt": b"i"}, err
    assert code == 1, err
    assert err.splitlines()[-1].startswith(f"Error: SRC {o} "), err


def test_another_mount_at_the_outer_point_is_not_the_mount_back(emulator, drive_env,
                                                                local_state, tmp_path):
    """Both undone, then a bind of another folder (x.txt) at SRC/o: on main 8704ac72 exit 0,
    o.txt's copy trashed for x.txt. Kept, the other mount named."""
    o = tmp_path / "src" / "o"
    try:
        _noted, was = _nested(tmp_path, emulator)
    finally:
        _umount(o)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_bytes(b"x")
    _mount(str(tmp_path / "other"), o, flags=_MS_BIND)
    try:
        code, _out, err = _push(tmp_path)
    finally:
        _umount(o)
    assert live(emulator) == {"a.txt": b"a", "o/o.txt": b"o", "o/i/i.txt": b"i"}, err
    assert code == 1, err
    assert f"ERROR drivestage.upload_tree: {o} is on another mount than when the last push " \
        f"could not read {o / 'i'} (Input/output error): " in err, err
    assert f"is mounted at {o} now, {was} was." in err, err


def test_the_inner_mount_back_with_the_outer_forgets_it(emulator, drive_env, local_state,
                                                        tmp_path):
    """Both mounted again: the folder reads, its record is forgotten, exit 0 (a guard: the
    outer mounts noted do not keep a folder whose mounts are all back)."""
    from drivestage import unread_memory

    o = tmp_path / "src" / "o"
    try:
        _nested(tmp_path, emulator)
        code, _out, err = _push(tmp_path)
    finally:
        _umount(o)
    assert code == 0, err
    assert live(emulator) == {"a.txt": b"a", "o/o.txt": b"o", "o/i/i.txt": b"i"}, err
    assert unread_memory._read() == {}


def test_a_mount_undone_mid_walk_notes_the_mounts_around_its_point(tmp_path):
    """The ENOTCONN rule's record (a mount undone while the walk went on: its own point, what
    it was unknown, attack51) notes the mounts around that point too: with SRC/o undone
    since, the folder is away at SRC/o. (On main 8704ac72 it noted none: judged at
    SRC/o/i alone, gone there and not mounted, it was kept without the rest of SRC/o.)"""
    from drivestage import mount_table, unread_mounts

    o = tmp_path / "src" / "o"
    (tmp_path / "outer" / "i").mkdir(parents=True)
    o.mkdir(parents=True)
    _mount(str(tmp_path / "outer"), o, flags=_MS_BIND)
    try:
        path = str(o / "i")
        noted = unread_mounts._mounts([path], mount_table.table(), {path: errno.ENOTCONN})
    finally:
        _umount(o)
    assert noted[path]["mount"] == path, noted
    assert noted[path]["outer"][-1]["mount"] == str(o), noted
    assert unread_mounts._beneath(noted[path], mount_table.table(), path) == (str(o), None)
