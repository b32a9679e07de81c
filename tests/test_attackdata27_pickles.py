"""A weights file from anywhere must never run code (attackdata27): a pickle whose
``__reduce__`` calls ``os.system`` handed to ``predict``, ``eval``, ``export-onnx`` and the
library loaders. That held (``torch.load(..., weights_only=True)`` everywhere), but the
refusal was torch's eight-line text, ANSI escapes included, advising ``weights_only=False``
("will likely succeed"): the one thing never to do with such a file."""
from __future__ import annotations

import os
import pickle

import pytest
import torch
from click.testing import CliRunner

from _messages import error_line
from trainer.cli import cli


class _Exploit:
    """Unpickled, it creates ``marker``: proof that the file ran code."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _hostile(tmp_path, kind: str):
    """A weights file that runs ``touch MARKER`` when unpickled: torch's zip format (a state
    dict holding the object next to real tensors) or a bare legacy pickle."""
    marker = tmp_path / "pwned"
    path = tmp_path / f"{kind}.pth"
    if kind == "zip":
        from trainer.model import YoloV4Tiny

        state = dict(YoloV4Tiny(num_classes=2).state_dict())
        state["x"] = _Exploit(str(marker))
        torch.save(state, path)
    else:
        path.write_bytes(pickle.dumps({"model": _Exploit(str(marker))}, protocol=2))
    assert not marker.exists()
    return path, marker


def _refusal(path) -> str:
    return (f"Error: {path} holds a pickled Python object (posix.system), not only tensors; "
            "such objects are never loaded (a file from anywhere could run code): give a "
            "state dict (torch.save(model.state_dict(), PATH)) or a checkpoint of this trainer")


def test_a_whole_pickled_model_is_refused_in_one_line(tmp_path):
    """`torch.save(model)` (the whole module, as some repositories publish weights)."""
    from trainer.model import YoloV4Tiny

    path = tmp_path / "model.pt"
    torch.save(YoloV4Tiny(num_classes=2), path)
    r = CliRunner().invoke(cli, ["export-onnx", "--weights", str(path), "--out",
                                 str(tmp_path / "m.onnx")])
    assert r.exit_code == 1, r.output
    assert error_line(r.stderr) == _refusal(path).replace("posix.system",
                                                          "trainer.model.yolo.YoloV4Tiny")


def _torch_says(path) -> str:
    """What this torch says of ``path`` (its type and first line): its words for a cut file
    are its own and change with its version (torch>=2.1 is asked for): 2.14 says ``OSError:
    [Errno 22] Invalid argument``, older ones ``RuntimeError: PytorchStreamReader failed
    reading zip archive: failed finding central directory``."""
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:   # (any type: torch raises several for a damaged file)
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        return f"{type(exc).__name__}: {lines[0]}"
    raise AssertionError(f"{path} loaded")


def test_a_truncated_weights_file_says_so(tmp_path):
    """A download cut short: `(OSError: [Errno 22] Invalid argument)` (torch's words), nothing
    more."""
    from trainer.model import YoloV4Tiny

    path = tmp_path / "w.pth"
    torch.save(YoloV4Tiny(num_classes=2).state_dict(), path)
    path.write_bytes(path.read_bytes()[:5000])
    r = CliRunner().invoke(cli, ["export-onnx", "--weights", str(path), "--out",
                                 str(tmp_path / "m.onnx")])
    assert r.exit_code == 1, r.output
    assert error_line(r.stderr) == (f"Error: {path} cannot be read as PyTorch weights "
                                    f"({_torch_says(path)}); it is truncated, damaged or not a "
                                    "weights file")


@pytest.mark.parametrize("kind", ["zip", "legacy"])
def test_predict_and_export_never_run_a_hostile_pickle(tmp_path, kind):
    import cv2
    import numpy as np

    path, marker = _hostile(tmp_path, kind)
    (tmp_path / "src").mkdir()
    cv2.imwrite(str(tmp_path / "src" / "a.png"), np.zeros((32, 32, 3), np.uint8))
    r = CliRunner().invoke(cli, ["predict", "--weights", str(path), "--source",
                                 str(tmp_path / "src"), "--out", str(tmp_path / "out")])
    assert r.exit_code == 1, r.output
    assert error_line(r.stderr) == _refusal(path)
    assert not marker.exists()
    pytest.importorskip("onnx")
    r = CliRunner().invoke(cli, ["export-onnx", "--weights", str(path), "--out",
                                 str(tmp_path / "m.onnx")])
    assert r.exit_code == 1, r.output
    assert not marker.exists() and not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("kind", ["zip", "legacy"])
def test_eval_and_a_resume_never_run_a_hostile_pickle(tmp_path, kind, tiny_config):
    from trainer.checkpoint import load_checkpoint
    from trainer.errors import CheckpointError

    path, marker = _hostile(tmp_path, kind)
    r = CliRunner().invoke(cli, ["eval", "-c", tiny_config(), "-w", str(path)])
    assert r.exit_code == 1, r.output
    assert error_line(r.stderr) == _refusal(path)
    with pytest.raises(CheckpointError):
        load_checkpoint(str(path))
    assert not marker.exists()


def test_a_weights_file_that_inflates_a_thousandfold_is_refused_before_loading(tmp_path):
    """torch.load inflates DEFLATE records of the zip (torch itself writes them stored):
    195 kB on disk became a 200 MB tensor here, so a 20 MB `.pth` from anywhere is 20 GB in
    memory, an out-of-memory kill. Refused from the zip's directory, before anything is read."""
    import zipfile

    plain = tmp_path / "plain.pt"
    torch.save({"w": torch.zeros(5_000_000)}, plain)             # 20 MB stored
    bomb = tmp_path / "bomb.pth"
    with zipfile.ZipFile(plain) as zin, zipfile.ZipFile(bomb, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename), compress_type=zipfile.ZIP_DEFLATED)
    assert os.path.getsize(bomb) < 100_000
    r = CliRunner().invoke(cli, ["export-onnx", "--weights", str(bomb), "--out",
                                 str(tmp_path / "m.onnx")])
    assert r.exit_code == 1, r.output
    from drivestage.sizes import format_size

    unpacked = sum(i.file_size for i in zipfile.ZipFile(bomb).infolist())
    assert error_line(r.stderr) == (
        f"Error: {bomb} would unpack to {format_size(unpacked)} from "
        f"{format_size(os.path.getsize(bomb))} on disk (a zip bomb?); PyTorch writes its files "
        "uncompressed: give weights saved by torch.save")


def _shared(levels: int = 6) -> list:
    """A list of 10**levels strings built from ``levels`` lists: pickled, its shared
    references stay shared (a few hundred bytes)."""
    item: list = ["lol"] * 10
    for _ in range(levels):
        item = [item] * 10
    return item


@pytest.mark.parametrize("field", ["classes", "anchors"])
def test_a_checkpoint_recording_shared_references_never_hangs_predict(tmp_path, field):
    """A checkpoint's config is anybody's pickle: names (or anchors) made of one list shared
    10**9 times (a few hundred bytes) were spelt out by predict's detections.json and labels,
    eval's messages and its model check (json.dumps): a hang, and gigabytes."""
    import cv2
    import numpy as np

    from test_attackdata27_images import _in_thread
    from trainer.model import YoloV4Tiny

    model = YoloV4Tiny(num_classes=2)
    config = {"model": {}, "data": {}}
    if field == "classes":
        config["data"]["classes"] = [_shared(), _shared()]
    else:
        config["model"]["anchors"] = _shared()
    path = tmp_path / "best.pt"
    torch.save({"model": model.state_dict(), "config": config}, path)
    assert os.path.getsize(path) < 24_000_000  # the weights; the config is a few hundred bytes
    (tmp_path / "src").mkdir()
    cv2.imwrite(str(tmp_path / "src" / "a.png"), np.zeros((32, 32, 3), np.uint8))
    box: list = []
    finished, exc = _in_thread(lambda: box.append(CliRunner().invoke(cli, [
        "predict", "--weights", str(path), "--source", str(tmp_path / "src"), "--out",
        str(tmp_path / "out"), "--input-size", "64"])))
    assert finished and exc is None, exc
    r = box[0]
    assert r.exit_code == 1, r.output
    line = error_line(r.stderr)
    what = "class names" if field == "classes" else "model.anchors"
    assert line.startswith(f"Error: {path} records a model that cannot be built ({what}: [["), line
    assert line.endswith("); use weights saved by this trainer, or a state dict"), line
    assert len(line) < 500, line
