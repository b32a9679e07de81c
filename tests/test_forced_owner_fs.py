"""DEST on a file system that sets one owner and one mode for every file: a vfat or NTFS
disk mounted with ``uid=``, drvfs (WSL's ``/mnt/c``), some FUSE and network mounts.

The checks that keep someone who can write DEST from swapping drivestage's temporary folder
or state folder (:mod:`drivestage.extract.tempdir`, :mod:`drivestage.extract.statedir`)
compare owners and modes; there, the folders drivestage makes itself show the mount's owner
and modes, and must still be taken for its own. Modelled with ``bindfs`` (a FUSE mount that
shows every file as ``nobody``'s, mode 0777), which ``.ci/run`` installs; skipped where it
cannot be mounted.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from _archives import a_zip, tree
from drivestage.cli import cli
from drivestage.extract import extract

DATA = {"ds/a.txt": b"alpha", "ds/sub/b.txt": b"beta"}


@pytest.fixture
def forced(tmp_path):
    """A folder whose every file shows as ``nobody``'s, mode 0777."""
    if shutil.which("bindfs") is None or os.geteuid() != 0:
        pytest.skip("needs bindfs and root (.ci/run installs bindfs)")
    src, mnt = tmp_path / "src", tmp_path / "mnt"
    src.mkdir()
    mnt.mkdir()
    made = subprocess.run(["bindfs", "--force-user=nobody", "--force-group=nogroup",
                           "--perms=a+rwx", str(src), str(mnt)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"bindfs cannot mount here: {made.stderr.strip()}")
    try:
        assert os.stat(mnt).st_uid != os.geteuid()
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_an_extraction_there_takes_its_own_folders_for_its_own(forced, tmp_path):
    archive = tmp_path / "a.zip"
    archive.write_bytes(a_zip(DATA))
    dest = forced / "dest"
    for _ in range(2):  # the second meets the state folder the first made
        result = extract(archive, dest)
        assert sorted(result.paths) == sorted(DATA)
    assert tree(dest) == DATA
    assert sorted(os.listdir(dest)) == [".drivestage", "ds"]  # no temporary folder left


def test_a_pull_there_stages_and_its_rerun_finds_its_stamp(forced, emulator, drive_env, env):
    blob = a_zip(DATA)  # once: a zip's member times are the clock's
    emulator.add_file("d/set.zip", blob)
    dest = forced / "data"
    first = CliRunner().invoke(cli, ["pull", "drive:d/set.zip", str(dest), "-x"])
    assert first.exit_code == 0, first.stderr
    again = CliRunner().invoke(cli, ["pull", "drive:d/set.zip", str(dest), "-x"])
    assert again.exit_code == 0, again.stderr
    assert "already staged" in again.stderr
    assert tree(dest) == {"set.zip": blob, **DATA}
    assert sorted(os.listdir(dest)) == [".drivestage", "ds", "set.zip"]


def test_a_pull_into_such_a_mount_made_read_only_says_so(tmp_path, emulator, drive_env, env):
    """The state folder shows the mount's owner; whether that is whom drivestage's files get
    is seen by making a file there, which a read-only mount refuses: the pull says the disk
    is read-only, not that the state folder is someone else's."""
    if shutil.which("bindfs") is None or os.geteuid() != 0:
        pytest.skip("needs bindfs and root (.ci/run installs bindfs)")
    src, mnt = tmp_path / "src", tmp_path / "mnt"
    (src / "data" / ".drivestage").mkdir(parents=True)  # an earlier pull's, before the mount
    mnt.mkdir()
    made = subprocess.run(["bindfs", "-o", "ro", "--force-user=nobody", "--force-group=nogroup",
                           "--perms=a+rwx", str(src), str(mnt)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"bindfs cannot mount here: {made.stderr.strip()}")
    try:
        emulator.add_file("d/set.zip", a_zip(DATA))
        got = CliRunner().invoke(cli, ["pull", "drive:d/set.zip", str(mnt / "data"), "-x"])
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
    assert got.exit_code == 1
    line = got.stderr.strip().splitlines()[-1]
    assert line.startswith(f"Error: cannot stage drive:d/set.zip into {mnt / 'data'}: "
                           "Read-only file system"), line
    assert sorted(os.listdir(src / "data")) == [".drivestage"]
