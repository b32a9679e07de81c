"""``model.width`` attacked (attackw30): a width between eighths (0.3 built CSP blocks of 16
and 40 channels: a traceback at the first step), a checkpoint of width 0.125 without its
config (read as 0.25 from its first layer, and not loaded), pretrained weights of width 1 in a
network of 0.25 ("is this a YOLOv4-tiny weights file?"), and a resume at another width
advised to fine-tune from the checkpoint (refused in turn)."""
from __future__ import annotations

import os

import pytest
import torch
from click.testing import CliRunner

from trainer.cli import cli
from trainer.model import YoloV4Tiny


def _last_line(res) -> str:
    return res.output.strip().splitlines()[-1]


@pytest.mark.parametrize("value, near", [("0.3", "0.25 or 0.375"), ("0.01", "0.125"),
                                         ("1e-9", "0.125"), ("1.3", "1.25 or 1.375")])
def test_a_width_between_eighths_is_refused_before_anything_is_written(tiny_config, tmp_path,
                                                                      value, near):
    res = CliRunner().invoke(cli, ["train", "-c", tiny_config(), "--set", f"model.width={value}"])
    assert res.exit_code == 2, res.output
    assert _last_line(res) == (
        f"Error: model.width must be a multiple of 0.125 (each layer's channels a multiple "
        f"of 8), got {float(value):g}: use {near}")
    assert not os.path.exists(tmp_path / "logs")
    with pytest.raises(ValueError, match="width must be a multiple of 0.125 from 0.125 to 4"):
        YoloV4Tiny(3, input_size=64, width=float(value))


@pytest.mark.parametrize("eighths, phi", [(1, 0), (3, 0), (5, 0), (7, 0), (11, 0), (1, 1),
                                          (1, 2), (1, 3), (1, 4)])
def test_a_width_in_eighths_builds_a_network_that_runs(eighths, phi):
    """Odd eighths too (their first layer rounds), and every attention block at the
    narrowest: the maps keep their shapes."""
    model = YoloV4Tiny(3, input_size=32, width=eighths / 8, phi=phi).eval()
    with torch.no_grad():
        p5, p4 = model(torch.zeros(1, 3, 32, 32))
    assert p5.shape == (1, 24, 1, 1) and p4.shape == (1, 24, 2, 2)


@pytest.mark.parametrize("width", [0.125, 0.375])
def test_a_checkpoint_without_its_config_is_evaluated_at_its_width(tiny_config, tmp_path, width):
    """Its width is read from its shapes: 0.125 and 0.25 share the first layer's 8 channels,
    0.375 and 0.5 its 16; the second layer tells them apart."""
    from trainer.weights import inspect_weights

    torch.manual_seed(0)
    weights = tmp_path / "bare.pt"
    torch.save({"model": YoloV4Tiny(3, input_size=64, width=width).state_dict()}, weights)
    assert inspect_weights(str(weights))["width"] == width
    res = CliRunner().invoke(cli, ["eval", "-c", tiny_config(), "--weights", str(weights)])
    assert res.exit_code == 0, res.output
    assert "bare.pt was trained with another model.width than the config's: evaluated as " \
           "trained" in res.output
    assert "mAP@0.5" in res.output


@pytest.mark.parametrize("name", ["yolov4-tiny.pth", "yolov4-tiny.weights"])
def test_pretrained_weights_of_width_1_in_a_smaller_network_say_so(tiny_config, tmp_path, name):
    from trainer.weights import save_darknet

    weights = tmp_path / name
    port = YoloV4Tiny(20)
    if name.endswith(".pth"):
        torch.save(port.state_dict(), weights)
    else:
        save_darknet(port, weights)
    config = tiny_config(**{"model.weights": str(weights)})
    res = CliRunner().invoke(cli, ["train", "-c", config])
    assert res.exit_code == 1, res.output
    assert _last_line(res) == (
        f"Error: {weights} holds a network of model.width 1 (1 is YOLOv4-tiny) and the config's "
        f"is 0.25: weights fit only the width they were trained at; set model.width=1 to start "
        f"from them, or train model.width 0.25 without model.weights")
    assert not os.listdir(tmp_path / "logs")     # nothing written


def test_a_resume_at_another_width_is_not_advised_to_fine_tune_from_it():
    """Fine-tuning from the checkpoint (the advice for another class count or attention) loads
    no layer of another width: the way out is its width, or a new run."""
    from trainer.checkpoint import check_signature
    from trainer.errors import CheckpointError

    saved = {"num_classes": 3, "anchors_mask": [[3, 4, 5], [1, 2, 3]], "phi": 0, "width": 0.25}
    current = {"num_classes": 4, "anchors_mask": [[3, 4, 5], [1, 2, 3]], "phi": 0}
    with pytest.raises(CheckpointError) as err:
        check_signature(saved, current, "logs/last.pt")
    assert str(err.value) == (
        "cannot resume from logs/last.pt: the config changes the model's shape (num_classes: "
        "checkpoint 3, config 4; width: checkpoint 0.25, config 1.0). Restore model.width "
        "(0.25): its weights fit no other width; or start a new run in a new train.out_dir "
        "(--resume none)")
    with pytest.raises(CheckpointError) as err:   # (another class count alone: fine-tune)
        check_signature(dict(saved, width=1.0), current, "logs/last.pt")
    assert str(err.value).endswith("(num_classes: checkpoint 3, config 4). Restore the config, "
                                   "or start a new run that fine-tunes from it: --resume none "
                                   "--set model.weights=logs/last.pt --set train.out_dir=<a new "
                                   "folder> (and drive.logs=<a new Drive folder> where it is set)")
