"""A save killed between its checkpoint and its sidecar, described again by the next resume
(:func:`trainer.checkpoint.describe_killed_saves`), never reads as saved after a checkpoint
further on: the stop save is written at once by the training thread while an epoch save
queued before it is still being written by the writer thread, and a second Ctrl-C kills
that one between its two files. Dated by its file's time, it was "saved last", the stop save
read as a run sent back on purpose, and the next resume went back to the epoch."""
from __future__ import annotations

import os

import torch

from trainer import checkpoint as ckpt

RUN = "20261204-000000-abcd"


def _state(epoch: int, iteration: int, epoch_iteration: int) -> dict:
    return {"format_version": 2, "model": {"w": torch.full((4,), float(iteration))},
            "optimizer": {}, "epoch": epoch, "iteration": iteration,
            "epoch_iteration": epoch_iteration, "config": {}, "run": RUN}


def test_an_epoch_save_killed_after_the_stop_save_does_not_send_the_run_back(tmp_path):
    folder = str(tmp_path)
    taken = 1_764_800_000.0
    # The state of epoch 1's end, taken first; the stop save's, in epoch 2, taken after it.
    stop = ckpt.save_checkpoint(_state(1, 6, 2), os.path.join(folder, "autosave_00000006.pt"),
                                saved=taken + 10)
    os.utime(stop, (taken + 10, taken + 10))
    epoch = ckpt.save_checkpoint(_state(1, 4, 0), os.path.join(folder, "epoch_001.pt"),
                                 saved=taken)
    os.unlink(ckpt.sidecar_path(epoch))            # killed before its sidecar...
    os.utime(epoch, (taken + 12, taken + 12))      # ...its file completed after the stop save
    assert ckpt.describe_killed_saves(folder) == [epoch]
    chosen = ckpt.newest(ckpt.list_checkpoints(folder), run=RUN)
    assert chosen is not None and chosen.path == stop
    side = ckpt.read_sidecar(epoch)
    assert side is not None and side.epoch == 1 and side.saved < taken + 10


def test_a_killed_save_further_on_than_every_other_keeps_its_file_time(tmp_path):
    """The usual case (last.pt, the folder's most advanced): dated by its file."""
    folder = str(tmp_path)
    ckpt.save_checkpoint(_state(1, 4, 0), os.path.join(folder, "epoch_001.pt"), saved=100.0)
    os.utime(os.path.join(folder, "epoch_001.pt"), (100.0, 100.0))
    last = ckpt.save_checkpoint(_state(2, 8, 0), os.path.join(folder, "last.pt"), saved=200.0)
    os.unlink(ckpt.sidecar_path(last))
    os.utime(last, (200.0, 200.0))
    assert ckpt.describe_killed_saves(folder) == [last]
    assert ckpt.read_sidecar(last).saved == 200.0
    assert ckpt.newest(ckpt.list_checkpoints(folder), run=RUN).path == last
