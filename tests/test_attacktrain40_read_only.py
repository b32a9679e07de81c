"""attacktrain40: ``train.out_dir`` on a read-only file system (a dataset disk mounted ``ro``,
a remount after I/O errors, a read-only bind mount in a container).

The run trained every epoch with nothing saved (an error line per epoch and the TensorBoard
writer's traceback), and at its end kept the last state in ``/tmp``: a disconnect meanwhile
cost the whole run. The room check before the first step now refuses such a folder in one
line, exit 1; nothing is trained or written, here or in ``/tmp``. A real tmpfs remounted
read-only (root; skipped elsewhere, as tests/_tmpfs.py's small disks are).
"""
from __future__ import annotations

import ctypes
import glob
import hashlib
import os
import tempfile
from pathlib import Path

import pytest

from _messages import error_text
from _tmpfs import _libc, small_disk  # noqa: F401 (a fixture)
from trainer.config import load_config
from trainer.engine import fit
from trainer.errors import SaveError
from _tiny_run import tiny_run_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")

_MS_RDONLY, _MS_REMOUNT = 1, 32


def _read_only(point: Path) -> None:
    if _libc().mount(b"tmpfs", os.fsencode(point), b"tmpfs", _MS_REMOUNT | _MS_RDONLY,
                     None) != 0:
        err = ctypes.get_errno()
        pytest.skip(f"cannot remount {point} read-only: {os.strerror(err)}")


def _config(tmp_path: Path, epochs: int, out_dir: Path) -> str:
    return tiny_run_config(tmp_path, epochs, logs=None, out_dir=out_dir)


def _md5s(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
            for p in folder.rglob("*") if p.is_file()}


def _rescued() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "trainer-rescued-*")))


def _refusal(out_dir: Path) -> str:
    return (f"Error: train.out_dir {out_dir} cannot be written (it is on a read-only file "
            f"system): no checkpoint of the run could be saved there; nothing was trained: "
            f"set train.out_dir to a folder you can write")


@pytest.mark.parametrize("resumed", [False, True], ids=["new run", "resume"])
def test_a_run_folder_on_a_read_only_file_system_is_refused_before_a_step(
        tmp_path, small_disk, resumed):
    disk = small_disk(64 << 20)
    logs = disk / "logs"
    if resumed:
        fit(load_config(_config(tmp_path, 1, logs)), resume="none")
    else:
        logs.mkdir()
    before, rescued = _md5s(logs), _rescued()
    _read_only(disk)

    with pytest.raises(SaveError) as refused:
        fit(load_config(_config(tmp_path, 2, logs)), resume="auto")

    assert error_text(refused.value) == _refusal(logs)
    assert refused.value.exit_code == 1
    assert _md5s(logs) == before
    assert _rescued() == rescued     # (no state kept in /tmp: none was trained)
