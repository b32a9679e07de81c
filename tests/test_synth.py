"""The synthetic VOC generator and ``trainer synth-data``."""
from __future__ import annotations

import hashlib
import zipfile

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from trainer.cli import cli
from trainer.data.synth import make_synthetic_voc, synth_class_names
from trainer.data.devkit import load_voc_ground_truth, parse_voc_xml
from trainer.data.voc import parse_annotation_line, read_annotation_file
from trainer.errors import DataError


def _tree_digest(root):
    h = hashlib.md5()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_layout_splits_and_annotations(tmp_path):
    r = make_synthetic_voc(tmp_path, images=40, classes=4, seed=1, image_size=(64, 128))
    voc = r.voc_root / "VOC2007"
    ids = sorted(p.stem for p in (voc / "JPEGImages").glob("*.jpg"))
    assert ids == [f"{i:06d}" for i in range(1, 41)]
    assert sorted(p.stem for p in (voc / "Annotations").glob("*.xml")) == ids
    assert r.classes_file.read_text().split() == ["circle", "square", "triangle", "cross"]
    sets = {n: (voc / "ImageSets/Main" / f"{n}.txt").read_text().split() for n in ("trainval", "train", "val", "test")}
    assert len(sets["trainval"]) == 36 and len(sets["train"]) == 32 and len(sets["val"]) == 4
    assert sorted(sets["trainval"] + sets["test"]) == ids
    assert sorted(sets["train"] + sets["val"]) == sets["trainval"]
    sizes, total, flags = set(), 0, {"difficult": 0, "truncated": 0}
    for image_id in ids:
        image = cv2.imread(str(voc / "JPEGImages" / f"{image_id}.jpg"))
        size, objects = parse_voc_xml(voc / "Annotations" / f"{image_id}.xml")
        assert size == image.shape[:2] and 64 <= min(size) and max(size) <= 128
        sizes.add(size)
        for o in objects:
            x1, y1, x2, y2 = o.box
            assert 0 <= x1 < x2 <= size[1] and 0 <= y1 < y2 <= size[0]
            flags["difficult"] += o.difficult
            flags["truncated"] += o.truncated
        total += len(objects)
    assert total == r.objects and total >= 40
    assert len(sizes) > 20  # image sizes vary, so letterboxing matters
    assert flags["truncated"] > 0
    # Annotation lines: the train split, difficult objects left out, absolute paths that exist.
    lines = read_annotation_file(r.train_lines_file)
    assert len(lines) == 32
    gt = load_voc_ground_truth(r.voc_root, "2007", sets["train"], synth_class_names(4))
    for line, image_id in zip(lines, sets["train"]):
        path, boxes = parse_annotation_line(line)
        assert path.endswith(f"{image_id}.jpg") and cv2.imread(path) is not None
        b, labels, difficult = gt[image_id]
        np.testing.assert_array_equal(boxes[:, :4], b[~difficult])
        np.testing.assert_array_equal(boxes[:, 4], labels[~difficult])


def test_difficult_objects_exist_in_a_larger_set(tmp_path):
    r = make_synthetic_voc(tmp_path, images=120, classes=3, seed=0, image_size=(40, 60))
    voc = r.voc_root / "VOC2007"
    n = sum(o.difficult for p in (voc / "Annotations").glob("*.xml") for o in parse_voc_xml(p)[1])
    assert n > 0


def test_deterministic_for_a_seed(tmp_path):
    a = make_synthetic_voc(tmp_path / "a", images=6, classes=3, seed=5, image_size=(48, 64))
    b = make_synthetic_voc(tmp_path / "b", images=6, classes=3, seed=5, image_size=(48, 64))
    c = make_synthetic_voc(tmp_path / "c", images=6, classes=3, seed=6, image_size=(48, 64))
    assert _tree_digest(a.voc_root) == _tree_digest(b.voc_root) != _tree_digest(c.voc_root)


def test_zip_has_vocdevkit_at_its_root(tmp_path):
    r = make_synthetic_voc(tmp_path, images=5, classes=2, zip_path=tmp_path / "z" / "voc.zip", image_size=(48, 64))
    with zipfile.ZipFile(r.zip_path) as zf:
        names = set(zf.namelist())
        assert all(n.startswith("VOCdevkit/VOC2007/") for n in names)
        assert "VOCdevkit/VOC2007/JPEGImages/000001.jpg" in names
        assert "VOCdevkit/VOC2007/ImageSets/Main/train.txt" in names
        data = zf.read("VOCdevkit/VOC2007/Annotations/000003.xml")
    assert data == (r.voc_root / "VOC2007/Annotations/000003.xml").read_bytes()
    assert not list(tmp_path.glob("z/*.partial"))


def test_class_names_and_bad_arguments(tmp_path):
    names = synth_class_names(20)
    assert len(set(names)) == 20 and names[:2] == ["circle", "square"] and names[8] == "circle2"
    with pytest.raises(DataError, match="1 to 40 classes"):
        synth_class_names(41)
    with pytest.raises(DataError, match="at least 1"):
        make_synthetic_voc(tmp_path, images=0, classes=2)


def test_cli_synth_data(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["synth-data", str(tmp_path / "out"), "--images", "4", "--classes", "2",
                                 "--min-size", "40", "--max-size", "60", "--zip"])
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    assert out == [str(tmp_path / "out" / p) for p in
                   ("VOCdevkit", "classes.txt", "2007_train.txt", "2007_val.txt", "VOCdevkit.zip")]
    assert "4 images" in result.stderr and "circle, square" in result.stderr
    bad = runner.invoke(cli, ["synth-data", str(tmp_path / "x"), "--classes", "0"])
    assert bad.exit_code == 2 and "--classes" in bad.stderr
    bad = runner.invoke(cli, ["synth-data", str(tmp_path / "x"), "--min-size", "300", "--max-size", "200"])
    assert bad.exit_code == 2 and "--min-size 300 is larger than --max-size 200" in bad.stderr
