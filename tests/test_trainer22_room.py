"""trainer22: a run folder without room for the next epoch's checkpoint is refused before a
step is trained (a small disk: Kaggle's working folder, a spot VM's boot disk). Before, the
first epoch was trained, then its save met the full disk and the epoch was lost."""
from __future__ import annotations

import os

import pytest

from _tmpfs import small_disk  # noqa: F401 (a fixture)
from trainer.callbacks import Callback

MiB = 1 << 20


class _Steps(Callback):
    """Counts the training steps begun."""

    def __init__(self) -> None:
        self.steps = 0

    def on_train_batch_start(self, run, pos) -> None:
        self.steps += 1


def _config(tiny_config, out_dir, **overrides):
    from trainer.config import load_config

    kw = {"train.freeze_epochs": 0, "train.epochs": 2, "train.save_period": 1,
          "train.eval_period": 100, "train.mosaic": False, "train.mixup": False,
          "train.out_dir": str(out_dir), **overrides}
    # (The network of pretrained weights: its 70 MB checkpoints are what the disks here lack.)
    return load_config(tiny_config(**{"model.width": 1.0, **kw}))


def test_a_disk_without_room_for_the_first_checkpoint_is_refused_before_a_step(
        tiny_config, small_disk, one_torch_thread):
    """Epoch 1's save writes last.pt and epoch_001.pt (about 2 x 70 MiB for the test model);
    the disk has 100 MiB: one line naming the folder, what is needed and what is free, exit
    1, and not a step trained."""
    from trainer.engine import fit
    from trainer.errors import SaveError

    disk = small_disk(100 * MiB)
    logs = disk / "logs"
    steps = _Steps()
    with pytest.raises(SaveError) as refused:
        fit(_config(tiny_config, logs), resume="none", callbacks=[steps])
    text = str(refused.value)
    assert refused.value.exit_code == 1 and "\n" not in text
    assert text.startswith(f"not enough free disk space in {logs} for the checkpoint of epoch 1: "
                           f"its save writes last.pt, epoch_001.pt of about ")
    assert "only 100.0 MiB (104857600 bytes) free; nothing was trained: free some space or set " \
           "train.out_dir to a folder on a larger disk" in text
    assert steps.steps == 0
    assert [n for n in os.listdir(logs) if n.endswith(".pt")] == []


@pytest.mark.slow
def test_the_estimate_of_a_checkpoint_is_never_below_its_real_size(tiny_config, tmp_path,
                                                                    one_torch_thread):
    """The size the check uses (model + EMA + the optimizer's state once it stepped) against
    the real checkpoint of a one-epoch run: a little above it, never below."""
    from trainer import room
    from trainer.engine import fit

    cfg = _config(tiny_config, tmp_path / "logs", **{"train.epochs": 1})
    result = fit(cfg, resume="none")
    real = os.path.getsize(result.last_checkpoint)
    model = result.model
    from trainer.optim import ModelEMA, build_optimizer

    estimate = room.checkpoint_bytes(model, ModelEMA(model), build_optimizer(model, cfg, 0.01))
    assert real <= estimate <= real + 2 * MiB, (real, estimate)

