"""attacktrain40: a trainer under a file-size limit smaller than its checkpoints (``ulimit -f``:
a batch system's or a container's; RLIMIT_FSIZE).

The room check before the first step counts free disk space only: such a run trained its
first epoch, then every save failed with ``[Errno 27] File too large`` (an error line each
epoch, the run going on with nothing saved: a disconnect then cost the whole run), and its
end said "fix that". It is refused now before a step is trained, in one line naming the
limit, the checkpoint's size and what to do; a limit above the checkpoints trains as before.
The limit is set in this test's process around the run (Python ignores SIGXFSZ, so a write
past it fails with EFBIG, as in a trainer's process) and put back after it.
"""
from __future__ import annotations

import hashlib
import resource
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from _messages import error_text
from trainer.config import load_config
from trainer.engine import fit
from trainer.errors import SaveError
from _tiny_run import tiny_run_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LIMIT = 1_000_000   # bytes: a checkpoint of the tiny model is about 4.4 MiB


def _config(tmp_path: Path, epochs: int) -> str:
    return tiny_run_config(tmp_path, epochs, logs=None)


@contextmanager
def _file_limit(limit: int) -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    if hard != resource.RLIM_INFINITY and hard < limit:
        pytest.skip(f"this machine's hard file-size limit ({hard}) is below {limit}")
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def _md5s(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
            for p in folder.rglob("*") if p.is_file()}


def _refusal(size_text: str) -> str:
    return (f"Error: this process may write no file larger than 976.6 KiB (its file-size "
            f"limit, ulimit -f), and the run's checkpoints are about {size_text} each: none "
            f"could be saved; nothing was trained: raise the limit (ulimit -f unlimited) "
            f"and run the same command again")


def test_a_new_run_under_a_file_size_limit_below_its_checkpoints_is_refused_before_a_step(
        tmp_path):
    config = load_config(_config(tmp_path, 1))
    with _file_limit(LIMIT), pytest.raises(SaveError) as refused:
        fit(config, resume="none")

    text = error_text(refused.value)
    size = text.split("checkpoints are about ")[1].split(" each")[0]
    assert text == _refusal(size)
    assert size.endswith(" MiB") and 4.0 <= float(size.split()[0]) <= 6.0
    assert refused.value.exit_code == 1
    logs = tmp_path / "logs"
    assert not [p for p in logs.rglob("*.pt")] if logs.exists() else True


def test_a_resume_under_the_limit_is_refused_and_the_run_folder_is_left_as_it_was(tmp_path):
    fit(load_config(_config(tmp_path, 1)), resume="none")
    logs = tmp_path / "logs"
    before = _md5s(logs)

    with _file_limit(LIMIT), pytest.raises(SaveError) as refused:
        fit(load_config(_config(tmp_path, 2)), resume="auto")

    text = error_text(refused.value)
    size = text.split("checkpoints are about ")[1].split(" each")[0]
    assert text == _refusal(size)
    assert size.endswith(" MiB") and 4.0 <= float(size.split()[0]) <= 6.0
    assert _md5s(logs) == before


def test_a_limit_above_the_checkpoints_trains_as_before(tmp_path):
    with _file_limit(64 << 20):
        result = fit(load_config(_config(tmp_path, 1)), resume="none")
    assert result.epochs_run == 1
    assert (tmp_path / "logs" / "epoch_001.pt").is_file()
