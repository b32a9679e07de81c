"""Colab's Drive mount as tests/_drivemount.py models it, against what drivestage assumes of
it (mount30): a mount that hangs for a while is not one that stopped, and is looked at by
one thread at a time.
"""
from __future__ import annotations

import os
import threading

import pytest

from _drivemount import working_drive_mount  # noqa: F401 (fixture)
from drivestage.lost_mounts import lost_mount


def _probes() -> int:
    return sum(t.name == "drivestage-mount-probe" and t.is_alive()
               for t in threading.enumerate())


def test_a_hung_mount_is_not_lost_and_holds_one_probe_at_most(working_drive_mount):
    """A trainer looks at its run folder's mount every minute (trainer.saving.LOOK_S). On a
    mount that hangs, each look left a thread stuck in the kernel for good (one a minute)."""
    mount = working_drive_mount
    inside = str(mount.point / "MyDrive" / "logs")
    mount.hang()
    try:
        assert lost_mount(inside, within=0.2) is None   # waited 0.2 s: hung, not lost
        assert _probes() == 1
        for _ in range(3):
            assert lost_mount(inside, within=0.2) is None   # at once: its probe still waits
        assert _probes() == 1
    finally:
        mount.answer()
    for probe in [t for t in threading.enumerate() if t.name == "drivestage-mount-probe"]:
        probe.join(10)   # (its stat answered now)
    mount.disconnect()
    assert lost_mount(inside) == str(mount.point)   # the stuck probe ended: a new one looks


# --------------------------------------------------------------------------- late changes

def _run(*args: str) -> tuple[int, str]:
    from click.testing import CliRunner

    from drivestage.cli import cli

    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stderr


def test_a_pull_out_of_the_mount_takes_a_late_change_of_the_same_size_and_mtime(
        local_state, tmp_path, working_drive_mount):
    """Drive gets a new version of a file from elsewhere; the mount shows it minutes later,
    in the same file (same inode), same size, and the mtime the uploader kept. A pull from
    the mount before the change reaches it stages the version it shows; once it shows the
    new one, a pull must stage that, never keep the old bytes as staged."""
    from drivestage.localfs import file_md5

    mount = working_drive_mount
    old, new = b"A" * 4096, b"B" * 4096
    when = 1_700_000_000 * 10**9
    mount.change_on_drive("MyDrive/data/labels.bin", old, when)
    mount.catch_up()
    src = mount.point / "MyDrive" / "data" / "labels.bin"
    dest = tmp_path / "data"
    code, err = _run("pull", str(src), str(dest))
    assert code == 0, err
    assert (dest / "labels.bin").read_bytes() == old
    mount.change_on_drive("MyDrive/data/labels.bin", new, when)
    code, err = _run("pull", str(src), str(dest))   # the mount still shows the old version
    assert code == 0, err
    assert (dest / "labels.bin").read_bytes() == old
    mount.catch_up()
    code, err = _run("pull", str(src), str(dest))
    assert code == 0, err
    assert (dest / "labels.bin").read_bytes() == new, err
    assert file_md5(str(dest / "labels.bin")) == file_md5(str(src))


def test_a_push_out_of_the_mount_sends_a_late_change_of_the_same_size_and_mtime(
        emulator, drive_env, local_state, tmp_path, working_drive_mount):
    """The same from the mount to Drive through the API (``drivestage push
    /content/drive/MyDrive/logs drive:backup``): the new bytes are sent once the mount shows
    them; an md5 remembered for the file's old identity must not stand for them."""
    from _drive_state import live_md5s
    import hashlib

    mount = working_drive_mount
    old, new = b"A" * 4096, b"B" * 4096
    when = 1_700_000_000 * 10**9
    mount.change_on_drive("MyDrive/logs/results.csv", old, when)
    mount.catch_up()
    src = str(mount.point / "MyDrive" / "logs")
    code, err = _run("push", src, "drive:backup")
    assert code == 0, err
    assert live_md5s(emulator, "backup") == {"results.csv": [hashlib.md5(old).hexdigest()]}
    mount.change_on_drive("MyDrive/logs/results.csv", new, when)
    mount.catch_up()
    code, err = _run("push", src, "drive:backup")
    assert code == 0, err
    assert live_md5s(emulator, "backup") == {"results.csv": [hashlib.md5(new).hexdigest()]}


@pytest.mark.parametrize("at", [1, 74, 150, 220, 290])
def test_a_late_change_shown_in_the_middle_of_a_pull_is_never_staged_mixed(
        local_state, tmp_path, working_drive_mount, at):
    """The change reaches the mount while the pull reads the file, at its ``at``-th read
    (a pull of it reads it about 290 times here: its md5, then its copy): the pull stages
    one version whole or fails in one line (`changed in its folder while it was copied`),
    and the next pull stages the new one."""
    from drivestage.localfs import file_md5

    mount = working_drive_mount
    old, new = os.urandom(600_000), os.urandom(600_000)
    mount.change_on_drive("MyDrive/data/set.bin", old)
    mount.catch_up()
    mount.change_on_drive("MyDrive/data/set.bin", new)
    mount.reads, mount.catch_up_at_read = 0, at
    src = mount.point / "MyDrive" / "data" / "set.bin"
    dest = tmp_path / "data"
    code, err = _run("pull", str(src), str(dest))
    staged = dest / "set.bin"
    if code == 0:
        assert staged.read_bytes() in (old, new), err
    else:
        assert code == 1 and err.splitlines()[-1].startswith(
            f"Error: {src} changed in its folder while it was copied (md5 "), err
        assert not staged.exists() or staged.read_bytes() in (old, new)
    assert mount.reads >= at, mount.reads   # (the change came during the pull)
    code, err = _run("pull", str(src), str(dest))
    assert code == 0, err
    assert staged.read_bytes() == new and file_md5(str(staged)) == file_md5(str(src))


# --------------------------------------------------------------------------- remount

def test_a_pull_into_the_mount_whose_stamp_reached_drive_before_its_file(
        local_state, tmp_path, working_drive_mount):
    """DriveFS sends each file on its own, small ones first: the pull's stamp (what it
    staged) reaches Drive, the staged file itself not yet, and the mount stops. Remounted,
    the mount shows the new stamp beside the older file: the next pull must stage the file
    again, not take the old bytes as the version its stamp names."""
    mount = working_drive_mount
    src = tmp_path / "set.bin"
    v1, v2 = os.urandom(200_000), os.urandom(200_000)
    src.write_bytes(v1)
    dest = mount.point / "MyDrive" / "data"
    code, err = _run("pull", str(src), str(dest))
    assert code == 0, err
    mount.flush()
    src.write_bytes(v2)
    code, err = _run("pull", str(src), str(dest))
    assert code == 0, err
    mount.send(lambda path: "/.drivestage/" in path)   # the stamp, not set.bin
    assert mount.on_drive["MyDrive/data/set.bin"] == v1
    mount.disconnect()
    back = mount.remount()
    try:
        assert (dest / "set.bin").read_bytes() == v1   # what Drive had
        code, err = _run("pull", str(src), str(dest))
        assert code == 0, err
        assert (dest / "set.bin").read_bytes() == v2, err
    finally:
        back.stop()


@pytest.mark.parametrize("command, call", [("pull", "RENAME"), ("push", "RENAME"),
                                           ("push", "FSYNC"), ("push", "MKDIR")])
def test_the_mount_stops_between_a_write_and_its_rename_then_is_mounted_again(
        local_state, tmp_path, working_drive_mount, command, call):
    """DriveFS ends as the command's first ``call`` of that kind arrives (the file written,
    not yet renamed into place; not yet fsynced; a folder being made): one line, exit 1.
    Mounted again (showing what Drive has: nothing of it), the same command puts the whole
    file in place."""
    import _drivemount

    mount = working_drive_mount
    data = os.urandom(300_000)
    dest = mount.point / "MyDrive" / "data"
    if command == "pull":
        src = tmp_path / "set.bin"
        src.write_bytes(data)
    else:
        src = tmp_path / "logs"
        src.mkdir()
        (src / "set.bin").write_bytes(data)
    mount.end_at = (getattr(_drivemount, call), 1)
    code, err = _run(command, str(src), str(dest))
    assert code == 1 and mount.disconnected
    line = err.splitlines()[-1]
    assert line.startswith("Error: ") and line.endswith(
        f"{mount.point} no longer answers (Transport endpoint is not connected): the Google "
        "Drive mount has stopped (on Colab it does after a while or under load), and files "
        "written into it that it had not yet sent to Drive are lost. Mount it again "
        f"(drive.mount('{mount.point}', force_remount=True)) and run again, or use drive: "
        "paths instead: drivestage needs no mount"), err
    back = mount.remount()
    try:
        assert back.cached() == {}
        code, err = _run(command, str(src), str(dest))
        assert code == 0, err
        assert back.cached()["MyDrive/data/set.bin"] == data   # (a pull's stamp beside it)
    finally:
        back.stop()
