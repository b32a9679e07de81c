"""What ``trainer predict`` and ``trainer export-onnx`` write, and over what (attackdata27).

Nothing is written over what the command reads, nothing outside ``--out``, and no
half-written file is left under its final name. Real weights, tiny images.
"""
from __future__ import annotations

import hashlib
import json
import os

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from _messages import error_line
from _tmpfs import small_disk  # noqa: F401 (a fixture)
from trainer.cli import cli
from trainer.model import YoloV4Tiny


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "w2.pth"
    torch.save(YoloV4Tiny(num_classes=2).state_dict(), path)
    return path


def _md5(path) -> str:
    return hashlib.md5(open(path, "rb").read()).hexdigest()


def _image(path, h=40, w=56, seed=0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8))


def _predict(weights, source, out, *more):
    return CliRunner().invoke(cli, ["predict", "--weights", str(weights), "--source", str(source),
                                    "--out", str(out), "--input-size", "64", *more])


# --------------------------------------------------------------------------- predict

def test_predict_into_the_folder_it_reads_is_refused_and_the_photos_are_kept(tmp_path, weights):
    """`--out` = `--source`: every photo was replaced by its copy with boxes drawn, exit 0."""
    src = tmp_path / "photos"
    _image(src / "a.jpg")
    _image(src / "sub" / "b.png", seed=1)
    before = {p: _md5(p) for p in (src / "a.jpg", src / "sub" / "b.png")}
    r = _predict(weights, src, src)
    assert r.exit_code == 2, r.output
    assert error_line(r.stderr) == (
        f"Error: Invalid value for '--out': {src} would write the annotated images over the "
        "images --source reads; give another folder")
    assert {p: _md5(p) for p in before} == before
    assert sorted(os.listdir(src)) == ["a.jpg", "sub"]


def test_predict_of_one_image_into_its_own_folder_is_refused(tmp_path, weights):
    src = tmp_path / "photos"
    _image(src / "a.jpg")
    before = _md5(src / "a.jpg")
    r = _predict(weights, src / "a.jpg", src / "." / "")
    assert r.exit_code == 2, r.output
    assert "would write the annotated images over the images --source reads" in r.stderr
    assert _md5(src / "a.jpg") == before


def test_predict_into_a_folder_inside_the_source_leaves_its_own_outputs_alone(tmp_path, weights):
    """`--out photos/pred`: a second run read the first run's annotated copies as photos and
    wrote photos/pred/pred/..., one level deeper every run."""
    src = tmp_path / "photos"
    _image(src / "a.jpg")
    out = src / "pred"
    for _ in range(2):
        r = _predict(weights, src, out)
        assert r.exit_code == 0, r.output
    data = json.loads((out / "detections.json").read_text())
    assert [i["file"] for i in data["images"]] == ["a.jpg"]
    assert sorted(os.listdir(out)) == ["a.jpg", "detections.json"]


def test_predict_replaces_a_link_in_out_instead_of_writing_through_it(tmp_path, weights):
    """A link left in --out under an output's name (an --out folder unpacked from elsewhere)
    was followed: the annotated image was written over the file it points to, outside --out."""
    src, out = tmp_path / "photos", tmp_path / "out"
    _image(src / "a.png")
    out.mkdir()
    outside = tmp_path / "precious.png"
    outside.write_bytes(b"not to be touched")
    (out / "a.png").symlink_to(outside)
    (out / "detections.json").symlink_to(tmp_path / "precious.json")
    r = _predict(weights, src, out)
    assert r.exit_code == 0, r.output
    assert outside.read_bytes() == b"not to be touched"
    assert not (tmp_path / "precious.json").exists()
    assert not (out / "a.png").is_symlink() and cv2.imread(str(out / "a.png")).shape == (40, 56, 3)
    assert not (out / "detections.json").is_symlink()


def test_predict_on_a_full_disk_leaves_no_half_image_under_its_name(tmp_path, weights, small_disk):
    """A write that fails part-way (a full disk here; a kill does the same) left the first
    bytes of the annotated image under its final name, and a traceback."""
    src = tmp_path / "photos"
    _image(src / "a.png", h=200, w=200)        # noise: ~120 kB as PNG
    out = small_disk(64 * 1024)
    r = _predict(weights, src, out)
    assert r.exit_code == 1, r.output
    assert error_line(r.stderr) == (f"Error: cannot write {out / 'a.png'} (no space left on "
                                    "device); free space there or choose another --out")
    assert [n for n in os.listdir(out) if not n.startswith(".")] == []
    assert os.listdir(out) == []  # (no temporary file left either)


def test_predict_classes_file_with_a_byte_order_mark_and_repeated_names(tmp_path, weights):
    """predict read --classes as plain UTF-8: a classes file saved by Notepad named its first
    class '\\ufeffcat' in detections.json; a name given twice passed unnoticed."""
    src, out = tmp_path / "photos", tmp_path / "out"
    _image(src / "a.png")
    classes = tmp_path / "classes.txt"
    classes.write_bytes(b"\xef\xbb\xbfcat\ndog\n")
    r = _predict(weights, src, out, "--classes", str(classes))
    assert r.exit_code == 0, r.output
    assert json.loads((out / "detections.json").read_text())["classes"] == ["cat", "dog"]
    classes.write_text("cat\ncat\n")
    r = _predict(weights, src, out, "--classes", str(classes))
    assert r.exit_code == 1, r.output
    assert error_line(r.stderr) == f"Error: {classes} names a class twice: cat"


# --------------------------------------------------------------------------- export-onnx

def test_export_over_its_own_weights_is_refused_and_they_are_kept(tmp_path, weights):
    """`--out` the weights file itself: the trained weights were replaced by the graph."""
    pytest.importorskip("onnx")
    mine = tmp_path / "best.pt"
    mine.write_bytes(weights.read_bytes())
    r = CliRunner().invoke(cli, ["export-onnx", "--weights", str(mine), "--out", str(mine),
                                 "--input-size", "64"])
    assert r.exit_code == 2, r.output
    assert error_line(r.stderr) == (
        f"Error: Invalid value for '--out': {mine} is the --weights file; give the .onnx file "
        "another name")
    assert mine.read_bytes() == weights.read_bytes()


def test_export_that_fails_leaves_no_partial_file(tmp_path, weights, small_disk):
    """An export that failed part-way (a full disk) left OUT.partial behind."""
    pytest.importorskip("onnx")
    disk = small_disk(256 * 1024)              # the graph is ~23 MB
    out = disk / "m.onnx"
    r = CliRunner().invoke(cli, ["export-onnx", "--weights", str(weights), "--out", str(out),
                                 "--input-size", "64"])
    assert r.exit_code == 1, r.output
    assert error_line(r.stderr).startswith(f"Error: cannot write {out} (")
    assert os.listdir(disk) == []


def test_export_never_writes_through_a_link_at_its_temporary_name(tmp_path, weights):
    """The graph was written to the fixed name OUT.partial, opened as it was: a link of that
    name (a folder unpacked from elsewhere) had its target, outside, written over."""
    pytest.importorskip("onnx")
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    out = tmp_path / "out" / "m.onnx"
    out.parent.mkdir()
    (out.parent / "m.onnx.partial").symlink_to(victim)
    r = CliRunner().invoke(cli, ["export-onnx", "--weights", str(weights), "--out", str(out),
                                 "--input-size", "64"])
    assert r.exit_code == 0, r.output
    assert victim.read_text() == "precious\n"
    assert out.is_file() and not out.is_symlink()
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(out).st_mode & 0o777 == 0o666 & ~mask
    assert sorted(os.listdir(out.parent)) == ["m.onnx", "m.onnx.partial"]
