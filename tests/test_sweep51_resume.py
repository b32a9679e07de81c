"""sweep51: two resume gaps attackb51 left.

A checkpoint's ``train_samples`` whose ``count`` is no count (``"9"``) turned off both the
check of the training list on resume and the check of the samples trained against it: the
resume went on as from a checkpoint that holds none. And a checkpoint from before train27
(its samples of the epoch not counted) holding more steps of its epoch than the epoch has
with this training list and batch skipped the rest of the epoch without a word.
"""
from __future__ import annotations

import logging

import pytest

from trainer.errors import CheckpointError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

_DIGEST = "0" * 64


@pytest.mark.parametrize("listed, said", [
    ({"count": "9", "images": _DIGEST, "boxes": _DIGEST}, "train_samples.count = '9'"),
    ({"count": True, "images": _DIGEST, "boxes": _DIGEST}, "train_samples.count = True"),
    ({"count": -1, "images": _DIGEST, "boxes": _DIGEST}, "train_samples.count = -1"),
    ({"images": _DIGEST, "boxes": _DIGEST}, "train_samples.count = None"),
    ({"count": 9, "images": 5, "boxes": _DIGEST}, "train_samples.images = 5"),
    ([9], "train_samples = [9]"),
], ids=["string", "bool", "negative", "missing", "digest", "list"])
def test_a_training_list_fingerprint_no_trainer_writes_is_refused_as_it_is_loaded(
        tmp_path, listed, said):
    from trainer import checkpoint as ckpt

    state = {"format_version": ckpt.FORMAT_VERSION, "model": {}, "optimizer": {}, "epoch": 0,
             "iteration": 3, "epoch_iteration": 3, "config": {}, "run": "r1",
             "epoch_meter": {"steps": 3, "samples": 6}, "train_samples": listed}
    path = ckpt.save_checkpoint(state, str(tmp_path / "last.pt"))
    with pytest.raises(CheckpointError) as refused:            # on main: loaded
        ckpt.load_checkpoint(path)
    assert str(refused.value) == (
        f"{path} holds {said}, which no checkpoint of this trainer holds (a damaged file, or "
        "another program's): resume from another")


def test_what_the_trainer_writes_and_a_checkpoint_without_a_list_still_load(tmp_path):
    from trainer import checkpoint as ckpt
    from trainer.sample_list import fingerprint

    state = {"format_version": ckpt.FORMAT_VERSION, "model": {}, "optimizer": {}, "epoch": 0,
             "iteration": 3, "epoch_iteration": 3, "config": {}, "run": "r1",
             "epoch_meter": {"steps": 3, "samples": 6},
             "train_samples": fingerprint([f"{i}.jpg 1,1,2,2,0" for i in range(9)])}
    assert ckpt.load_checkpoint(ckpt.save_checkpoint(state, str(tmp_path / "a.pt")))
    state["train_samples"] = None    # (before trainfault36)
    assert ckpt.load_checkpoint(ckpt.save_checkpoint(state, str(tmp_path / "b.pt")))
