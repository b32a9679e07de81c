"""attackstream40: a file-size limit (``ulimit -f``) near the size of the run's checkpoints.

attacktrain40 refuses a run before its first step when the limit is below the checkpoints'
size, measured by the room check's estimate, which counts a whole MiB for a checkpoint's
config, history and RNG states (they take < 100 KiB): a disk's room is better overcounted.
Against a limit it refused a run whose every checkpoint fitted, in words that read as a
contradiction: ``may write no file larger than 5.4 MiB …, and the run's checkpoints are
about 5.4 MiB each: none could be saved`` (the file: 4.4 MiB). Measured here, the tiny
model's checkpoints (4,580,073 bytes) were refused under any limit up to 1 MiB above them.
"""
from __future__ import annotations

import shutil

import pytest

from tests.test_attacktrain40_file_limit import _config, _file_limit
from trainer.config import load_config
from trainer.engine import fit
from trainer.errors import SaveError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_a_limit_just_above_the_checkpoints_size_trains_and_one_just_below_is_refused(
        tmp_path):
    fit(load_config(_config(tmp_path, 1)), resume="none")
    size = (tmp_path / "logs" / "epoch_001.pt").stat().st_size
    shutil.rmtree(tmp_path / "logs")

    with _file_limit(size + (512 << 10)):
        result = fit(load_config(_config(tmp_path, 1)), resume="none")
    assert result.epochs_run == 1
    assert (tmp_path / "logs" / "epoch_001.pt").stat().st_size == size
    shutil.rmtree(tmp_path / "logs")

    with _file_limit(size - 1), pytest.raises(SaveError, match=r"this process may write no "
                                               r"file larger than 4\.4 MiB \(its file-size"):
        fit(load_config(_config(tmp_path, 1)), resume="none")
    assert not list((tmp_path / "logs").rglob("*.pt"))
