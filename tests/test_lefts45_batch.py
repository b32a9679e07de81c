"""lefts45: a phase's batch that the number of processes does not divide. Each process takes
``batch // world`` images a step, so the batch trained is the largest multiple of the world
not above the one configured; the learning rate is now scaled for that batch (it was scaled
for the configured one), and rank 0 says so (tests/test_train27_ddp_resume.py shows both on
two gloo processes). A batch smaller than the world is refused before anything is trained:
each process took one image, and batch 2 on 4 GPUs trained at 4 without a word."""
from __future__ import annotations

import pytest

from trainer.config import Config
from trainer.errors import ConfigError
from trainer.optim import check_batches, process_batch


def test_the_batch_trained_is_the_largest_multiple_of_the_processes_and_too_small_is_refused():
    assert process_batch(16, 4) == (4, 16)
    assert process_batch(16, 3) == (5, 15)              # 2 GPUs -> 3: trains at 15
    assert process_batch(3, 2) == (1, 2)
    assert process_batch(2, 1) == (2, 2)
    with pytest.raises(ConfigError) as refused:
        process_batch(2, 4, "train.freeze_batch_size")
    assert str(refused.value) == (
        "train.freeze_batch_size 2 is less than the 4 processes training: each needs at least "
        "one image a step. Set train.freeze_batch_size to 4 or a multiple of it, or train on "
        "fewer processes")
    assert refused.value.exit_code == 2


def test_only_the_phases_still_to_train_are_checked():
    cfg = Config()
    cfg.train.epochs, cfg.train.freeze_epochs = 10, 5
    cfg.train.freeze_batch_size, cfg.train.batch_size = 2, 8
    with pytest.raises(ConfigError, match=r"^train\.freeze_batch_size 2 is less than the 4 "):
        check_batches(cfg, 4, 0)                 # a fresh run trains the frozen phase first
    with pytest.raises(ConfigError, match=r"^train\.freeze_batch_size 2 "):
        check_batches(cfg, 4, 4)                 # resumed in its last epoch
    check_batches(cfg, 4, 5)                     # resumed past it: that batch is never used
    cfg.train.batch_size = 3
    with pytest.raises(ConfigError, match=r"^train\.batch_size 3 is less than the 4 "):
        check_batches(cfg, 4, 7)
    check_batches(cfg, 4, 10)                    # nothing left to train: nothing refused
    cfg.train.freeze_epochs = 10                 # frozen throughout: the unfrozen batch unused
    cfg.train.freeze_batch_size = 4
    check_batches(cfg, 4, 0)


def test_the_run_reads_where_it_starts_from_the_checkpoint_it_resumes(tmp_path):
    """The engine's check before training reads the epoch of the checkpoint chosen (its
    sidecar): a run resumed past the frozen phase is not refused for that phase's batch."""
    import torch

    from trainer import checkpoint as ckpt
    from trainer.distributed import DistInfo
    from trainer.engine import _check_batches
    from trainer.resume import Start

    cfg = Config()
    cfg.train.epochs, cfg.train.freeze_epochs = 10, 5
    cfg.train.freeze_batch_size, cfg.train.batch_size = 2, 8
    four = DistInfo(rank=0, world_size=4, local_rank=0)

    def saved(epoch: int) -> str:
        state = {"format_version": ckpt.FORMAT_VERSION, "model": {"w": torch.zeros(2)},
                 "optimizer": {}, "epoch": epoch, "iteration": 10 * epoch,
                 "epoch_iteration": 0, "config": {}, "run": "r1"}
        return ckpt.save_checkpoint(state, str(tmp_path / f"epoch_{epoch:03d}.pt"))

    with pytest.raises(ConfigError, match=r"^train\.freeze_batch_size 2 is less than the 4 "):
        _check_batches(cfg, four, Start(run="r1"))
    with pytest.raises(ConfigError, match=r"^train\.freeze_batch_size 2 "):
        _check_batches(cfg, four, Start(run="r1", path=saved(4)))
    _check_batches(cfg, four, Start(run="r1", path=saved(5)))
    _check_batches(cfg, DistInfo(), Start(run="r1"))    # one process: any batch is its own
