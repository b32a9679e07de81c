"""`trainer predict`: annotated images + detections.json from real weights on real images."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from trainer.cli import cli
from trainer.data.augment import letterbox
from trainer.model import YoloV4Tiny, decode, postprocess

SIZE = 64


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    model = YoloV4Tiny(num_classes=3)
    with torch.no_grad():
        # Make objectness confident so that random weights still give detections.
        for head in (model.yolo_headP5[1], model.yolo_headP4[1]):
            head.bias.view(3, 8)[:, 4] = 3.0
    path = tmp_path_factory.mktemp("w") / "tiny3.pth"
    torch.save(model.state_dict(), path)
    return path, model


def _images(folder, sizes=((48, 80), (100, 60))):
    rng = np.random.default_rng(0)
    paths = []
    for i, (h, w) in enumerate(sizes):
        sub = folder / ("nested" if i else "")
        sub.mkdir(parents=True, exist_ok=True)
        p = sub / f"img{i}.png"
        cv2.imwrite(str(p), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        paths.append(p)
    return paths


def test_predict_folder_writes_images_and_json_matching_the_library(tmp_path, weights):
    wpath, model = weights
    src = tmp_path / "src"
    paths = _images(src)
    classes = tmp_path / "classes.txt"
    classes.write_text("cat\ndog\n\nbird\n")
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["predict", "--weights", str(wpath), "--source", str(src),
                                   "--out", str(out), "--classes", str(classes),
                                   "--input-size", str(SIZE), "--conf", "0.3", "--max-det", "5"])
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == str(out / "detections.json")
    data = json.loads((out / "detections.json").read_text())
    assert data["classes"] == ["cat", "dog", "bird"]
    assert sorted(r["file"] for r in data["images"]) == ["img0.png", "nested/img1.png"]
    for rec in data["images"]:
        drawn = cv2.imread(str(out / rec["file"]))
        assert drawn.shape[:2] == (rec["height"], rec["width"])
        assert 0 < len(rec["detections"]) <= 5
        for det in rec["detections"]:
            x1, y1, x2, y2 = det["box"]
            assert 0 <= x1 <= x2 <= rec["width"] and 0 <= y1 <= y2 <= rec["height"]
            assert det["class"] == ["cat", "dog", "bird"][det["class_id"]] and det["score"] >= 0.3
    # Same numbers as the library pipeline on the same image.
    rgb = cv2.cvtColor(cv2.imread(str(paths[1])), cv2.COLOR_BGR2RGB)
    padded, scale, (px, py) = letterbox(rgb, SIZE)
    x = torch.from_numpy(padded).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        (ref,) = postprocess(decode(model.eval()(x), model.anchors, model.anchors_mask, SIZE), 0.3, 0.45,
                             max_det=5, image_sizes=[rgb.shape[:2]], transforms=[(scale, px, py)])
    rec = next(r for r in data["images"] if r["file"] == "nested/img1.png")
    got = torch.tensor([d["box"] + [d["score"], d["class_id"]] for d in rec["detections"]])
    # Random weights give near-equal scores, whose order may differ between batch sizes.
    assert len(got) == len(ref)
    dist = torch.cdist(got, ref)
    assert torch.equal(dist.argmin(1).sort().values, torch.arange(len(ref)))
    assert dist.min(1).values.max() < 0.02


def test_predict_single_image_default_names_and_unreadable_skipped(tmp_path, weights):
    wpath, _ = weights
    src = tmp_path / "src"
    _images(src, sizes=((40, 40),))
    (src / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["predict", "--weights", str(wpath), "--source", str(src),
                                   "--out", str(out), "--input-size", str(SIZE)])
    assert res.exit_code == 0, res.output
    data = json.loads((out / "detections.json").read_text())
    assert data["classes"] == ["class0", "class1", "class2"]
    assert [r["file"] for r in data["images"]] == ["img0.png"]
    assert data["unreadable"] == [str(src / "broken.jpg")]
    assert "1 unreadable, skipped" in res.stderr
    res = CliRunner().invoke(cli, ["predict", "--weights", str(wpath), "--source", str(src / "broken.jpg"),
                                   "--out", str(out), "--input-size", str(SIZE)])
    assert res.exit_code == 1 and "Error: cannot read image" in res.stderr


@pytest.mark.parametrize("args, code, message", [
    (["--conf", "2"], 2, "--conf"),
    (["--input-size", "100"], 2, "not a multiple of 32"),
    (["--classes", "{four}"], 1, "lists 4 classes but"),
])
def test_predict_bad_arguments(tmp_path, weights, args, code, message):
    wpath, _ = weights
    src = tmp_path / "src"
    _images(src, sizes=((40, 40),))
    four = tmp_path / "four.txt"
    four.write_text("a\nb\nc\nd\n")
    args = [a.replace("{four}", str(four)) for a in args]
    res = CliRunner().invoke(cli, ["predict", "--weights", str(wpath), "--source", str(src),
                                   "--out", str(tmp_path / "out"), *args])
    assert res.exit_code == code, res.output
    assert message in res.stderr


def test_predict_empty_folder_is_an_error(tmp_path, weights):
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(cli, ["predict", "--weights", str(weights[0]), "--source", str(tmp_path / "empty"),
                                   "--out", str(tmp_path / "out")])
    assert res.exit_code == 1
    assert "Error: no images in" in res.stderr


def test_predict_from_a_training_checkpoint_uses_its_ema_classes_and_size(tmp_path):
    torch.manual_seed(1)
    model, ema = YoloV4Tiny(num_classes=2), YoloV4Tiny(num_classes=2)
    ckpt = tmp_path / "best.pt"
    torch.save({"format_version": 1, "model": model.state_dict(),
                "ema": {"model": ema.state_dict(), "updates": 10}, "epoch": 4,
                "config": {"model": {"input_size": 96, "anchors": [list(a) for a in ema.anchors],
                                     "anchors_mask": ema.anchors_mask, "phi": 0},
                           "data": {"classes": ["circle", "square"]}}}, ckpt)
    src = tmp_path / "src"
    _images(src, sizes=((50, 70),))
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["predict", "--weights", str(ckpt), "--source", str(src / "img0.png"),
                                   "--out", str(out), "--conf", "0.01"])
    assert res.exit_code == 0, res.output
    data = json.loads((out / "detections.json").read_text())
    assert data["classes"] == ["circle", "square"] and data["input_size"] == 96
    assert "checkpoint-ema" in res.stderr


def test_predict_with_weights_on_drive_pulls_them_first(tmp_path, weights, emulator, drive_env,
                                                       local_state):
    """``--weights drive:...``, as ``trainer eval -w`` takes it: staged into OUT/weights
    (md5-verified), then used; a missing local file is a usage error naming both forms."""
    wpath, _ = weights
    emulator.add_file("Models/best/tiny3.pth", wpath.read_bytes())
    src = tmp_path / "src"
    _images(src, sizes=((40, 40),))
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["predict", "--weights", "drive:Models/best/tiny3.pth",
                                   "--source", str(src), "--out", str(out),
                                   "--input-size", str(SIZE)])
    assert res.exit_code == 0, res.output
    assert (out / "weights" / "tiny3.pth").read_bytes() == wpath.read_bytes()
    local = CliRunner().invoke(cli, ["predict", "--weights", str(wpath), "--source", str(src),
                                     "--out", str(tmp_path / "local"), "--input-size", str(SIZE)])
    assert local.exit_code == 0, local.output
    assert json.loads((out / "detections.json").read_text())["images"] == \
        json.loads((tmp_path / "local" / "detections.json").read_text())["images"]
    res = CliRunner().invoke(cli, ["predict", "--weights", str(tmp_path / "nope.pth"),
                                   "--source", str(src), "--out", str(out)])
    assert res.exit_code == 2
    assert "does not exist; give a weights file, or drive:path to pull one from Drive" \
        in res.stderr
