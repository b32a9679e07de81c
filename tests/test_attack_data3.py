"""Real-world VOC folders that broke the data side: each test is a dataset users bring.

Tiny images, no training: a dataset, a loader or ``prepare_voc`` at most.
"""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from _messages import error_text, log_text
from trainer.errors import DataError

BOM = b"\xef\xbb\xbf"


def _voc(root: Path, objects: dict[str, list[tuple]], *, split: bytes | None = None) -> Path:
    """A VOCdevkit under ``root``: per id its objects ``(name, xmin, ymin, xmax, ymax[, difficult])``
    on a 64x48 JPEG; ImageSets/Main/train.txt lists the ids (or holds ``split``)."""
    voc = root / "VOCdevkit" / "VOC2007"
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    for image_id, objs in objects.items():
        body = "".join(
            f"<object><name>{o[0]}</name><difficult>{o[5] if len(o) > 5 else 0}</difficult><bndbox>"
            f"<xmin>{o[1]}</xmin><ymin>{o[2]}</ymin><xmax>{o[3]}</xmax><ymax>{o[4]}</ymax></bndbox></object>"
            for o in objs)
        (voc / "Annotations" / f"{image_id}.xml").write_text(
            f"<annotation><size><width>64</width><height>48</height></size>{body}</annotation>")
        cv2.imwrite(str(voc / "JPEGImages" / f"{image_id}.jpg"), np.full((48, 64, 3), 90, np.uint8))
    (voc / "ImageSets" / "Main" / "train.txt").write_bytes(
        split if split is not None else "".join(f"{i}\n" for i in objects).encode())
    return voc


def _lines(out: Path) -> list[str]:
    return (out / "2007_train.txt").read_text().splitlines()


# --------------------------------------------------------------------------- images

def both_refuse(lines: list[str], expected: str) -> str:
    """Training's and evaluation's datasets each refuse the first line's image with exactly
    ``expected`` (its ``Error:`` line); returns it."""
    from trainer.data.dataset import EvalDataset, YoloDataset

    with pytest.raises(DataError) as training:
        YoloDataset(lines, 64, 1, train=False)[0]
    assert error_text(training.value) == expected
    with pytest.raises(DataError) as evaluating:
        EvalDataset(lines, 64)[0]
    assert error_text(evaluating.value) == expected
    return expected


def test_an_empty_image_file_is_named_not_an_opencv_traceback(tmp_path):
    empty = tmp_path / "000001.jpg"
    empty.write_bytes(b"")                            # a download or copy that never finished
    both_refuse([f"{empty} 1,1,20,20,0"],
                f"Error: cannot read image {empty}: the file is missing or not an image")


def test_a_broken_image_under_the_disk_cache_is_named(tmp_path):
    from trainer.data.dataset import YoloDataset

    broken = tmp_path / "000001.jpg"
    broken.write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(DataError) as refused:
        YoloDataset([f"{broken} 1,1,20,20,0"], 64, 1, train=False, cache="disk", cache_dir=str(tmp_path / "c"))
    assert str(broken) in error_text(refused.value)
    assert "BytesIO" not in error_text(refused.value)


def test_a_broken_image_met_by_a_loader_worker_is_one_line(tmp_path):
    from trainer.data.dataset import YoloDataset, build_loader

    good, broken = tmp_path / "a.jpg", tmp_path / "b.jpg"
    cv2.imwrite(str(good), np.zeros((48, 64, 3), np.uint8))
    broken.write_bytes(b"not an image")
    ds = YoloDataset([f"{good} 1,1,20,20,0", f"{broken} 1,1,20,20,0"], 64, 1, train=False)
    loader = build_loader(ds, 2, shuffle=False, workers=1, seed=0, drop_last=False)  # data.workers=2 is the default
    batches = iter(loader)
    with pytest.raises(DataError) as failed:
        for _ in batches:
            pass
    # Its worker stopped now, as the iterator is done with: left to the collector (the
    # error's traceback holds the iterator in a cycle), torch's shutdown waited 5 s for a
    # worker that never got the word to stop, in whichever test came next.
    batches._shutdown_workers()
    assert error_text(failed.value) == f"Error: cannot read image {broken}: the file is missing or not an image"


# --------------------------------------------------------------------------- annotations

@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_box_coordinate_that_is_not_finite_is_a_data_error(tmp_path, value):
    from trainer.data.voc import prepare_voc

    voc = _voc(tmp_path, {"a": [("dog", value, 2, 20, 30)]})
    with pytest.raises(DataError) as refused:
        prepare_voc(tmp_path, 2, ["dog"], tmp_path, image_sets=("train",))
    assert error_text(refused.value) == (f"Error: annotation {voc / 'Annotations' / 'a.xml'}: "
                                         "object 'dog' has a bad <bndbox>")


def test_an_annotation_that_cannot_be_opened_is_a_data_error(tmp_path):
    from trainer.data.devkit import parse_voc_xml

    folder = tmp_path / "a.xml"
    folder.mkdir()                                    # e.g. an unzip that made a folder of that name
    with pytest.raises(DataError) as refused:
        parse_voc_xml(folder)
    assert str(folder) in error_text(refused.value)


@pytest.mark.parametrize("value, difficult", [("0", False), ("1", True), ("false", False), ("False", False),
                                              ("true", True), ("0.0", False), ("1.0", True), (" 0 ", False)])
def test_difficult_as_booleans_and_floats(tmp_path, value, difficult):
    from trainer.data.devkit import parse_voc_xml

    voc = _voc(tmp_path, {"a": [("dog", 1, 2, 20, 30, value)]})
    _, (obj,) = parse_voc_xml(voc / "Annotations" / "a.xml")
    assert obj.difficult is difficult


def test_inverted_and_empty_boxes_are_left_out_with_a_warning(tmp_path, caplog):
    from trainer.data.voc import prepare_voc

    voc = _voc(tmp_path, {"a": [("dog", 10, 10, 40, 40), ("dog", 50, 10, 20, 40)],   # xmin > xmax
                          "b": [("dog", 5, 30, 25, 30)]})                              # no height
    with caplog.at_level(logging.WARNING, logger="trainer"):
        report = prepare_voc(tmp_path, 2, ["dog"], tmp_path, image_sets=("train",))
    jpeg = voc / "JPEGImages"
    assert _lines(tmp_path) == [f"{(jpeg / 'a.jpg').resolve()} 10,10,40,40,0", f"{(jpeg / 'b.jpg').resolve()}"]
    assert report.class_counts == {"dog": 1}
    text = log_text(caplog.records)
    assert "2 objects with an empty or inverted box" in text and str(voc / "Annotations" / "a.xml") in text


# --------------------------------------------------------------------------- text files from Windows

def test_a_classes_file_with_a_byte_order_mark(tmp_path):
    from trainer.data.voc import read_classes

    path = tmp_path / "classes.txt"
    path.write_bytes(BOM + b"dog\r\ncat\r\n")        # Notepad's "UTF-8 with BOM"
    assert read_classes(path) == ["dog", "cat"]


def test_a_split_file_with_a_byte_order_mark(tmp_path):
    from trainer.data.voc import prepare_voc

    voc = _voc(tmp_path, {"a": [("dog", 1, 2, 20, 30)], "b": [("dog", 3, 4, 20, 30)]}, split=BOM + b"a\r\nb\r\n")
    report = prepare_voc(tmp_path, 2, ["dog"], tmp_path, image_sets=("train",))
    assert report.missing_images == [] and report.warnings == []
    assert [line.split()[0] for line in _lines(tmp_path)] == [
        str((voc / "JPEGImages" / f"{i}.jpg").resolve()) for i in "ab"]


def test_an_annotation_file_with_a_byte_order_mark(tmp_path):
    from trainer.data.voc import read_annotation_file

    image = tmp_path / "a.jpg"
    path = tmp_path / "2007_train.txt"
    path.write_bytes(BOM + f"{image} 1,2,20,30,0\r\n".encode())
    assert read_annotation_file(path) == [f"{image} 1,2,20,30,0"]


# --------------------------------------------------------------------------- EXIF orientation

def _phone_photo(voc: Path, image_id: str, xml_size: tuple[int, int]) -> None:
    """A 64x48 JPEG whose EXIF says 'turn 90 degrees clockwise' (a phone held upright), with one
    box in an XML whose <size> is ``(width, height)``."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.full((48, 64, 3), 90, np.uint8)).save(voc / "JPEGImages" / f"{image_id}.jpg", exif=exif)
    w, h = xml_size
    (voc / "Annotations" / f"{image_id}.xml").write_text(
        f"<annotation><size><width>{w}</width><height>{h}</height></size><object><name>dog</name>"
        "<bndbox><xmin>4</xmin><ymin>4</ymin><xmax>40</xmax><ymax>20</ymax></bndbox></object></annotation>")


def test_boxes_drawn_on_unturned_pixels_are_left_out_with_a_warning(tmp_path, caplog):
    from trainer.data.images import decode_fitted, read_bytes
    from trainer.data.voc import prepare_voc

    voc = _voc(tmp_path, {"a": [("dog", 1, 2, 20, 30)]}, split=b"a\nlabelimg\nlabelme\n")
    _phone_photo(voc, "labelimg", (64, 48))           # labelImg ignores EXIF: <size> is the stored one
    _phone_photo(voc, "labelme", (48, 64))            # labelme turns the photo first
    image, orig = decode_fitted(read_bytes(voc / "JPEGImages" / "labelimg.jpg"), 64)
    assert orig == (64, 48)                           # what training sees: turned upright
    with caplog.at_level(logging.WARNING, logger="trainer"):
        report = prepare_voc(tmp_path, 2, ["dog"], tmp_path, image_sets=("train",))
    assert [line.split()[0] for line in _lines(tmp_path)] == [
        str((voc / "JPEGImages" / f"{i}.jpg").resolve()) for i in ("a", "labelme")]
    assert report.unturned == [str(voc / "JPEGImages" / "labelimg.jpg")]
    assert "1 image is turned by its EXIF orientation but was annotated unturned" in log_text(caplog.records)
