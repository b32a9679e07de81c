"""YOLOv4-tiny structure: parameter counts, output layout, port key names, attention variants."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from trainer.model import YoloV4Tiny

# The port's state-dict keys and shapes (a copy of shared/reference/yolov4-tiny-pth-keys.tsv).
TSV = Path(__file__).resolve().parent / "data" / "yolov4-tiny-pth-keys.tsv"


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts_match_darknet():
    assert _count(YoloV4Tiny(num_classes=20)) == 5_918_006
    assert _count(YoloV4Tiny(num_classes=80)) == 6_056_606


def test_outputs_are_stride_32_then_16_in_port_layout():
    model = YoloV4Tiny(num_classes=3).eval()
    with torch.no_grad():
        p5, p4 = model(torch.rand(2, 3, 96, 128))
    assert p5.shape == (2, 3 * 8, 3, 4)
    assert p4.shape == (2, 3 * 8, 6, 8)


def test_state_dict_keys_and_shapes_equal_the_port():
    rows = [line.split("\t") for line in TSV.read_text().strip().splitlines()]
    expected = {k: s for k, s in rows}
    sd = YoloV4Tiny(num_classes=20).state_dict()
    assert list(sd) == [k for k, _ in rows]
    assert {k: str(tuple(v.shape)) for k, v in sd.items()} == expected


@pytest.mark.parametrize("phi", [1, 2, 3, 4])
def test_attention_variants_keep_shapes_and_train(phi):
    model = YoloV4Tiny(num_classes=2, phi=phi)
    x = torch.rand(2, 3, 64, 64)
    p5, p4 = model(x)
    assert p5.shape == (2, 21, 2, 2) and p4.shape == (2, 21, 4, 4)
    (p5.sum() + p4.sum()).backward()
    assert model.feat2_att is not None
    grads = [p.grad for n, p in model.named_parameters() if "_att" in n]
    assert grads and all(g is not None for g in grads)


def test_configurable_masks_change_head_width():
    model = YoloV4Tiny(num_classes=1, anchors=[(10, 10), (20, 20), (40, 40), (80, 80)],
                       anchors_mask=[[2, 3], [0, 1]])
    p5, p4 = model(torch.rand(2, 3, 64, 64))
    assert p5.shape[1] == p4.shape[1] == 2 * 6


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"input_size": 400}, "multiple of 32"),
        ({"phi": 7}, "phi must be 0..4"),
        ({"anchors_mask": [[0, 9], [1]]}, "out of range"),
        ({"num_classes": 0}, "num_classes"),
    ],
)
def test_bad_configuration_is_refused_with_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        YoloV4Tiny(**kwargs)


@pytest.mark.slow
def test_train_step_bench_runs_and_reports_both_configurations(tmp_path, capsys, monkeypatch):
    import importlib.util
    import json
    import sys

    # The script puts bench/ first on the path, for itself: not for the tests after this one
    # in this process (bench/pull.py would shadow any later `import pull`).
    monkeypatch.setattr(sys, "path", list(sys.path))

    path = Path(__file__).resolve().parents[1] / "bench" / "train_step.py"
    spec = importlib.util.spec_from_file_location("train_step_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "r.json"
    assert bench.main(["--sizes", "64", "--iters", "1", "--warmup", "0", "--batch", "2",
                       "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert [r["size"] for r in data["train"]] == [64]
    assert [r["batch"] for r in data["infer"]] == [1, 8]
    assert all(r["baseline"]["img_s"] > 0 and r["ours"]["img_s"] > 0 for r in data["train"] + data["infer"])
    assert "ratio" in capsys.readouterr().out
