"""docs/troubleshooting.md: the messages of a pull into a file system that refuses what an
extraction needs (see tests/_messages.py).

Such a file system (a Google Drive mount, FAT or exFAT, some network shares) is stood in
for by a child process whose audit hook answers ``os.symlink`` as vfat does: EPERM, with
the link's target and path in the error, as the kernel's error names them.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import textwrap

import pytest
from click.testing import CliRunner

from _archives import a_fixed_zip
from _cli import child_env
from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture: the fork server)
from _messages import renders, shown
from drivestage.cli import cli

NO_SYMLINKS = textwrap.dedent('''
    import errno, os, sys
    def refuse(event, args):
        if event == "os.symlink":   # (target, path, dir_fd), as vfat answers it
            raise OSError(errno.EPERM, os.strerror(errno.EPERM), args[0], None, args[1])
    sys.addaudithook(refuse)
    from drivestage.entry import main
    sys.argv = ["drivestage"] + sys.argv[1:]
    main()
''')


@renders("is a symbolic link, and the file system of … refuses them")
def test_an_archive_with_a_link_into_a_file_system_without_links(emulator, tmp_path):
    blob = a_fixed_zip({"ds/a.txt": b"alpha"}, {"ds/to_a": "a.txt"})
    emulator.add_file("d/set.zip", blob)
    dest = tmp_path / "data"
    env = dict(child_env(emulator), DRIVESTAGE_STATE_DIR=str(tmp_path / "state"))
    done = cli_server().run(["pull", "drive:d/set.zip", str(dest), "-x", "-q"],
                            script=NO_SYMLINKS, env=env, text=True, timeout=120)
    last = done.stderr.strip().splitlines()[-1]
    # Was: "Error: cannot stage drive:d/set.zip into …/data: Operation not permitted
    # (a.txt)": the link's target named as if it were the trouble, and nothing to do.
    assert done.returncode == 1, done.stderr
    assert last == (f"Error: cannot extract {dest / 'set.zip'} into {dest}: its member "
                    f"ds/to_a is a symbolic link, and the file system of {dest} refuses them "
                    "(Operation not permitted; a Google Drive mount, FAT or exFAT, some "
                    "network shares do); pull into a folder on local disk (e.g. "
                    "/content/data)"), done.stderr
    shown("is a symbolic link, and the file system of … refuses them", last)
    assert (dest / "set.zip").read_bytes() == blob   # downloaded and verified: it stays
    assert sorted(os.listdir(dest)) == [".drivestage", "set.zip"]  # nothing half-extracted
    assert [n for n in os.listdir(dest / ".drivestage") if "tmp" in n] == []


@renders("is another file system mounted inside …; extracted members move into place by renames")
def test_an_archive_whose_folder_in_dest_is_a_mount_point(emulator, drive_env, env, tmp_path):
    """DEST/ds is a mount point (here a bindfs mount of another folder; a Drive mount made
    inside DEST, a disk mounted there): the merge's rename into it fails with EXDEV."""
    if shutil.which("bindfs") is None or os.geteuid() != 0:
        pytest.skip("needs bindfs and root (.ci/run installs bindfs)")
    dest, other = tmp_path / "data", tmp_path / "other"
    (dest / "ds").mkdir(parents=True)
    other.mkdir()
    made = subprocess.run(["bindfs", str(other), str(dest / "ds")], capture_output=True,
                          text=True)
    if made.returncode != 0:
        pytest.skip(f"bindfs cannot mount here: {made.stderr.strip()}")
    try:
        blob = a_fixed_zip({"ds/a.txt": b"alpha", "top.txt": b"top"})
        emulator.add_file("d/set.zip", blob)
        result = CliRunner().invoke(cli, ["pull", "drive:d/set.zip", str(dest), "-x", "-q"])
        last = result.stderr.strip().splitlines()[-1]
        # Was: "Error: cannot stage drive:d/set.zip into …/data: Invalid cross-device link
        # (…/data/ds/a.txt)", and nothing to do about it.
        assert result.exit_code == 1, result.stderr
        assert last == (f"Error: cannot stage drive:d/set.zip into {dest}: {dest / 'ds'} is "
                        f"another file system mounted inside {dest}; extracted members move "
                        "into place by renames, which cannot cross file systems (Invalid "
                        "cross-device link). Pull into a folder with no mount inside it, or "
                        "unmount it"), result.stderr
        shown("is another file system mounted inside …; extracted members move into place "
              "by renames", last)
        assert os.listdir(other) == [] and not (dest / "top.txt").exists()
        assert (dest / "set.zip").read_bytes() == blob
    finally:
        subprocess.run(["umount", str(dest / "ds")], check=False)
