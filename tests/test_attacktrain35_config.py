"""attacktrain35: config values the checks let through, which trained on something else than
asked for, or failed later in a traceback.

* ``train.ema_decay: 1.5`` (or -0.5): the EMA, ``d * ema + (1 - d) * weights`` with ``d``
  ramping up to the value, left the weights' range: at full ramp it grows by half its distance
  to them at every step, to inf/NaN, and every evaluation, ``best.pt`` and the resume's checks
  met weights of no use. ``train.momentum: 1.5`` (SGD) made the steps grow for good;
  ``train.weight_decay: -1`` pushed every weight away from zero; ``train.grad_clip: -1`` was
  taken as off; ``train.conf_thresh: 1.5`` kept no detection (mAP 0 for the whole run) and
  ``train.nms_thresh: 3`` suppressed none: a wrong mAP and a wrong ``best.pt``, exit 0.
* ``model.phi: 9``, ``train.label_smoothing: 2``, ``train.momentum: -1`` (or above 1 with
  Adam), ``model.anchors_mask`` naming anchor 6 (or ``a``) and ``model.anchors`` with ``a``
  staged the dataset (minutes for VOC), then ended in a traceback (``ValueError: phi must be
  0..4``, ``Invalid momentum value``, ``index 6 out of range``, ``could not convert string
  to float``), exit 1.

Each is refused in one line naming the key, exit 2, before anything is staged."""
from __future__ import annotations

import math

import pytest
import torch
from click.testing import CliRunner

from trainer.cli import cli
from trainer.config import load_config
from trainer.errors import ConfigError
from trainer.optim import ModelEMA

ANCHORS = [[10, 14], [23, 27], [37, 58], [81, 82], [135, 169], [344, 319]]


@pytest.mark.parametrize("key, value, line", [
    ("train.ema_decay", 1.5, "train.ema_decay must be in [0, 1), got 1.5"),
    ("train.ema_decay", -0.5, "train.ema_decay must be in [0, 1), got -0.5"),
    ("train.ema_decay", 1, "train.ema_decay must be in [0, 1), got 1"),
    ("train.momentum", 1.5, "train.momentum must be in [0, 1) (SGD momentum / Adam beta1), got 1.5"),
    ("train.momentum", -1, "train.momentum must be in [0, 1) (SGD momentum / Adam beta1), got -1"),
    ("train.weight_decay", -1, "train.weight_decay must be >= 0, got -1"),
    ("train.grad_clip", -1, "train.grad_clip must be >= 0 (0 = off), got -1"),
    ("train.label_smoothing", 2, "train.label_smoothing must be in [0, 1), got 2"),
    ("train.conf_thresh", 1.5, "train.conf_thresh must be in [0, 1), got 1.5"),
    ("train.conf_thresh", -1, "train.conf_thresh must be in [0, 1), got -1"),
    ("train.nms_thresh", 3, "train.nms_thresh must be in (0, 1], got 3"),
    ("train.nms_thresh", 0, "train.nms_thresh must be in (0, 1], got 0"),
    ("model.phi", 9, "model.phi must be 0..4 (0 none, 1 SE, 2 CBAM, 3 ECA, 4 coordinate "
                     "attention), got 9"),
    ("model.anchors_mask", [[6, 7, 8], [1, 2, 3]],
     "model.anchors_mask must be two lists of three indices 0..5 (of model.anchors), "
     "got [[6, 7, 8], [1, 2, 3]]"),
    ("model.anchors_mask", [[-1, 4, 5], [1, 2, 3]],
     "model.anchors_mask must be two lists of three indices 0..5 (of model.anchors), "
     "got [[-1, 4, 5], [1, 2, 3]]"),
    ("model.anchors_mask", [["a", 4, 5], [1, 2, 3]],
     "model.anchors_mask must be two lists of three indices 0..5 (of model.anchors), "
     "got [['a', 4, 5], [1, 2, 3]]"),
    ("model.anchors", [["a", 14]] + ANCHORS[1:],
     "model.anchors must be six [w, h] pairs of sizes above 0, in pixels, got "
     "[['a', 14], [23, 27], [37, 58], [81, 82], [135, 169], [344, 319]]"),
    ("model.anchors", [[0, 0]] + ANCHORS[1:],
     "model.anchors must be six [w, h] pairs of sizes above 0, in pixels, got "
     "[[0, 0], [23, 27], [37, 58], [81, 82], [135, 169], [344, 319]]"),
    ("model.anchors", [[-10, 14]] + ANCHORS[1:],
     "model.anchors must be six [w, h] pairs of sizes above 0, in pixels, got "
     "[[-10, 14], [23, 27], [37, 58], [81, 82], [135, 169], [344, 319]]"),
])
def test_a_value_that_trained_wrong_or_failed_later_is_refused_with_its_key(tiny_config, key,
                                                                              value, line):
    with pytest.raises(ConfigError) as caught:
        load_config(tiny_config(**{key: value}))
    assert str(caught.value) == line


@pytest.mark.parametrize("key, value", [
    ("train.ema_decay", 0), ("train.ema_decay", 0.9999), ("train.momentum", 0),
    ("train.momentum", 0.937), ("train.weight_decay", 0), ("train.grad_clip", 0),
    ("train.label_smoothing", 0.1), ("train.conf_thresh", 0), ("train.nms_thresh", 1),
    ("model.phi", 4), ("model.anchors_mask", [[0, 1, 2], [3, 4, 5]]),
    ("model.anchors", [[1.5, 2]] + ANCHORS[1:]),
])
def test_the_bounds_themselves_are_taken(tiny_config, key, value):
    cfg = load_config(tiny_config(**{key: value}))
    section, name = key.split(".")
    assert getattr(getattr(cfg, section), name) == value


@pytest.mark.parametrize("key, value, line", [
    ("model.phi", 9, "Error: model.phi must be 0..4 (0 none, 1 SE, 2 CBAM, 3 ECA, 4 coordinate "
                     "attention), got 9"),
    ("train.momentum", -1, "Error: train.momentum must be in [0, 1) (SGD momentum / Adam beta1), "
                           "got -1"),
])
def test_the_cli_refuses_in_one_line_before_staging(tiny_config, tmp_path, key, value, line):
    r = CliRunner().invoke(cli, ["train", "-c", tiny_config(**{key: value})])
    assert r.exit_code == 2, (r.output, r.exception)
    assert r.stderr.strip().splitlines()[-1] == line
    assert "Traceback" not in r.output
    assert not (tmp_path / "data").exists() and not (tmp_path / "logs").exists()


def test_an_ema_decay_above_1_leaves_the_weights_range():
    """What ``train.ema_decay: 1.5`` did over a run's steps (why it is refused): the average
    runs away from the weights it averages, to inf and NaN."""
    model = torch.nn.Linear(2, 2)
    ema = ModelEMA(model, decay=1.5, tau=10)
    for _ in range(2000):
        ema.update(model)
    assert not all(math.isfinite(float(v)) for v in ema.ema.weight.flatten())
