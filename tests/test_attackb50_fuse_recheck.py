"""attackb50: the look again at the end of a local folder's pull (pull50's stage_recheck)
trusts what this process hashed by a file's identity (device, inode, size, mtime, ctime).
On a FUSE mount of Drive the daemon chooses that identity: the inode is the node's (Drive
keeps a file's id across revisions) and the ctime is the mtime (tests/_drivemount.py, as
test_push_fuse says of rclone and gcsfuse). A new revision of the same size that reaches the
mount during the pull with the mtime it was uploaded with (rclone and drivestage keep the
local mtime) has the old identity: the look again calls it unchanged, and the pull ends
exit 0 with ``a.txt`` of before beside the rest of after.

The lead's decision (fuse51, option (a)): at the look again, each file staged from a FUSE or
network mount (``localfs.fuse_devices``, the rule by which ``vouch`` trusts no such identity
across processes) is hashed again and compared with the md5 of the bytes staged; a file on a
local disk keeps the identity check. Here the pull fails, naming a.txt (a strict xfail on
main: the pull ended without an error).
"""
from __future__ import annotations

import pytest

import drivestage
from drivestage.errors import RemoteChangedError

from _drivemount import working_drive_mount  # noqa: F401  (a fixture)

MTIME = 1_000_000_000 * 10**9


def test_a_same_size_revision_on_a_fuse_mount_during_its_pull_is_not_missed(
        working_drive_mount, tmp_path):
    mount = working_drive_mount
    for name in ("a.txt", "b.txt", "c.txt"):
        mount.change_on_drive(f"MyDrive/ds/{name}", name.encode() * 50, MTIME)
    mount.catch_up()
    src = mount.point / "MyDrive" / "ds"
    out = tmp_path / "out"
    changed: list = []

    def progress(label, total, initial):
        def arrived(n: int) -> None:
            if not changed and (out / "ds" / "a.txt").exists():
                changed.append(n)    # (another machine's revision, shown now)
                mount.change_on_drive("MyDrive/ds/a.txt", b"A" * 250, MTIME)
                mount.catch_up()
        return arrived

    with pytest.raises(RemoteChangedError) as caught:
        drivestage.pull(str(src), str(out), jobs=1, progress=progress)
    assert changed
    assert str(caught.value) == (
        f"{src}/a.txt changed in its folder while this pull ran (a new version since the "
        "folder was listed): what it staged mixes files of before and after that change. Run "
        "again to stage the new version (only what changed is fetched)")
    # The rerun stages the new version.
    drivestage.pull(str(src), str(out), jobs=1)
    assert (out / "ds" / "a.txt").read_bytes() == b"A" * 250
