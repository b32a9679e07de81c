"""attackint46: a checkpoint's ``epoch_time_s`` (trainlefts46: the epoch's time before a
mid-epoch save) that no trainer writes: infinite, or beyond any epoch's time.

bookkeeping_problem let through any number >= 0: ``inf`` passed, was added to the resumed
epoch's time, and the epoch's line stopped the run in a traceback after the epoch was
trained (``_hms``: OverflowError: cannot convert float infinity to integer); ``1e300`` gave
an ETA of a 300-digit number of hours and a results.csv row saying so. Now such a file is
refused as any other lying bookkeeping (attack28): one line naming the file and the field,
exit 1, before a step is trained."""
from __future__ import annotations

import hashlib
import os

import pytest

from test_messages_train import trainer
from test_trainer22_hostile import _hostile, trained  # noqa: F401 (a fixture)

HEADING = "which no checkpoint of this trainer holds (a damaged file, or another program's)"

LIES = [(float("inf"), "epoch_time_s = inf"), (1e300, "epoch_time_s = 1e+300")]


def _md5s(folder) -> dict:
    return {n: hashlib.md5(open(os.path.join(folder, n), "rb").read()).hexdigest()
            for n in sorted(os.listdir(folder))}


@pytest.mark.parametrize("seconds,field", LIES, ids=[f for _, f in LIES])
def test_resume_from_a_checkpoint_whose_epoch_time_no_epoch_takes(tiny_config, tmp_path,
                                                                   trained, seconds, field):
    logs = tmp_path / "logs"
    _hostile(trained, logs, lambda state: state.update(
        epoch=0, epoch_iteration=1, epoch_time_s=seconds))
    path = logs / "epoch_001.pt"
    before = _md5s(logs)
    code, line = trainer("train", "-c", tiny_config(**{"train.out_dir": str(logs)}),
                         "--resume", str(path))
    assert (code, line) == (1, f"Error: {path} holds {field}, {HEADING}: resume from another")
    assert _md5s(logs) == before   # nothing trained, nothing rewritten
