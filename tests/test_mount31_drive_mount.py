"""What counts as the Google Drive mount (mount31): Colab mounts Drive at ``/content/drive``
as a FUSE file system (``type fuse.drive``: google/colab/drive.py looks for that in
``mount``'s output). A plain local folder there, nothing mounted, was taken for the mount
by its name alone: a push into ``/content/drive/x`` was warned "lost when the runtime
ends", a pull "sends every byte back to Drive", both false. Now a FUSE mount must be there.
Modelled with ``bindfs`` (a FUSE mount whose type and source do not name Drive), which
``.ci/run`` installs; that half is skipped where it cannot be mounted."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

import drivestage.localfs
from _cli import run
from drivestage.localfs import drive_mount

WARNED = "is inside the Google Drive mount"


@pytest.fixture
def content(tmp_path, monkeypatch):
    """Colab's ``/content`` at ``tmp_path/content``, its Drive mount point ``…/drive``."""
    monkeypatch.setattr(drivestage.localfs, "COLAB_CONTENT", str(tmp_path / "content"))
    monkeypatch.setattr(drivestage.localfs, "COLAB_DRIVE_MOUNT",
                        str(tmp_path / "content" / "drive"))
    (tmp_path / "content" / "drive").mkdir(parents=True)
    return tmp_path / "content"


def _logs(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "epoch_001.pt").write_bytes(b"weights" * 100)
    return logs


def test_a_plain_folder_at_colabs_mount_point_is_local_disk(local_state, tmp_path, content):
    dest = content / "drive" / "runs"
    code, _, err = run("push", str(_logs(tmp_path)), str(dest))
    assert code == 0, err
    assert WARNED not in err, err                                  # was: "… is lost when …"
    assert (dest / "epoch_001.pt").read_bytes() == b"weights" * 100
    assert drive_mount(str(dest)) is None
    # The mount table read as usual, only a FUSE mount there counts (any type: Colab's).
    point = str(content / "drive")
    assert drive_mount(str(dest), f"drive {point} fuse.drive rw 0 0\n") == point
    assert drive_mount(str(dest), f"/src {point} fuse rw 0 0\n") == point
    assert drive_mount(str(dest), f"/dev/sdb {point} ext4 rw 0 0\n") is None


def test_a_fuse_mount_at_colabs_mount_point_is_the_drive_mount(
        local_state, tmp_path, tmp_path_factory, content):
    if shutil.which("bindfs") is None or os.geteuid() != 0:
        pytest.skip("needs bindfs and root (.ci/run installs bindfs)")
    src = tmp_path_factory.mktemp("bound")   # (its path names no Drive: the point decides)
    point = content / "drive"
    made = subprocess.run(["bindfs", str(src), str(point)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"bindfs cannot mount here: {made.stderr.strip()}")
    try:
        dest = point / "runs"
        code, _, err = run("push", str(_logs(tmp_path)), str(dest))
        assert code == 0, err
        assert f"DEST {dest} is inside the Google Drive mount {point}: " in err, err
        assert (src / "runs" / "epoch_001.pt").read_bytes() == b"weights" * 100
    finally:
        subprocess.run(["umount", str(point)], check=False)
