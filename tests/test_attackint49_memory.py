"""attackint49: pushremount49's ``unread.json`` attacked.

The state folder is ``~/.cache/drivestage``: in a home folder two machines share (NFS), both
read and write the one ``unread.json``. A mount is one machine's. On 94303dcf a push on
machine B forgot machine A's record of its stopped mount where B's folder of that path held
something, or was missing on B; A's mount point, unmounted, then read empty, and A's
``push --delete`` trashed everything Drive held under it (what pushremount49 exists to stop).
Now records are by machine: each machine forgets only its own on its own signals; a folder
any machine could not read is kept (``--emptied`` forgets every machine's: the user's word).

And a remembered folder below a mount that stopped (a nested mount): its lstat fails ENOTCONN,
which ``os.path.lexists`` took for "gone", so it was forgotten; with the outer mount back and
the inner not, the inner read empty and ``--delete`` trashed its copies. Now only ENOENT /
ENOTDIR is gone."""
from __future__ import annotations

import errno
import socket

import pytest

from _cli import run
from _drivemount import FullDriveMount
from test_pushread48_unread import live
from test_pushremount49_memory import _memory_of_this_process_none, mounted  # noqa: F401

ON_DRIVE = {"mnt/m.txt": b"mounted, old", "mnt/n.txt": b"n"}


def _as(monkeypatch, host: str) -> None:
    """This process is machine ``host`` from here on (the two machines share the state
    folder: the test's)."""
    monkeypatch.setattr(socket, "gethostname", lambda: host)


@pytest.mark.parametrize("on_b", ["missing", "holding"])
@pytest.mark.timeout(60)
def test_another_machine_sharing_the_state_folder_does_not_forget_this_ones_mount(
        emulator, drive_env, local_state, tmp_path, monkeypatch, on_b):
    from drivestage import unread_memory

    src, mnt = tmp_path / "src", tmp_path / "src" / "mnt"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    for rel, data in ON_DRIVE.items():
        emulator.add_file(f"runs/x/{rel}", data)
    _as(monkeypatch, "machine-a")   # A's push found its mount stopped
    unread_memory._change((), {str(mnt): errno.ENOTCONN})
    _as(monkeypatch, "machine-b")   # B pushes its own folder of that path into its DEST
    if on_b == "holding":
        mnt.mkdir()
        (mnt / "b.txt").write_bytes(b"b")
    code, _out, err = run("push", str(src), "drive:runs/b", "--delete")
    assert code == 0, err
    if on_b == "holding":
        (mnt / "b.txt").unlink()
    else:
        mnt.mkdir()
    _as(monkeypatch, "machine-a")   # A's mount point, unmounted: empty
    code, _out, err = run("push", str(src), "drive:runs/x", "--delete")
    assert code == 1, err
    assert live(emulator) == {"a.txt": b"a", **ON_DRIVE}
    assert f"{mnt} reads as an empty folder where the last push could not read it" in err
    # The way out is the user's word, on either machine: every machine's record forgotten.
    code, _out, err = run("push", str(src), "drive:runs/x", "--delete", "--emptied", str(mnt))
    assert code == 0, err
    assert live(emulator) == {"a.txt": b"a"}
    assert unread_memory._read() == {}


@pytest.mark.timeout(60)
def test_a_remembered_folder_below_a_mount_that_stopped_is_not_taken_for_gone(
        emulator, drive_env, local_state, tmp_path, mounted: FullDriveMount):
    """SRC/mnt/inner (a mount in a mount) remembered; the outer mount stops: its lstat
    says ENOTCONN, not "absent": kept. The outer back (a folder holding something), the inner
    not (its empty mount point): its copies kept."""
    from drivestage import unread_memory

    inner = tmp_path / "src" / "mnt" / "inner"
    emulator.add_file("runs/x/mnt/inner/i.txt", b"inner")
    unread_memory._change((), {str(inner): errno.ENOTCONN})
    mounted.disconnect()
    code, _out, err = run("push", str(tmp_path / "src"), "drive:runs/x", "--delete")
    assert code == 1, err
    assert str(inner) in unread_memory._read()
    mounted.stop()
    (tmp_path / "src" / "mnt" / "m.txt").write_bytes(b"mounted, old")   # the outer, back
    inner.mkdir()                                                       # the inner, not
    code, _out, err = run("push", str(tmp_path / "src"), "drive:runs/x", "--delete")
    assert code == 1, err
    assert live(emulator)["mnt/inner/i.txt"] == b"inner"


@pytest.mark.parametrize("first,then", [("link", "src"), ("src", "link")])
@pytest.mark.timeout(60)
def test_a_mount_remembered_through_a_link_is_the_same_folder_by_its_real_path(
        emulator, drive_env, local_state, tmp_path, mounted: FullDriveMount, first, then):
    """A cron job pushes ``~/runs`` (a link to the real folder), the user its real path (or
    the other way round): the mount point the one could not read, unmounted, is kept by the
    other's ``push --delete``."""
    (tmp_path / "link").symlink_to(tmp_path / "src")
    mounted.disconnect()
    code, _out, err = run("push", str(tmp_path / first), "drive:runs/x", "--delete")
    assert code == 1, err
    mounted.stop()
    code, _out, err = run("push", str(tmp_path / then), "drive:runs/x", "--delete")
    assert code == 1, err
    assert live(emulator) == {"a.txt": b"a", **ON_DRIVE}
    assert f"{tmp_path / then / 'mnt'} reads as an empty folder where the last push could " \
           "not read it" in err


@pytest.mark.parametrize("fixed", ["moved", "freed"])
@pytest.mark.timeout(60)
def test_a_memory_once_unwritable_is_written_when_the_state_folder_is_fixed(
        emulator, drive_env, local_state, tmp_path, monkeypatch, mounted: FullDriveMount,
        fixed):
    """A notebook's push could not write ``unread.json`` (here: a folder at its name, as a
    full or read-only disk refuses it) and says: free the disk, or point
    DRIVESTAGE_STATE_DIR at a folder you can write. The user does so, in the same process;
    the next push there writes what this process learned (on 94303dcf it stayed in this
    process for good), so a new process keeps the unmounted mount point."""
    from drivestage import unread_memory

    (tmp_path / "state" / "unread.json").mkdir(parents=True)
    mounted.disconnect()
    code, _out, err = run("push", str(tmp_path / "src"), "drive:runs/x", "--delete")
    assert code == 1 and "cannot write" in err, err
    if fixed == "moved":
        monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state2"))
    else:
        (tmp_path / "state" / "unread.json").rmdir()
    code, _out, err = run("push", str(tmp_path / "src"), "drive:runs/x", "--delete")
    assert code == 1 and "cannot write" not in err, err
    monkeypatch.setattr(unread_memory, "_here", {})   # a new process
    mounted.stop()
    code, _out, err = run("push", str(tmp_path / "src"), "drive:runs/x", "--delete")
    assert code == 1, err
    assert live(emulator) == {"a.txt": b"a", **ON_DRIVE}


def test_a_memory_written_by_94303dcf_is_this_machines(local_state, tmp_path, monkeypatch):
    """The shape pushremount49 wrote (``{PATH: {"errno", "t"}}``, no machine) reads as this
    machine's: kept, and forgotten on this machine's signs (a push that finds it holding
    something), while another machine's record of the same path stays."""
    import json
    from drivestage import unread_memory

    state = tmp_path / "state"
    state.mkdir()
    (state / "unread.json").write_text(json.dumps({"version": 1, "folders": {
        "/x/mnt": {"errno": errno.ENOTCONN, "t": 1.0},
        "/x/other": {"machine-a": {"errno": errno.EIO, "t": 1.0}}}}))
    _as(monkeypatch, "machine-b")
    assert {p: r["errno"] for p, r in unread_memory._read().items()} == {
        "/x/mnt": errno.ENOTCONN, "/x/other": errno.EIO}
    assert list(unread_memory._read(mine=True)) == ["/x/mnt"]
    unread_memory._change(["/x/mnt", "/x/other"], {})
    assert list(unread_memory._read()) == ["/x/other"]
