"""attackr248: a folder of SRC push could not stat, on a file system whose listings give no
kind (DT_UNKNOWN: XFS without ftype, some FUSE and network file systems), under an
``--include`` filter.

The walk records a path it could not stat as unread only where the filters would send it
(``local_tree._sent``), and knows a folder from a file by the listing's kind. With no kind
in the listing (and the stat failing), the folder was taken for a file, ``ckpts`` matched no
``--include '*.pt'``, so it was not unread; ``--delete`` then removed the ``*.pt`` files under
Drive's ``ckpts`` (``extra._filtered``), the copies of checkpoints the push could not read."""
from __future__ import annotations

import errno

import pytest

from _cli import run
from _drivemount import LOOKUP, FullDriveMount, _mounted
from test_pushread48_unread import live


@pytest.fixture
def mounted(tmp_path):
    for mount in _mounted(tmp_path / "src" / "mnt", writable=True):
        (mount.point / "ckpts").mkdir()
        (mount.point / "ckpts" / "epoch_002.pt").write_bytes(b"two, new")
        (tmp_path / "src" / "a.pt").write_bytes(b"a")
        yield mount


def test_an_unstatable_folder_in_a_listing_without_kinds_keeps_its_checkpoints_on_drive(
        emulator, drive_env, local_state, tmp_path, mounted: FullDriveMount):
    for rel, data in {"mnt/ckpts/epoch_001.pt": b"one", "mnt/ckpts/epoch_002.pt": b"two",
                      "gone.pt": b"g"}.items():
        emulator.add_file(f"runs/x/{rel}", data)
    mounted.kinds_unknown = True
    mounted.fail[LOOKUP] = errno.EIO
    code, out, err = run("push", str(tmp_path / "src"), "drive:runs/x", "--delete",
                         "--include", "*.pt")
    assert live(emulator) == {"a.pt": b"a", "mnt/ckpts/epoch_001.pt": b"one",
                              "mnt/ckpts/epoch_002.pt": b"two"}
    assert code == 1, err[-3000:]
    assert f"could not read {tmp_path}/src/mnt/ckpts (Input/output error)" in err, err[-3000:]
