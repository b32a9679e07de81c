"""trainer22: `trainer predict --device`. The rule (the command's help): exit 2 for a bad
argument, 1 for what this machine or the files lack. A name torch cannot parse, or a device
type predict does not run on (meta, xla, hpu, ...), is a usage error (2), said before any
weights are read or pulled; a valid device this machine does not have (cuda without a GPU,
cuda:1 on a one-GPU machine, mps off a Mac) is exit 1, naming the device given."""
from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from _messages import error_line
from trainer.cli import cli


@pytest.fixture
def setup(tmp_path):
    from trainer.model import YoloV4Tiny

    weights = tmp_path / "w.pth"
    torch.save(YoloV4Tiny(num_classes=2, input_size=64).state_dict(), weights)
    (tmp_path / "cls.txt").write_text("a\nb\n")
    (tmp_path / "imgs").mkdir()
    return tmp_path


def _predict(tmp_path, device: str, weights: str = "w.pth"):
    return CliRunner().invoke(cli, [
        "predict", "--weights", str(tmp_path / weights), "--classes", str(tmp_path / "cls.txt"),
        "--input-size", "64", "--device", device, "--source", str(tmp_path / "imgs"),
        "--out", str(tmp_path / "out")])


@pytest.mark.parametrize("device", ["bogus", "CPU", "cuda:-1", "meta", "xla"])
def test_a_device_predict_cannot_use_is_a_usage_error_before_the_weights(setup, device):
    """`meta`/`xla` parse in torch: they ended in a traceback (exit 1) after the weights were
    loaded."""
    r = _predict(setup, device)
    assert r.exit_code == 2, r.output
    assert "loaded" not in r.output                       # said before the weights are read
    line = error_line(r.stderr)
    assert line.startswith(f"Error: Invalid value for '--device': {device!r} ")
    assert line.endswith("give auto, cpu, cuda, cuda:N or mps")


@pytest.mark.skipif(torch.cuda.device_count() > 1, reason="needs a machine with at most one GPU")
def test_a_gpu_this_machine_lacks_is_exit_1_naming_it(setup):
    """`--device cuda:1` said `--device cuda: no CUDA GPU ...` (the index dropped)."""
    r = _predict(setup, "cuda:1")
    assert r.exit_code == 1, r.output
    line = error_line(r.stderr)
    if torch.cuda.is_available():
        assert line == ("Error: --device cuda:1: this machine has 1 CUDA GPU (cuda:0); give "
                        "--device cuda:0, or cpu")
    else:
        assert line == "Error: --device cuda:1: no CUDA GPU is available here; use --device cpu"


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="a Mac with an Apple GPU")
def test_mps_off_a_mac_is_exit_1_not_a_traceback(setup):
    r = _predict(setup, "mps")
    assert r.exit_code == 1, r.output
    assert error_line(r.stderr) == ("Error: --device mps: no Apple GPU (mps) is available here; "
                                    "use --device cpu")
