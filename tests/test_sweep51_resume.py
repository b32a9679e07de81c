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

from _messages import renders, shown
from _one_epoch import one_epoch  # noqa: F401  (the shared one-epoch run)
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


def _loader(samples: int, batch: int, drop_last: bool):
    from torch.utils.data import DataLoader

    from trainer.data.sampler import ResumableSampler

    data = list(range(samples))
    sampler = ResumableSampler(data, num_replicas=1, rank=0, shuffle=False)
    return DataLoader(data, batch_size=batch, sampler=sampler, drop_last=drop_last)


class _Run:   # what resumed_epoch reads of a run: where it resumed from, its process
    resumed_from = "logs/last.pt"

    class info:
        is_main, world_size = True, 1


@pytest.mark.parametrize("drop_last, steps", [(False, 5), (True, 4)])
def test_more_steps_than_the_epoch_has_in_an_uncounted_checkpoint_is_said(caplog, drop_last,
                                                                          steps):
    """9 samples, 2 a step: 5 steps (4 where the last short batch is dropped). Resumed at
    step 6 of the epoch with its samples not counted (a checkpoint from before train27),
    the skip passes the epoch's end: said, the rest of the epoch skipped as before."""
    from trainer.sample_list import resumed_epoch

    with caplog.at_level(logging.WARNING, logger="trainer"):
        assert resumed_epoch(_loader(9, 2, drop_last), 2, steps, None, _Run) == \
            min(steps * 2, 9)   # the last step of the epoch: nothing said
        assert caplog.messages == []
        assert resumed_epoch(_loader(9, 2, drop_last), 2, steps + 1, None, _Run) == 9
        assert resumed_epoch(_loader(9, 2, drop_last), 2, steps + 1, 9, _Run) == 9  # counted
        assert resumed_epoch(_loader(9, 2, drop_last), 2, 0, None, _Run) == 0
    assert caplog.messages == [
        f"logs/last.pt holds {steps + 1} steps of epoch 3 done, more than the {steps} it has "
        "with this training list (data.train) at 2 samples a step on each of 1 process: saved "
        "by a trainer that did not count its samples, from a longer list, with a smaller "
        "batch, or damaged; the rest of epoch 3 is skipped (stop and put the list and "
        "train.batch_size back as they were to train it)"]


@renders("holds … steps of epoch … done, more than the … it has with this training list")
def test_a_resume_from_an_uncounted_checkpoint_past_its_epoch_says_it_skips_the_rest(
        one_epoch, tmp_path, caplog):  # noqa: F811
    """The shared one-epoch run (18 samples, 8 a step: 2 steps an epoch) resumed from a
    checkpoint 3 steps into epoch 2 that counts no samples and records no list (as before
    train27): on main epoch 2 ended at once, its rest untrained, without a word."""
    from _torn_checkpoint import one_step_into_epoch_2, torn
    from trainer.config import load_config
    from trainer.engine import fit

    def tear(state: dict) -> None:
        one_step_into_epoch_2(state)
        state.update(iteration=state["iteration"] + 2, epoch_iteration=3)
        del state["epoch_meter"]["samples"]
        del state["train_samples"]

    config, path = torn(one_epoch, tmp_path / "logs", tear, name="last.pt")
    with caplog.at_level(logging.WARNING, logger="trainer"):
        fit(load_config(config), resume=path)
    said = [m for m in caplog.messages if "steps of epoch 2 done" in m]
    assert said == [
        f"{path} holds 3 steps of epoch 2 done, more than the 2 it has with this training list "
        "(data.train) at 8 samples a step on each of 1 process: saved by a trainer that did "
        "not count its samples, from a longer list, with a smaller batch, or damaged; the rest "
        "of epoch 2 is skipped (stop and put the list and train.batch_size back as they were "
        "to train it)"]
    shown("holds … steps of epoch … done, more than the … it has with this training list",
          said[0])
