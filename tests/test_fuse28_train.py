"""The trainer's run folder on a FUSE mount (``train.out_dir`` under
``/content/drive/MyDrive``, which the trainer warns against but runs): checkpoints written
there are found and resumed from in a later session, when the mount shows them with new
inode numbers and ctimes and millisecond mtimes (modelled as in
tests/test_fuse28_remount.py, with ``bindfs``)."""
from __future__ import annotations

import os
import shutil

import pytest

from _once import config_like
from test_fuse28_remount import Mount
from test_resume import one_epoch  # noqa: F401 (a module fixture: one finished epoch)
from trainer import checkpoint as ckpt
from trainer.config import load_config
from trainer.engine import fit

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]


@pytest.fixture
def drive(tmp_path):
    if shutil.which("bindfs") is None or os.geteuid() != 0:
        pytest.skip("needs bindfs and root (.ci/run installs bindfs)")
    mount = Mount(tmp_path, ["--ctime-from-mtime"])
    yield mount
    mount.umount(at_end=True)


def test_a_run_folder_on_the_mount_resumes_in_each_new_session(drive, one_epoch):  # noqa: F811
    out = drive.point / "logs"
    shutil.copytree(one_epoch[0] / "logs", out)
    path = config_like(one_epoch[0], out, **{"train.epochs": 2})
    drive.new_session()
    first = fit(load_config(path), resume="auto")
    assert first.resumed_from == str(out / "epoch_001.pt") and first.epochs_run == 1
    drive.new_session()
    again = fit(load_config(path), resume="auto")
    assert again.resumed_from == str(out / "epoch_002.pt") and again.epochs_run == 0
    assert ckpt.read_sidecar(str(out / "last.pt")).epoch == 2
    assert ckpt.undescribed(str(out)) == []
