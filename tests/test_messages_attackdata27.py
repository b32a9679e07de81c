"""docs/troubleshooting.md: the messages attackdata27's fixes added, each made to happen
through the real command (see tests/_messages.py). More: tests/test_attackdata27_*.py."""
from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from _messages import error_line, error_text, renders, shown
from _tmpfs import small_disk  # noqa: F401 (a fixture)
from test_attack_data3 import _voc
from trainer.cli import cli


def _weights(tmp_path):
    import torch

    from trainer.model import YoloV4Tiny

    path = tmp_path / "w.pth"
    torch.save(YoloV4Tiny(num_classes=2).state_dict(), path)
    return path


def _photo(path, h=40, w=56):
    import cv2
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8))


def _prepare(root):
    (root / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main" / "val.txt").write_text("")
    return CliRunner().invoke(cli, ["prepare-voc", str(root), "--mode", "2", "--classes",
                                    str(root / "classes.txt"), "--out", str(root)])


@renders("is not UTF-8 text (line … holds the byte …); save it as UTF-8")
def test_a_classes_file_saved_by_a_windows_editor(tmp_path):
    _voc(tmp_path, {"a": [("dog", 1, 2, 20, 30)]})
    (tmp_path / "classes.txt").write_bytes("dog\ncaf\u00e9\n".encode("cp1252"))
    r = _prepare(tmp_path)
    assert r.exit_code == 1
    line = error_line(r.stderr)
    assert line == (f"Error: {tmp_path / 'classes.txt'} is not UTF-8 text (line 2 holds the byte "
                    "0xE9); save it as UTF-8")
    shown("is not UTF-8 text (line … holds the byte …); save it as UTF-8", line)


@renders("declares encoding … but is not in it; save it as UTF-8")
def test_an_annotation_not_in_its_declared_encoding(tmp_path):
    voc = _voc(tmp_path, {"a": [("dog", 1, 2, 20, 30)]})
    xml = voc / "Annotations" / "a.xml"
    xml.write_bytes(b'<?xml version="1.0" encoding="gb2312"?><annotation>\xff\xff</annotation>')
    (tmp_path / "classes.txt").write_text("dog\n")
    r = _prepare(tmp_path)
    assert r.exit_code == 1
    line = error_line(r.stderr)
    assert line == (f"Error: annotation {xml} declares encoding 'gb2312' but is not in it; save "
                    "it as UTF-8")
    shown("declares encoding … but is not in it; save it as UTF-8", line)


@renders("not a regular file (a FIFO, socket or device); replace it with")
def test_a_fifo_where_an_annotation_was(tmp_path):
    """(A FIFO at an image's name: tests/test_attackdata27_images.py.)"""
    voc = _voc(tmp_path, {"a": [("dog", 1, 2, 20, 30)]})
    xml = voc / "Annotations" / "a.xml"
    xml.unlink()
    os.mkfifo(xml)
    (tmp_path / "classes.txt").write_text("dog\n")
    r = _prepare(tmp_path)
    assert r.exit_code == 1
    line = error_line(r.stderr)
    assert line == (f"Error: cannot read annotation {xml}: not a regular file (a FIFO, socket or "
                    "device); replace it with the XML file")
    shown("not a regular file (a FIFO, socket or device); replace it with", line)


@renders("would write the annotated images over the images --source reads; give another folder")
def test_predict_into_the_photos_folder(tmp_path):
    src = tmp_path / "photos"
    _photo(src / "a.jpg")
    r = CliRunner().invoke(cli, ["predict", "--weights", str(_weights(tmp_path)), "--source",
                                 str(src), "--out", str(src), "--input-size", "64"])
    assert r.exit_code == 2
    line = error_line(r.stderr)
    shown("would write the annotated images over the images --source reads; give another "
          "folder", line)


@renders("cannot write … (…); free space there or choose another --out")
def test_predict_on_a_full_disk(tmp_path, small_disk):
    src = tmp_path / "photos"
    _photo(src / "a.png", 200, 200)
    out = small_disk(64 * 1024)
    r = CliRunner().invoke(cli, ["predict", "--weights", str(_weights(tmp_path)), "--source",
                                 str(src), "--out", str(out), "--input-size", "64"])
    assert r.exit_code == 1
    line = error_line(r.stderr)
    assert line == (f"Error: cannot write {out / 'a.png'} (no space left on device); free space "
                    "there or choose another --out")
    shown("cannot write … (…); free space there or choose another --out", line)


@renders("is the --weights file; give the .onnx file another name")
def test_export_onto_the_weights(tmp_path):
    pytest.importorskip("onnx")
    weights = _weights(tmp_path)
    r = CliRunner().invoke(cli, ["export-onnx", "--weights", str(weights), "--out", str(weights)])
    assert r.exit_code == 2
    line = error_line(r.stderr)
    shown("is the --weights file; give the .onnx file another name", line)


@renders("holds a dataset synth-data did not write (e.g. …), which the synthetic one would be "
         "written over; give another OUT")
def test_synth_data_into_a_real_dataset(tmp_path):
    _voc(tmp_path, {"000001": [("dog", 1, 2, 20, 30)]})
    r = CliRunner().invoke(cli, ["synth-data", str(tmp_path), "--images", "2", "--min-size", "32",
                                 "--max-size", "40"])
    assert r.exit_code == 1
    shown("holds a dataset synth-data did not write (e.g. …), which the synthetic one would be "
          "written over; give another OUT", error_line(r.stderr))


@renders("cannot read image … pixels, more than the")
def test_a_tiff_bomb(tmp_path):
    """The heading of PNG bombs (test_messages_train_data.py), now said of a TIFF too."""
    from test_attackdata27_images import _tiff_bomb
    from trainer.data.dataset import YoloDataset
    from trainer.errors import DataError

    bomb = tmp_path / "000001.tif"
    _tiff_bomb(bomb)
    with pytest.raises(DataError) as refused:
        YoloDataset([f"{bomb} 1,1,20,20,0"], 64, 1, train=False)[0]
    shown("cannot read image … pixels, more than the", error_text(refused.value))


@renders("holds a pickled Python object (…), not only tensors; such objects are never loaded")
def test_weights_that_would_run_code(tmp_path):
    from test_attackdata27_pickles import _hostile

    path, marker = _hostile(tmp_path, "zip")
    _photo(tmp_path / "src" / "a.png")
    r = CliRunner().invoke(cli, ["predict", "--weights", str(path), "--source",
                                 str(tmp_path / "src"), "--out", str(tmp_path / "out")])
    assert r.exit_code == 1 and not marker.exists()
    shown("holds a pickled Python object (…), not only tensors; such objects are never loaded",
          error_line(r.stderr))


@renders("the annotation lines cannot hold (a space, then a comma:")
def test_an_image_name_with_a_comma_after_a_space(tmp_path):
    _voc(tmp_path, {"frame 1,2": [("dog", 1, 2, 20, 30)], "ok": [("dog", 1, 2, 20, 30)]})
    (tmp_path / "classes.txt").write_text("dog\n")
    r = _prepare(tmp_path)
    assert r.exit_code == 0
    shown("the annotation lines cannot hold (a space, then a comma:", r.stderr)


@renders("GiB any image the trainer decodes takes; is it an image?",
         "more than a VOC annotation ever is (… MiB); is it the right file?")
def test_files_larger_than_any_image_or_annotation(tmp_path):
    voc = _voc(tmp_path, {"a": [("dog", 1, 2, 20, 30)]})
    (tmp_path / "classes.txt").write_text("dog\n")
    with open(voc / "Annotations" / "a.xml", "r+b") as fh:
        fh.truncate(20 << 20)
    r = _prepare(tmp_path)
    assert r.exit_code == 1
    shown("more than a VOC annotation ever is (… MiB); is it the right file?", error_line(r.stderr))

    from trainer.data.dataset import YoloDataset
    from trainer.errors import DataError

    image = voc / "JPEGImages" / "a.jpg"
    with open(image, "r+b") as fh:
        fh.truncate(2 << 30)
    with pytest.raises(DataError) as refused:
        YoloDataset([f"{image} 1,1,20,20,0"], 64, 1, train=False)[0]
    shown("GiB any image the trainer decodes takes; is it an image?", error_text(refused.value))


@renders("cannot write … (…); give … a folder you can write",
         "the splits are written into the dataset; --mode 2 writes only the annotation lines")
def test_data_commands_where_nothing_can_be_written(tmp_path):
    from test_attackdata27_text import (
        test_prepare_voc_out_where_nothing_can_be_written_is_one_line as out_under_a_file,
        test_prepare_voc_splits_where_the_dataset_cannot_be_written_is_one_line as splits)

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    out_under_a_file(tmp_path / "a")
    (tmp_path / "a" / "classes.txt").write_text("dog\n")
    r = CliRunner().invoke(cli, ["prepare-voc", str(tmp_path / "a"), "--mode", "2", "--classes",
                                 str(tmp_path / "a" / "classes.txt"), "--out",
                                 str(tmp_path / "a" / "afile" / "x")])
    shown("cannot write … (…); give … a folder you can write", error_line(r.stderr))
    splits(tmp_path / "b")
    r = CliRunner().invoke(cli, ["prepare-voc", str(tmp_path / "b"), "--mode", "1", "--classes",
                                 str(tmp_path / "b" / "classes.txt")])
    shown("the splits are written into the dataset; --mode 2 writes only the annotation lines",
          error_line(r.stderr))


@renders("on disk (a zip bomb?); PyTorch writes its files uncompressed")
def test_weights_that_inflate_a_thousandfold(tmp_path):
    from test_attackdata27_pickles import test_a_weights_file_that_inflates_a_thousandfold_is_refused_before_loading as bomb

    bomb(tmp_path)
    r = CliRunner().invoke(cli, ["export-onnx", "--weights", str(tmp_path / "bomb.pth"), "--out",
                                 str(tmp_path / "m.onnx")])
    shown("on disk (a zip bomb?); PyTorch writes its files uncompressed", error_line(r.stderr))
