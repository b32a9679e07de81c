"""VOCdevkit reading, annotation lines and ``trainer prepare-voc``."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from click.testing import CliRunner

from trainer.cli import cli
from trainer.data.devkit import find_voc_root, load_voc_ground_truth
from trainer.data.voc import (
    VOC_CLASSES,
    format_annotation_line,
    parse_annotation_line,
    prepare_voc,
    read_annotation_file,
    read_classes,
)
from trainer.errors import DataError


def _xml(objects, w=100, h=80):
    body = "".join(
        f"<object><name>{n}</name><difficult>{d}</difficult>"
        f"<bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for n, b, d in objects
    )
    return f"<annotation><size><width>{w}</width><height>{h}</height><depth>3</depth></size>{body}</annotation>"


@pytest.fixture
def devkit(tmp_path):
    """20 annotated images: cats and dogs, a difficult dog, an unknown 'zebra', one image missing."""
    voc = tmp_path / "VOCdevkit" / "VOC2007"
    (voc / "Annotations").mkdir(parents=True)
    (voc / "JPEGImages").mkdir()
    for i in range(20):
        image_id = f"{i:06d}"
        objects = [("cat", (1, 2, 30, 40), 0)]
        if i % 2:
            objects.append(("dog", (10.0, 12.7, 50.2, 60), 0))
        if i == 3:
            objects.append(("dog", (60, 5, 90, 30), 1))
            objects.append(("zebra", (0, 0, 5, 5), 0))
        (voc / "Annotations" / f"{image_id}.xml").write_text(_xml(objects))
        if i != 7:
            (voc / "JPEGImages" / f"{image_id}.jpg").write_bytes(b"not decoded here")
    classes = tmp_path / "classes.txt"
    classes.write_text("cat\n\ndog\n")
    return tmp_path / "VOCdevkit", classes


def test_read_classes(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("a\n b \n\n")
    assert read_classes(p) == ["a", "b"]
    assert read_classes(["x", "y"]) == ["x", "y"]
    with pytest.raises(DataError, match="twice: a"):
        read_classes(["a", "b", "a"])
    with pytest.raises(DataError, match="does not exist"):
        read_classes(tmp_path / "missing.txt")
    p.write_text("\n")
    with pytest.raises(DataError, match="names no classes"):
        read_classes(p)
    assert len(VOC_CLASSES) == 20


def test_parse_annotation_line():
    path, boxes = parse_annotation_line("/data/img 1.jpg 1,2,30,40,0 10,12,50,60,3\n")
    assert path == "/data/img 1.jpg"  # a space in the path survives
    assert boxes.dtype == np.float32
    np.testing.assert_array_equal(boxes, [[1, 2, 30, 40, 0], [10, 12, 50, 60, 3]])
    path, boxes = parse_annotation_line("a.jpg")
    assert path == "a.jpg" and boxes.shape == (0, 5)
    assert parse_annotation_line("a.jpg 1.5,2,3,4,1")[1][0, 0] == 1.5
    with pytest.raises(DataError, match="bad box '1,2,3,x,0'"):
        parse_annotation_line("a.jpg 1,2,3,x,0")
    with pytest.raises(DataError, match="bad box '1,2,3,4'"):
        parse_annotation_line("a.jpg 1,2,3,4")
    with pytest.raises(DataError, match="no image path"):
        parse_annotation_line("1,2,3,4,0")
    with pytest.raises(DataError, match="empty annotation line"):
        parse_annotation_line("  ")
    assert format_annotation_line("x.jpg", [(1.9, 2, 3, 4, 0)]) == "x.jpg 1,2,3,4,0"


def test_read_annotation_file_resolves_relative_paths(tmp_path):
    f = tmp_path / "2007_train.txt"
    f.write_text("VOCdevkit/VOC2007/JPEGImages/a.jpg 1,2,3,4,0\n\n/abs/b.jpg\n")
    assert read_annotation_file(f) == ["VOCdevkit/VOC2007/JPEGImages/a.jpg 1,2,3,4,0", "/abs/b.jpg"]
    lines = read_annotation_file(f, root=tmp_path)
    assert lines == [f"{tmp_path}/VOCdevkit/VOC2007/JPEGImages/a.jpg 1,2,3,4,0", "/abs/b.jpg"]
    f.write_text("a.jpg 1,2,3,4,0\nb.jpg 1,2,3\n")
    with pytest.raises(DataError, match=r"2007_train.txt:2: bad box '1,2,3'"):
        read_annotation_file(f)
    with pytest.raises(DataError, match="prepare-voc"):
        read_annotation_file(tmp_path / "nope.txt")


def test_prepare_voc_mode_0(devkit, tmp_path, caplog):
    root, classes = devkit
    out = tmp_path / "lines"
    report = prepare_voc(root, 0, classes, out)
    sets = root / "VOC2007/ImageSets/Main"
    split = {n: (sets / f"{n}.txt").read_text().split() for n in ("trainval", "train", "val", "test")}
    ids = [f"{i:06d}" for i in range(20)]
    # int(20 * 0.9) = 18 in trainval, int(18 * 0.9) = 16 in train: the port's arithmetic.
    assert [len(split[n]) for n in ("trainval", "train", "val", "test")] == [18, 16, 2, 2]
    assert sorted(split["trainval"] + split["test"]) == ids
    assert sorted(split["train"] + split["val"]) == sorted(split["trainval"])
    assert report.splits["trainval"] == 18
    train_lines = (out / "2007_train.txt").read_text().splitlines()
    val_lines = (out / "2007_val.txt").read_text().splitlines()
    missing = "000007" in split["train"] or "000007" in split["val"]
    assert len(train_lines) + len(val_lines) == 18 - missing
    for line in train_lines + val_lines:
        path, boxes = parse_annotation_line(line)
        image_id = Path(path).stem
        assert Path(path).is_absolute() and Path(path).exists()
        expected = [[1, 2, 30, 40, 0]] + ([[10, 12, 50, 60, 1]] if int(image_id) % 2 else [])
        np.testing.assert_array_equal(boxes, expected)  # difficult dog and zebra left out, ints truncated
    in_lines = {Path(parse_annotation_line(l)[0]).stem for l in train_lines + val_lines}
    assert report.class_counts == {
        "cat": len(in_lines), "dog": sum(int(i) % 2 for i in in_lines),
    }
    if "000003" in in_lines:
        assert report.unknown_counts == {"zebra": 1} and report.difficult_skipped == 1
        assert any("zebra (1)" in w for w in report.warnings)
    assert ("cat" in report.table()) and ("objects" in report.table())
    assert report.files == [sets / f"{n}.txt" for n in ("trainval", "test", "train", "val")] + [
        out / "2007_train.txt", out / "2007_val.txt"]


def test_prepare_voc_is_seeded(devkit, tmp_path):
    root, classes = devkit
    sets = root / "VOC2007/ImageSets/Main"
    prepare_voc(root, 1, classes, tmp_path, seed=1)
    first = (sets / "train.txt").read_text()
    prepare_voc(root, 1, classes, tmp_path, seed=1)
    assert (sets / "train.txt").read_text() == first
    prepare_voc(root, 1, classes, tmp_path, seed=2, replace_splits=True)
    assert (sets / "train.txt").read_text() != first
    assert not (tmp_path / "2007_train.txt").exists()  # mode 1 writes only the splits


def test_prepare_voc_mode_2_uses_existing_splits_and_warns(devkit, tmp_path):
    root, classes = devkit
    sets = root / "VOC2007/ImageSets/Main"
    sets.mkdir(parents=True)
    (sets / "train.txt").write_text("000003\n000007\n000001\n")
    (sets / "val.txt").write_text("")
    report = prepare_voc(root.parent, 2, classes, tmp_path)  # the folder holding VOCdevkit works too
    lines = (tmp_path / "2007_train.txt").read_text().splitlines()
    assert [Path(parse_annotation_line(l)[0]).stem for l in lines] == ["000003", "000001"]
    assert (tmp_path / "2007_val.txt").read_text() == ""
    assert report.missing_images == ["000007"]
    assert report.unknown_counts == {"zebra": 1} and report.difficult_skipped == 1
    text = "\n".join(report.warnings)
    assert "2007_val.txt is empty" in text and "1 images listed in the splits are missing" in text
    assert not (sets / "test.txt").exists()  # mode 2 never writes splits


def test_prepare_voc_errors(devkit, tmp_path):
    root, classes = devkit
    with pytest.raises(DataError, match="split file .*train.txt does not exist.*--mode 1"):
        prepare_voc(root, 2, classes, tmp_path)
    with pytest.raises(DataError, match="no VOC2012 folder"):
        prepare_voc(root, 0, classes, tmp_path, year="2012")
    with pytest.raises(DataError, match="mode must be 0, 1 or 2"):
        prepare_voc(root, 3, classes, tmp_path)
    report = prepare_voc(root, 0, ["horse"], tmp_path)
    assert any("no objects of the given classes" in w for w in report.warnings)
    assert report.unknown_counts["cat"] > 0


def test_load_voc_ground_truth_keeps_difficult(devkit):
    root, _ = devkit
    gt = load_voc_ground_truth(root, "2007", ["000003", "000002"], ["cat", "dog"])
    boxes, labels, difficult = gt["000003"]
    np.testing.assert_array_equal(boxes, np.float32([[1, 2, 30, 40], [10, 12.7, 50.2, 60], [60, 5, 90, 30]]))
    assert labels.tolist() == [0, 1, 1] and difficult.tolist() == [False, False, True]
    assert gt["000002"][1].tolist() == [0]
    assert find_voc_root(root / "VOC2007") == root


def test_cli_prepare_voc(devkit, tmp_path):
    root, classes = devkit
    runner = CliRunner()
    result = runner.invoke(cli, ["prepare-voc", str(root), "--mode", "0", "--classes", str(classes),
                                 "--out", str(tmp_path / "o"), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-2:] == [str(tmp_path / "o" / "2007_train.txt"),
                                               str(tmp_path / "o" / "2007_val.txt")]
    assert "| cat" in result.stderr and "trainval: 18 images" in result.stderr
    bad = runner.invoke(cli, ["prepare-voc", str(root), "--mode", "5"])
    assert bad.exit_code == 2 and "--mode" in bad.stderr
    missing = runner.invoke(cli, ["prepare-voc", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1
    assert missing.stderr.startswith("Error: no VOC2007 folder under")
