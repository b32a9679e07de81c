"""attacktrain26: a resume after a crash that cut a save short.

A checkpoint is written durably (fsync of the file and its folder), its sidecar after it
without an fsync: a power loss or a VM reset right after a save can leave the sidecar empty
or cut off, beside complete bytes. Such a checkpoint was no checkpoint to ``--resume auto``
(its sidecar unreadable) and none to the repair of a killed save either (a sidecar file was
there): the resume went back to an older checkpoint and trained the epochs since again, or,
with nothing older, started a fresh run whose first save replaced the file."""
from __future__ import annotations

import hashlib
import os
import types

import pytest
import torch

from trainer import checkpoint as ckpt

RUN = "20261205-000000-at26"


def _state(epoch: int) -> dict:
    return {"format_version": 2, "model": {"w": torch.full((4,), float(epoch))},
            "optimizer": {}, "epoch": epoch, "iteration": 4 * epoch, "epoch_iteration": 0,
            "config": {}, "run": RUN}


def _decide(logs):
    from trainer.resume import _decide as decide

    cfg = types.SimpleNamespace(train=types.SimpleNamespace(out_dir=str(logs)))
    return decide(cfg, "auto", None)


def _md5(path) -> str:
    with open(path, "rb") as fh:
        return hashlib.md5(fh.read()).hexdigest()


@pytest.mark.parametrize("left", [b"", b'{"format": 3, "epoch": 2, "iter'],
                         ids=["empty", "cut-off"])
def test_a_sidecar_a_crash_cut_short_is_described_again_and_resumed(tmp_path, left):
    logs = tmp_path / "logs"
    ckpt.save_checkpoint(_state(1), str(logs / "epoch_001.pt"), saved=100.0)
    os.utime(logs / "epoch_001.pt", (100.0, 100.0))
    last = ckpt.save_checkpoint(_state(2), str(logs / "last.pt"), saved=200.0)
    (logs / "last.json").write_bytes(left)
    start = _decide(logs)
    assert start.path == last                        # not epoch_001.pt: epoch 2 is kept
    side = ckpt.read_sidecar(last)
    assert side is not None and (side.epoch, side.run, side.md5) == (2, RUN, _md5(last))


def test_the_only_checkpoint_with_a_sidecar_cut_short_is_no_fresh_start(tmp_path):
    """Without Drive and with no older checkpoint, the run started afresh: its first save
    replaced last.pt, the run's only state."""
    logs = tmp_path / "logs"
    last = ckpt.save_checkpoint(_state(3), str(logs / "last.pt"), saved=300.0)
    before = _md5(last)
    (logs / "last.json").write_bytes(b"")
    start = _decide(logs)
    assert start.path == last and _md5(last) == before
    assert ckpt.read_sidecar(last).epoch == 3
