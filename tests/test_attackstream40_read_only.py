"""attackstream40: the run folder becomes read-only after attacktrain40's check before the
first step (a disk remounted read-only after I/O errors in the middle of a run).

No check made once can see that; what users rely on then is that the run does not look fine:
each failed save is an ERROR line, and the run ends with an error (exit 1) naming where its
last state was kept (``/tmp``) and how to go on from it, even where nobody read those lines
(``trainer train … 2>&1 | head``: they are dropped, the exit code stays). A guard: this held
before the stream changes and holds after them. Left as it is: the run trains on to its last
epoch with nothing saved (a save may fail for a while and then work: a full disk freed).
TensorBoard's writer thread, ended by the same error, printed its traceback on stderr beside
the one-line warning; it does not now.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import threading

import pytest
import torch

from _tmpfs import small_disk  # noqa: F401 (a fixture)
from tests.test_attacktrain40_read_only import _config, _read_only
from trainer.callbacks import Callback
from trainer.config import load_config
from trainer.engine import fit
from trainer.errors import SaveError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_a_run_folder_made_read_only_after_the_check_ends_the_run_with_an_error(
        tmp_path, small_disk, caplog):
    disk = small_disk(64 << 20)
    logs = disk / "logs"
    logs.mkdir()

    class ReadOnlyAfterTheFirstStep(Callback):
        def on_train_batch_end(self, run, pos, logs):
            if pos.iteration == 1:
                _read_only(disk)

    raised: list[str] = []   # (what a thread's unhandled exception prints on stderr)
    before = threading.excepthook
    threading.excepthook = lambda args: raised.append(f"{args.thread}: {args.exc_value!r}")
    try:
        with caplog.at_level(logging.INFO, logger="trainer"), \
                pytest.raises(SaveError) as ended:
            fit(load_config(_config(tmp_path, 2, logs)), resume="none",
                callbacks=[ReadOnlyAfterTheFirstStep()])
    finally:
        threading.excepthook = before

    assert ended.value.exit_code == 1
    text = str(ended.value)
    assert text.startswith(f"could not write the checkpoint of epoch 2 (last.pt, epoch_002.pt) "
                           f"in {logs}: [Errno 30] Read-only file system")
    rescued = re.search(r"its state is saved in (\S+/epoch_002\.pt) on this machine: fix "
                        r"that, then --resume \1 goes on from it", text)
    assert rescued is not None, text
    try:
        assert torch.load(rescued.group(1), weights_only=True)["epoch"] == 2
    finally:
        shutil.rmtree(os.path.dirname(rescued.group(1)))
    errors = [r.getMessage().split(":")[0] for r in caplog.records
              if r.levelno >= logging.ERROR]
    assert errors == [f"could not write last.pt, epoch_001.pt, best.pt in {logs}",
                      f"could not write last.pt, epoch_002.pt in {logs}"]
    assert not list(logs.rglob("*.pt"))
    # TensorBoard says it in one line; its writer thread's traceback (15 lines of its
    # internals) is not printed beside it.
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"TensorBoard logging off: could not write {logs}/tensorboard: Read-only file " \
        "system" in warned
    assert raised == []
