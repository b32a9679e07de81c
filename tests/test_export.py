"""ONNX export with decoding, checked against torch with onnxruntime."""
from __future__ import annotations

import json

import numpy as np
import torch
from click.testing import CliRunner

from trainer.cli import cli
from trainer.export import DecodedYolo, export_onnx
from trainer.model import YoloV4Tiny, decode

# onnx and onnxruntime are imported by the tests that use them: at the top of the module they
# cost every test worker 0.6 s as it collects the suite, though one or two run these tests.


def test_onnx_graph_matches_torch_decoding_for_any_batch(tmp_path):
    import onnx
    import onnxruntime as ort

    torch.manual_seed(0)
    model = YoloV4Tiny(num_classes=3, input_size=96).eval()
    path = export_onnx(model, tmp_path / "m.onnx", class_names=["a", "b", "c"])
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        x = torch.rand(batch, 3, 96, 96)
        (got,) = session.run(None, {"images": x.numpy()})
        with torch.no_grad():
            ref = decode(model(x), model.anchors, model.anchors_mask, 96).numpy()
        assert got.shape == (batch, 3 * 3 * 3 + 3 * 6 * 6, 8)
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-3)
    meta = {p.key: json.loads(p.value) for p in onnx.load(path).metadata_props}
    assert meta["names"] == ["a", "b", "c"] and meta["input_size"] == 96


def test_export_cli_writes_a_checked_graph(tmp_path):
    import onnxruntime as ort

    torch.manual_seed(1)
    model = YoloV4Tiny(num_classes=2).eval()
    weights = tmp_path / "w.pth"
    torch.save(model.state_dict(), weights)
    out = tmp_path / "sub" / "m.onnx"
    res = CliRunner().invoke(cli, ["export-onnx", "--weights", str(weights), "--out", str(out),
                                   "--input-size", "64"])
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == str(out)
    assert not (tmp_path / "sub" / "m.onnx.partial").exists()
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        ref = DecodedYolo(model)(x).numpy()
    np.testing.assert_allclose(session.run(None, {"images": x.numpy()})[0], ref, rtol=1e-4, atol=1e-3)


def test_export_cli_refuses_a_backbone_only_file(tmp_path):
    from trainer.weights import save_darknet

    path = tmp_path / "yolov4-tiny.conv.29"
    save_darknet(YoloV4Tiny(num_classes=80), path, upto_layer=29)
    res = CliRunner().invoke(cli, ["export-onnx", "--weights", str(path), "--out", str(tmp_path / "m.onnx")])
    assert res.exit_code == 1
    assert "has no detection heads" in res.stderr
