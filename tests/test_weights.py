"""load_weights: the port's .pth, Darknet .weights/.conv.29, our checkpoints; refusals."""
from __future__ import annotations

import logging
import struct
from pathlib import Path

import pytest
import torch

from trainer.errors import WeightsError
from trainer.model import YoloV4Tiny
from trainer.weights import load_weights, read_num_classes, save_darknet

# The port's state-dict keys and shapes (a copy of shared/reference/yolov4-tiny-pth-keys.tsv).
TSV = Path(__file__).resolve().parent / "data" / "yolov4-tiny-pth-keys.tsv"
X = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def _random_state(seed: int, classes: int = 20) -> dict[str, torch.Tensor]:
    """A state dict with exactly the port's keys and shapes (from the TSV) and random values."""
    g = torch.Generator().manual_seed(seed)
    rows = [line.split("\t") for line in TSV.read_text().strip().splitlines()]
    sd = {}
    for key, shape_text in rows:
        shape = tuple(int(v) for v in shape_text.strip("()").split(",") if v.strip())
        if shape and shape[0] == 75:
            shape = (3 * (5 + classes),) + shape[1:]
        if key.endswith("num_batches_tracked"):
            sd[key] = torch.tensor(1234)
        elif key.endswith("running_var"):
            sd[key] = torch.rand(shape, generator=g) + 0.5
        else:
            sd[key] = torch.randn(shape, generator=g) * 0.1
    return sd


def _run(model):
    with torch.no_grad():
        return model.eval()(X)


def _same(a, b):
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_port_pth_gives_the_same_outputs_as_setting_the_state_dict(tmp_path, caplog):
    sd = _random_state(1)
    path = tmp_path / "yolov4_tiny_weights_voc.pth"
    torch.save(sd, path)
    direct = YoloV4Tiny(num_classes=20)
    direct.load_state_dict(sd)
    model = YoloV4Tiny(num_classes=20)
    with caplog.at_level(logging.INFO, logger="trainer.weights"):
        report = load_weights(model, path)
    assert report.format == "pth"
    assert len(report.loaded) == len(sd) and not report.skipped and not report.missing
    assert "loaded 118 tensors, skipped 0, missing 0" in caplog.text
    _same(_run(model), _run(direct))


def test_coco_pth_into_a_20_class_model_skips_only_the_heads(tmp_path):
    path = tmp_path / "yolov4_tiny_weights_coco.pth"
    torch.save(_random_state(2, classes=80), path)
    model = YoloV4Tiny(num_classes=20)
    before = model.yolo_headP5[1].weight.clone()
    report = load_weights(model, path)
    assert sorted(report.skipped) == ["yolo_headP4.1.bias", "yolo_headP4.1.weight",
                                      "yolo_headP5.1.bias", "yolo_headP5.1.weight"]
    assert report.skipped["yolo_headP5.1.weight"] == "shape (255, 512, 1, 1) in file, (75, 512, 1, 1) in model"
    assert torch.equal(model.yolo_headP5[1].weight, before)
    assert read_num_classes(path) == 80


def test_darknet_weights_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(3)
    src = YoloV4Tiny(num_classes=20)
    for m in src.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.1)
    path = tmp_path / "yolov4-tiny.weights"
    save_darknet(src, path)
    # Header: major 0, minor 2, revision 0, seen as int64; then 5,918,006 - BN counters floats.
    raw = path.read_bytes()
    assert struct.unpack("<iiiq", raw[:20]) == (0, 2, 0, 0)
    assert (len(raw) - 20) // 4 == 5_918_006 + sum(
        m.running_mean.numel() * 2 for m in src.modules() if isinstance(m, torch.nn.BatchNorm2d))
    dst = YoloV4Tiny(num_classes=20)
    report = load_weights(dst, path)
    assert report.format == "darknet" and not report.missing and not report.skipped
    _same(_run(dst), _run(src))
    assert read_num_classes(path) == 20


def test_darknet_80_class_file_sizes_like_the_official_one(tmp_path):
    path = tmp_path / "yolov4-tiny.weights"
    save_darknet(YoloV4Tiny(num_classes=80), path)
    assert path.stat().st_size == 24_251_276      # the published yolov4-tiny.weights size
    report = load_weights(YoloV4Tiny(num_classes=3), path)
    assert len(report.skipped) == 4 and not report.missing


def test_conv29_loads_the_backbone_and_leaves_the_rest(tmp_path):
    src = YoloV4Tiny(num_classes=20)
    path = tmp_path / "yolov4-tiny.conv.29"
    save_darknet(src, path, upto_layer=29)
    dst = YoloV4Tiny(num_classes=20)
    report = load_weights(dst, path)
    assert all(k.startswith(("backbone.", "conv_for_P5.", "yolo_headP5.0.")) for k in report.loaded)
    assert torch.equal(dst.backbone.conv3.conv.weight, src.backbone.conv3.conv.weight)
    assert torch.equal(dst.yolo_headP5[0].bn.running_var, src.yolo_headP5[0].bn.running_var)
    assert "yolo_headP4.1.weight" in report.missing
    assert not any(k.endswith("num_batches_tracked") for k in report.missing)


def test_truncated_darknet_file_is_refused(tmp_path):
    path = tmp_path / "cut.weights"
    save_darknet(YoloV4Tiny(num_classes=20), path)
    path.write_bytes(path.read_bytes()[: 20 + 4 * 1000])
    with pytest.raises(WeightsError, match="ends inside Darknet layer 1 "):
        load_weights(YoloV4Tiny(num_classes=20), path)


def test_our_checkpoint_prefers_ema_and_strips_ddp_prefix(tmp_path):
    torch.manual_seed(4)
    plain, ema = YoloV4Tiny(num_classes=2), YoloV4Tiny(num_classes=2)
    path = tmp_path / "last.pt"
    torch.save({"model": {f"module.{k}": v for k, v in plain.state_dict().items()},
                "ema": {"model": ema.state_dict(), "updates": 7}, "epoch": 3,   # engine.ModelEMA layout
                "config": {"model": {"input_size": 64}}}, path)
    model = YoloV4Tiny(num_classes=2)
    report = load_weights(model, path)
    assert report.format == "checkpoint-ema"
    _same(_run(model), _run(ema))
    torch.save({"model": {f"module.{k}": v for k, v in plain.state_dict().items()}, "ema": None, "epoch": 3}, path)
    report = load_weights(model, path)
    assert report.format == "checkpoint"
    _same(_run(model), _run(plain))
    assert read_num_classes(path) == 2


def test_refuses_when_the_backbone_does_not_load(tmp_path):
    path = tmp_path / "heads_only.pth"
    sd = {k: v for k, v in YoloV4Tiny(num_classes=20).state_dict().items() if not k.startswith("backbone.")}
    torch.save(sd, path)
    model = YoloV4Tiny(num_classes=20)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(WeightsError, match=r"backbone did not load \(75 of 75 backbone tensors"):
        load_weights(model, path)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())   # untouched
    report = load_weights(model, path, require_backbone=False)
    assert len(report.missing) == 90 and report.missing[0] == "backbone.conv1.conv.weight"


@pytest.mark.parametrize("content, message", [
    (b"hello, not weights at all", "unknown weights format"),
    (b"PK\x03\x04garbage" * 10, "cannot be read as PyTorch weights"),
])
def test_foreign_files_are_refused_with_a_clear_message(tmp_path, content, message):
    path = tmp_path / "thing.pth"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match=message):
        load_weights(YoloV4Tiny(num_classes=20), path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(WeightsError, match="weights file not found: .*nope.pth"):
        load_weights(YoloV4Tiny(num_classes=20), tmp_path / "nope.pth")


@pytest.mark.parametrize("phi", [1, 2, 3, 4])
def test_attention_variant_is_recognised_and_loads(tmp_path, phi):
    from trainer.weights import inspect_weights

    torch.manual_seed(phi)
    src = YoloV4Tiny(num_classes=4, phi=phi)
    path = tmp_path / f"phi{phi}.pth"
    torch.save(src.state_dict(), path)
    info = inspect_weights(path)
    assert info == {"num_classes": 4, "phi": phi}
    dst = YoloV4Tiny(num_classes=4, phi=info["phi"])
    report = load_weights(dst, path)
    assert not report.missing and not report.skipped
    _same(_run(dst), _run(src))
