"""``trainer eval`` scores the weights as they were trained, or refuses: never heads that did
not load (a backbone-only file would score its random heads: an mAP near 0, exit 0)."""
from __future__ import annotations

import json

import torch
from click.testing import CliRunner

from _messages import renders, shown
from trainer.cli import cli
from trainer.model import YoloV4Tiny


def _classes(tiny_config_path: str) -> list[str]:
    import yaml

    cfg = yaml.safe_load(open(tiny_config_path))
    return [n.strip() for n in open(cfg["data"]["classes"]) if n.strip()]


@renders("has no detection heads (a backbone-only file?)")
def test_eval_of_a_backbone_only_file_is_refused(tiny_config, tmp_path):
    model = YoloV4Tiny(3, input_size=64)
    backbone = {k: v for k, v in model.state_dict().items() if k.startswith("backbone.")}
    torch.save(backbone, tmp_path / "backbone.pth")
    r = CliRunner().invoke(cli, ["eval", "-c", tiny_config(), "-w", str(tmp_path / "backbone.pth")])
    assert r.exit_code == 1, r.output
    line = r.stderr.splitlines()[-1]
    shown("has no detection heads (a backbone-only file?)", line)
    assert line == (f"Error: {tmp_path / 'backbone.pth'} has no detection heads (a backbone-only "
                    "file?); evaluating needs trained weights")


def test_eval_builds_the_model_the_checkpoint_was_trained_as(tiny_config, tmp_path,
                                                             one_torch_thread):
    """A checkpoint trained with SE attention and other anchors, evaluated with a config that
    has neither: scored as trained (the same numbers as with a config that matches), with a
    warning naming the keys, and one for another input size."""
    anchors = [[12, 16], [19, 36], [40, 28], [36, 75], [76, 55], [72, 146]]
    config = tiny_config(**{"model.width": 1.0})   # (the width of the checkpoint below)
    torch.manual_seed(0)
    model = YoloV4Tiny(3, anchors, input_size=96, phi=1)
    state = {"model": model.state_dict(), "class_names": _classes(config),
             "config": {"model": {"anchors": anchors, "phi": 1, "input_size": 96}}}
    torch.save(state, tmp_path / "best.pt")
    got = CliRunner().invoke(cli, ["eval", "-c", config, "-w", str(tmp_path / "best.pt"), "--json"])
    assert got.exit_code == 0, got.output
    assert "best.pt was trained with another model.anchors and model.phi than the config's: " \
           "evaluated as trained" in got.stderr
    assert "evaluated at input size 64 (model.input_size); best.pt was trained at 96: --set " \
           "model.input_size=96 evaluates it as trained" in got.stderr
    matching = tiny_config(**{"model.anchors": anchors, "model.phi": 1, "model.width": 1.0})
    want = CliRunner().invoke(cli, ["eval", "-c", matching, "-w", str(tmp_path / "best.pt"),
                                    "--json"])
    assert want.exit_code == 0, want.output
    assert json.loads(got.stdout) == json.loads(want.stdout)
    assert "evaluated as trained" not in want.stderr


def test_eval_of_a_checkpoint_recording_a_model_that_cannot_be_built(tiny_config, tmp_path):
    """A damaged or foreign checkpoint whose recorded anchors and attention are nonsense: one
    line, exit 1, not a traceback."""
    config = tiny_config()
    model = YoloV4Tiny(3, input_size=64)
    torch.save({"model": model.state_dict(), "class_names": _classes(config),
                "config": {"model": {"anchors": "evil", "phi": 99}}}, tmp_path / "e.pt")
    r = CliRunner().invoke(cli, ["eval", "-c", config, "-w", str(tmp_path / "e.pt")])
    assert r.exit_code == 1
    assert r.stderr.splitlines()[-1].startswith(
        f"Error: {tmp_path / 'e.pt'} records a model that cannot be built (")
    assert "Traceback" not in r.stderr
