"""trainres48 (5): the augmentation and loss settings changed on resume went on without a
word (trainatk47's probe: ``train.mosaic``, ``mixup``, their probabilities,
``special_aug_ratio``, ``label_smoothing``, ``focal_loss``, ``grad_clip``), where another
``train.lr`` or ``batch_size`` is warned of. They change what the rest of the run learns
from, and in the middle of an epoch the draws of the samples still to come: the same warning
now names each, with the checkpoint's value and the config's."""
from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from _once import config_like
from _one_epoch import one_epoch  # noqa: F401  (a fixture)
from trainer import checkpoint as ckpt
from trainer.cli import cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_a_resume_with_other_augmentation_names_each_setting_changed(one_epoch, tmp_path):
    logs = tmp_path / "logs"
    shutil.copytree(one_epoch / "logs", logs)
    config = config_like(one_epoch, logs, **{
        "train.epochs": 2, "train.eval_period": 100, "train.mosaic": False,
        "train.mosaic_prob": 0.25, "train.mixup": False, "train.mixup_prob": 0.75,
        "train.special_aug_ratio": 0.5, "train.label_smoothing": 0.1, "train.focal_loss": True,
        "train.grad_clip": 5.0})

    result = CliRunner().invoke(cli, ["train", "-c", config])

    assert result.exit_code == 0, result.output
    warned = [line for line in result.output.splitlines() if line.startswith("WARNING")]
    assert warned == [
        f"WARNING trainer.restore: {logs / 'epoch_001.pt'} was trained with another "
        "train.mosaic (True, now False), train.mosaic_prob (0.5, now 0.25), train.mixup (True, "
        "now False), train.mixup_prob (0.5, now 0.75), train.special_aug_ratio (0.7, now 0.5), "
        "train.label_smoothing (0.0, now 0.1), train.focal_loss (False, now True), "
        "train.grad_clip (10.0, now 5.0); training goes on with the config's"]
    assert ckpt.read_sidecar(str(logs / "last.pt")).epoch == 2

