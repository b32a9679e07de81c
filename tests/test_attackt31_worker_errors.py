"""attackt31: a DataLoader worker that runs out of memory without the OOM killer, and one that
crashes (trainer/worker_deaths.py).

- numpy's ``MemoryError: Unable to allocate … GiB`` in a worker (a large image, data.cache)
  reaches the training thread as torch's ``Caught MemoryError in DataLoader worker process 0``:
  the same shortage as the OOM killer's SIGKILL, but it ended the run with a traceback and
  nothing saved since the last save (the lead's stop-save took only a death).
- A worker killed by SIGSEGV (a library's crash on some image) was advised `out of memory?
  lower data.workers, train.batch_size or data.cache`: no memory setting changes a crash, and
  the resume reads the same batch again."""
from __future__ import annotations

import os
import re
import signal

import pytest

from trainer.config import load_config
from trainer.data.dataset import YoloDataset
from trainer.engine import fit
from trainer.errors import TrainingInterrupted

_MAIN = os.getpid()


def _fourth_batch_fails(monkeypatch, fail) -> None:
    """The worker's fourth batch (asked once the second was taken: a step is done, so the
    stop saves whenever it is seen) calls ``fail()``."""
    read, calls = YoloDataset.__getitems__, [0]

    def getitems(self, indices):
        calls[0] += 1
        if self.train and os.getpid() != _MAIN and calls[0] == 4:
            fail()
        return read(self, indices)

    monkeypatch.setattr(YoloDataset, "__getitems__", getitems)


def _stopped(tiny_config) -> TrainingInterrupted:
    cfg = load_config(tiny_config(**{"data.workers": 1, "train.batch_size": 4,
                                     "train.freeze_epochs": 0, "train.epochs": 1}))
    with pytest.raises(TrainingInterrupted) as caught:
        fit(cfg, resume="none")
    text = str(caught.value)
    at = re.match(r"stopped by a DataLoader worker's death at epoch 1, iteration (\d): ", text)
    assert at and caught.value.exit_code == 1, text
    assert os.path.isfile(os.path.join(cfg.train.out_dir, f"autosave_{int(at[1]):08d}.pt"))
    return caught.value


def test_a_worker_out_of_memory_without_the_oom_killer_stops_with_a_save(
        tiny_config, one_torch_thread, monkeypatch):
    def allocate() -> None:
        raise MemoryError("Unable to allocate 3.52 GiB for an array with shape (30000, 40000, "
                          "3) and data type uint8")

    _fourth_batch_fails(monkeypatch, allocate)
    text = str(_stopped(tiny_config))
    assert text.endswith(
        "; resume with --resume auto (Caught MemoryError in DataLoader worker process 0: "
        "MemoryError: Unable to allocate 3.52 GiB for an array with shape (30000, 40000, 3) and "
        "data type uint8: out of memory? lower data.workers, train.batch_size or data.cache "
        "before you resume)"), text


def test_a_worker_that_crashed_is_not_advised_memory_settings(
        tiny_config, one_torch_thread, monkeypatch):
    def crash() -> None:
        import faulthandler

        faulthandler.disable()   # (pytest's: its dump on stderr)
        os.kill(os.getpid(), signal.SIGSEGV)

    _fourth_batch_fails(monkeypatch, crash)
    text = str(_stopped(tiny_config))
    assert re.search(r"; resume with --resume auto \(DataLoader worker \(pid \d+\) is killed by "
                     r"signal: Segmentation fault: a crash while a batch was read, not memory "
                     r"\(a damaged image, or a bug of the library that reads it\): if it comes "
                     r"again at the same iteration, that batch's images are the cause\)$",
                     text), text
