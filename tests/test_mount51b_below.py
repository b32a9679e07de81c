"""mount51b: a mount put below the point of the mount a record notes is not that mount back.

A record notes the innermost mount its folder was on (M). attackc51 found that another mount
put at the folder itself, below M, counted as the mount back (M was still there): ``push
--delete`` exit 0, the folder's copies trashed for the new mount's files (its strict xfail,
``test_attackc51_mount_words.py``, a plain test now). The same one level up: a mount put
between M and the folder (the folder then gone, or another's), and SRC itself below such a
mount. Each is kept, one line naming both mounts; ``unread list`` says so."""
from __future__ import annotations

import errno

from _cli import run
from test_mount51_other_mount import _MS_BIND, _mount, _umount
from test_pushread48_unread import live
from test_pushremount49_memory import _memory_of_this_process_none, _push  # noqa: F401


def _noted_then_bound(tmp_path, folder: str, at: str) -> tuple[str, str]:
    """SRC/mnt a bind of ``data`` (holding ``folder``); SRC/mnt/``folder`` noted unread (EIO)
    on it; then ``other`` (o.txt) bound at SRC/mnt/``at``. Returns the words of the mount
    noted and of the one bound (the caller unmounts SRC/mnt/``at`` and SRC/mnt)."""
    from drivestage import mount_table, unread_memory

    mnt = tmp_path / "src" / "mnt"
    (tmp_path / "data" / folder).mkdir(parents=True)
    (tmp_path / "data" / folder / "s.txt").write_bytes(b"s")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "o.txt").write_bytes(b"o")
    mnt.mkdir(parents=True)
    _mount(str(tmp_path / "data"), mnt, flags=_MS_BIND)
    path = str(mnt / folder)
    noted = unread_memory._mounts([path], mount_table.table())
    assert noted[path]["mount"] == str(mnt), noted
    unread_memory._change((), {path: errno.EIO}, mounts=noted)   # (as a push notes it)
    _mount(str(tmp_path / "other"), mnt / at, flags=_MS_BIND)
    return (mount_table.words(noted[path]["fs"]),
            mount_table.words(mount_table.table()[str(mnt / at)].fs))


def test_a_mount_put_between_the_mount_point_and_the_folder_keeps_the_whole_new_mount(
        emulator, drive_env, local_state, tmp_path):
    """SRC/mnt/a/b noted on SRC/mnt; ``other`` bound at SRC/mnt/a (b is gone there). On main
    136c4bb2: exit 0, ``1 uploaded, 3 deleted`` (b, its s.txt and a/x.txt trashed). Kept at
    SRC/mnt/a (what shows there is all the other mount's), o.txt not sent."""
    mnt = tmp_path / "src" / "mnt"
    emulator.add_file("runs/x/mnt/a/b/s.txt", b"s")
    emulator.add_file("runs/x/mnt/a/x.txt", b"x")
    try:
        was, now = _noted_then_bound(tmp_path, "a/b", "a")
        try:
            code, _out, err = _push(tmp_path)
            listed = run("unread", "list")[1]
        finally:
            _umount(mnt / "a")
    finally:
        _umount(mnt)
    assert live(emulator) == {"mnt/a/b/s.txt": b"s", "mnt/a/x.txt": b"x"}, err
    assert code == 1, err
    a, b = mnt / "a", mnt / "a" / "b"
    assert f"ERROR drivestage.upload_tree: {a} is on another mount than when the last push " \
        f"could not read {b} (Input/output error): {now} is mounted at {a} now, inside the " \
        f"mount at {mnt} ({was}) it was on. Not sent, and nothing at drive:runs/x/mnt/a or " \
        f"under it on Drive is removed this time; unmount {a}, then push again; if the mount " \
        f"there now is the one to push, run drivestage unread forget {b}, then push again" \
        in err.splitlines(), err
    assert listed.endswith(f", on the mount at {mnt} ({was}) (another mount below it now: "
                           f"{now} at {a})\n"), listed


def test_src_below_a_mount_put_inside_the_noted_one_is_not_pushed(
        emulator, drive_env, local_state, tmp_path):
    """SRC is SRC/mnt/sub here (a folder of the bind at SRC/mnt), noted unread; ``other``
    bound at it. On main 136c4bb2: exit 0, s.txt's copy trashed for o.txt."""
    from drivestage import unread_memory

    mnt = tmp_path / "src" / "mnt"
    emulator.add_file("runs/x/s.txt", b"s")
    try:
        was, now = _noted_then_bound(tmp_path, "sub", "sub")
        try:
            code, _out, err = run("push", str(mnt / "sub"), "drive:runs/x", "--delete")
        finally:
            _umount(mnt / "sub")
    finally:
        _umount(mnt)
    assert live(emulator) == {"s.txt": b"s"}, err
    assert code == 1, err
    sub = mnt / "sub"
    assert err.splitlines()[-1] == (
        f"Error: SRC {sub} is on another mount than when the last push could not read it "
        f"(Input/output error): {now} is mounted at {sub} now, inside the mount at {mnt} "
        f"({was}) it was on. Nothing was pushed; unmount {sub}, then push again; if the mount "
        f"there now is the one to push, run drivestage unread forget {sub}, then push again"), err
    assert str(sub) in unread_memory._read(mine=True)


def test_a_bind_of_the_folder_onto_itself_is_the_same_mount(emulator, drive_env, local_state,
                                                            tmp_path):
    """The rule's false side: ``mount --bind sub sub`` (a sandbox's, or to make a mount point)
    shows the very folder the noted mount shows there: the folder is back, read, its record
    forgotten, exit 0. (Passes on main too: a guard of the rule above, not a fix.)"""
    from drivestage import unread_memory

    mnt = tmp_path / "src" / "mnt"
    emulator.add_file("runs/x/mnt/sub/s.txt", b"s")
    emulator.add_file("runs/x/mnt/sub/gone.txt", b"g")
    try:
        _noted_then_bound(tmp_path, "sub", "sub")
        _umount(mnt / "sub")   # (``other``'s bind undone: sub itself bound onto sub instead)
        _mount(str(mnt / "sub"), mnt / "sub", flags=_MS_BIND)
        try:
            code, _out, err = _push(tmp_path)
        finally:
            _umount(mnt / "sub")
    finally:
        _umount(mnt)
    assert code == 0, err
    assert live(emulator) == {"mnt/sub/s.txt": b"s"}, err
    assert unread_memory._read() == {}
