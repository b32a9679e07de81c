"""``model.width``: every layer's channels times a factor (1 is YOLOv4-tiny). A network 16x
smaller at 0.25 trains and saves in a fraction of the time (the suite's tiny runs use it), and
a checkpoint of one width is never resumed, evaluated or fine-tuned as another."""
from __future__ import annotations

import hashlib
import os

import pytest
import torch

from trainer.model import YoloV4Tiny


def _md5(path) -> str:
    return hashlib.md5(open(path, "rb").read()).hexdigest()


@pytest.mark.parametrize("width, params", [(1.0, 5_878_736), (0.5, 1_476_096), (0.25, 372_248)])
def test_the_network_is_that_much_smaller_and_its_maps_keep_their_shapes(width, params):
    model = YoloV4Tiny(3, input_size=64, width=width)
    assert sum(p.numel() for p in model.parameters()) == params
    p5, p4 = model(torch.zeros(1, 3, 64, 64))
    assert p5.shape == (1, 3 * 8, 2, 2) and p4.shape == (1, 3 * 8, 4, 4)
    if width == 1.0:  # the port's layer names and shapes: its pretrained weights load
        assert model.state_dict()["backbone.conv1.conv.weight"].shape == (32, 3, 3, 3)


@pytest.mark.parametrize("value, said", [
    ("0", "model.width must be a number above 0 and at most 4 (1 is YOLOv4-tiny), got 0.0"),
    ("-1", "model.width must be a number above 0 and at most 4 (1 is YOLOv4-tiny), got -1.0"),
    ("5", "model.width must be a number above 0 and at most 4 (1 is YOLOv4-tiny), got 5.0"),
    ("wide", "config key 'model.width' expects float, got 'wide'"),
    ("true", "config key 'model.width' expects float, got True"),
])
def test_a_width_that_is_none_is_refused_in_one_line(tiny_config, value, said):
    from click.testing import CliRunner

    from trainer.cli import cli

    res = CliRunner().invoke(cli, ["train", "-c", tiny_config(), "--set", f"model.width={value}"])
    assert res.exit_code == 2, res.output
    assert res.output.strip().splitlines()[-1] == f"Error: {said}", res.output


def test_a_run_of_one_width_is_not_resumed_as_another_and_is_evaluated_as_trained(
        tiny_config, tmp_path, one_torch_thread):
    """The checkpoint records its width: a resume with another is refused before anything
    is written (the weights would not fit), ``trainer eval`` builds the network it was
    trained as, and a checkpoint saved before the key existed counts as width 1."""
    from click.testing import CliRunner

    from trainer.cli import cli
    from trainer.config import load_config
    from trainer.engine import fit
    from trainer.weights import inspect_weights

    path = tiny_config(**{"train.epochs": 1, "train.freeze_epochs": 0, "train.mosaic": False,
                          "train.mixup": False, "model.width": 0.25})
    fit(load_config(path), resume="none")
    logs = tmp_path / "logs"
    before = {n: _md5(logs / n) for n in sorted(os.listdir(logs)) if n.endswith((".pt", ".json"))}
    assert os.path.getsize(logs / "last.pt") < 8 << 20   # (70 MB at width 1)
    assert inspect_weights(str(logs / "last.pt"))["width"] == 0.25

    res = CliRunner().invoke(cli, ["train", "-c", path, "--set", "train.epochs=2",
                                   "--set", "model.width=1"])
    assert res.exit_code == 1, res.output
    assert res.output.strip().splitlines()[-1] == (
        f"Error: cannot resume from {logs / 'epoch_001.pt'}: the config changes the model's "
        f"shape (width: checkpoint 0.25, config 1.0). Restore model.width (0.25): its weights "
        f"fit no other width; or start a new run in a new train.out_dir (--resume none)")
    assert {n: _md5(logs / n) for n in before} == before     # nothing written

    res = CliRunner().invoke(cli, ["eval", "-c", path, "--weights", str(logs / "last.pt"),
                                   "--set", "model.width=1"])
    assert res.exit_code == 0, res.output
    assert "mAP@0.5" in res.output
    assert "was trained with another model.width than the config's: evaluated as trained" \
        in res.output

    # A checkpoint without the key (saved before it existed) is of width 1: its shapes say so.
    state = torch.load(logs / "last.pt", map_location="cpu", weights_only=False)
    del state["config"]["model"]["width"]
    old = tmp_path / "old.pt"
    torch.save(state, old)
    assert inspect_weights(str(old))["width"] == 0.25          # read from the first layer's shape
