"""Dataset text files from anywhere (attackdata27): encodings, XML declarations and sizes
that were tracebacks, and ``synth-data`` over a real dataset. Tiny files, no training."""
from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest
from click.testing import CliRunner

from _messages import error_line
from test_attack_data3 import _lines, _voc
from trainer.cli import cli


def _prepare(root, *more):
    (root / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main" / "val.txt").write_text("")
    return CliRunner().invoke(cli, ["prepare-voc", str(root), "--mode", "2", "--classes",
                                    str(root / "classes.txt"), "--out", str(root), *more])


# --------------------------------------------------------------------------- encodings

def test_a_classes_file_that_is_not_utf8_is_one_line(tmp_path):
    """A classes file saved as Windows-1252 ('café'): UnicodeDecodeError traceback."""
    _voc(tmp_path, {"a": [("dog", 1, 2, 20, 30)]})
    (tmp_path / "classes.txt").write_bytes("dog\ncafé\n".encode("cp1252"))
    r = _prepare(tmp_path)
    assert r.exit_code == 1, r.output
    assert error_line(r.stderr) == (f"Error: {tmp_path / 'classes.txt'} is not UTF-8 text (line 2 "
                                    "holds the byte 0xE9); save it as UTF-8")


def test_a_split_file_that_is_not_utf8_is_one_line(tmp_path):
    voc = _voc(tmp_path, {"a": [("dog", 1, 2, 20, 30)]}, split="a\nb\u00e9\n".encode("cp1252"))
    (tmp_path / "classes.txt").write_text("dog\n")
    r = _prepare(tmp_path)
    assert r.exit_code == 1, r.output
    assert error_line(r.stderr) == (f"Error: {voc / 'ImageSets' / 'Main' / 'train.txt'} is not "
                                    "UTF-8 text (line 2 holds the byte 0xE9); save it as UTF-8")


def test_annotation_lines_that_are_not_utf8_are_one_line(tmp_path):
    """2007_train.txt edited on a Chinese Windows (GBK image paths)."""
    from trainer.data.voc import read_annotation_file
    from trainer.errors import DataError

    lines = tmp_path / "2007_train.txt"
    lines.write_bytes("/data/a.jpg 1,1,5,5,0\n/data/\u6570.jpg 1,1,5,5,0\n".encode("gbk"))
    with pytest.raises(DataError) as refused:
        read_annotation_file(lines)
    assert str(refused.value) == (f"{lines} is not UTF-8 text (line 2 holds the byte 0xCA); save "
                                  "it as UTF-8")


def test_a_config_that_is_not_utf8_is_a_config_error(tmp_path, synth_voc):
    """`trainer eval -c` a YAML saved as Windows-1252: UnicodeDecodeError traceback."""
    config = tmp_path / "c.yaml"
    config.write_bytes(f"data:\n  classes: {synth_voc.classes_file}\n# caf\u00e9\n".encode("cp1252"))
    r = CliRunner().invoke(cli, ["eval", "-c", str(config), "-w", str(tmp_path / "w.pth")])
    assert r.exit_code == 2, r.output
    assert error_line(r.stderr) == (f"Error: config {config} is not UTF-8 text (line 3 holds the "
                                    "byte 0xE9); save it as UTF-8")


# --------------------------------------------------------------------------- XML

def test_an_annotation_declaring_gbk_is_read(tmp_path):
    """`<?xml version="1.0" encoding="gbk"?>` (Chinese labelling tools): expat reads no
    multi-byte encoding but UTF-8/16, and the ValueError ended prepare-voc in a traceback."""
    voc = _voc(tmp_path, {"a": [("dog", 1, 2, 20, 30)]})
    (voc / "Annotations" / "a.xml").write_bytes(
        '<?xml version="1.0" encoding="gbk"?>\n<annotation><object><name>\u732b</name>'
        '<bndbox><xmin>1</xmin><ymin>2</ymin><xmax>20</xmax><ymax>30</ymax></bndbox>'
        '</object></annotation>'.encode("gbk"))
    (tmp_path / "classes.txt").write_text("\u732b\n", encoding="utf-8")
    r = _prepare(tmp_path)
    assert r.exit_code == 0, r.output
    assert _lines(tmp_path) == [f"{voc / 'JPEGImages' / 'a.jpg'} 1,2,20,30,0"]


def test_an_annotation_not_in_the_encoding_it_declares_is_one_line(tmp_path):
    voc = _voc(tmp_path, {"a": [("dog", 1, 2, 20, 30)]})
    xml = voc / "Annotations" / "a.xml"
    xml.write_bytes(b'<?xml version="1.0" encoding="shift_jis"?><annotation>\x81\xff</annotation>')
    (tmp_path / "classes.txt").write_text("dog\n")
    r = _prepare(tmp_path)
    assert r.exit_code == 1, r.output
    assert error_line(r.stderr) == (f"Error: annotation {xml} declares encoding 'shift_jis' but "
                                    "is not in it; save it as UTF-8")


@pytest.mark.parametrize("value", ["inf", "1e400", "-inf"])
def test_a_size_that_is_not_finite_is_ignored_like_a_missing_one(tmp_path, value):
    """`<width>inf</width>`: int(float('inf')) is an OverflowError, not the ValueError that
    was caught, and prepare-voc ended in a traceback (a <size> that says nothing is not used)."""
    voc = _voc(tmp_path, {"a": [("dog", 1, 2, 20, 30)]})
    xml = voc / "Annotations" / "a.xml"
    xml.write_text(xml.read_text().replace("<width>64</width>", f"<width>{value}</width>"))
    (tmp_path / "classes.txt").write_text("dog\n")
    r = _prepare(tmp_path)
    assert r.exit_code == 0, r.output
    assert _lines(tmp_path) == [f"{voc / 'JPEGImages' / 'a.jpg'} 1,2,20,30,0"]


# --------------------------------------------------------------------------- synth-data

def _tree(folder) -> dict[str, str]:
    return {os.path.relpath(os.path.join(d, f), folder): hashlib.md5(open(os.path.join(d, f), "rb").read()).hexdigest()
            for d, _, files in os.walk(folder) for f in files}


def test_synth_data_never_writes_over_a_real_dataset(tmp_path):
    """`trainer synth-data data` with the user's VOC2007 in data/VOCdevkit: its 000001.jpg...
    (VOC2007's own ids) and its splits were replaced by synthetic ones, exit 0."""
    voc = _voc(tmp_path, {"000001": [("dog", 1, 2, 20, 30)], "000002": [("cat", 3, 4, 30, 40)]})
    before = _tree(tmp_path / "VOCdevkit")
    r = CliRunner().invoke(cli, ["synth-data", str(tmp_path), "--images", "3", "--classes", "2",
                                 "--min-size", "32", "--max-size", "48"])
    assert r.exit_code == 1, r.output
    assert error_line(r.stderr) == (
        f"Error: {voc} holds a dataset synth-data did not write (e.g. "
        f"{voc / 'Annotations' / '000001.xml'}), which the synthetic one would be written over; "
        "give another OUT")
    assert _tree(tmp_path / "VOCdevkit") == before
    assert not (tmp_path / "classes.txt").exists()


def test_synth_data_again_over_its_own_dataset_is_fine(tmp_path):
    args = ["synth-data", str(tmp_path), "--images", "3", "--classes", "2", "--min-size", "32",
            "--max-size", "48"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    first = _tree(tmp_path)
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    assert _tree(tmp_path) == first


# --------------------------------------------------------------------------- writing

def test_prepare_voc_never_writes_through_a_link_the_dataset_holds(tmp_path):
    """The split and annotation files were written through a fixed temporary name
    (`train.txt.tmp`), opened as it was: a dataset from anywhere holding
    `ImageSets/Main/train.txt.tmp` as a link to `~/.bashrc` had prepare-voc write its ids
    over that file."""
    voc = _voc(tmp_path / "ds", {"a": [("dog", 1, 2, 20, 30)], "b": [("dog", 1, 2, 20, 30)]})
    (voc / "ImageSets" / "Main" / "train.txt").unlink()
    victims = {}
    for name in ("trainval", "train", "val", "test"):
        victims[name] = tmp_path / f"victim-{name}"
        victims[name].write_text("precious\n")
        (voc / "ImageSets" / "Main" / f"{name}.txt.tmp").symlink_to(victims[name])
    out = tmp_path / "lines"
    out.mkdir()
    victims["lines"] = tmp_path / "victim-lines"
    victims["lines"].write_text("precious\n")
    (out / "2007_train.txt.tmp").symlink_to(victims["lines"])
    (tmp_path / "classes.txt").write_text("dog\n")
    r = CliRunner().invoke(cli, ["prepare-voc", str(tmp_path / "ds"), "--classes",
                                 str(tmp_path / "classes.txt"), "--out", str(out),
                                 "--trainval-percent", "1", "--train-percent", "0.5"])
    assert r.exit_code == 0, r.output
    assert {n: v.read_text() for n, v in victims.items()} == {n: "precious\n" for n in victims}
    assert (voc / "ImageSets" / "Main" / "trainval.txt").read_text() == "a\nb\n"
    assert not (voc / "ImageSets" / "Main" / "trainval.txt").is_symlink()
    assert len(_lines(out)) == 1


# --------------------------------------------------------------------------- file names

def test_an_image_name_with_two_spaces_in_a_row_is_found_by_training(tmp_path):
    """The reader split lines on whitespace and joined the path back with single spaces:
    `IMG  001.jpg` (two spaces, as some cameras and copies name files) became `IMG 001.jpg`,
    which does not exist, and training stopped at it."""
    from trainer.data.dataset import YoloDataset
    from trainer.data.voc import read_annotation_file

    voc = _voc(tmp_path, {"IMG  001": [("dog", 1, 2, 20, 30)], "b\tc": [("dog", 3, 4, 20, 30)]})
    (tmp_path / "classes.txt").write_text("dog\n")
    r = _prepare(tmp_path)
    assert r.exit_code == 0, r.output
    lines = read_annotation_file(tmp_path / "2007_train.txt")
    ds = YoloDataset(lines, 64, 1, train=False)
    assert sorted(ds.paths) == [str(voc / "JPEGImages" / "IMG  001.jpg"), str(voc / "JPEGImages" / "b\tc.jpg")]
    assert [len(ds[i][1]) for i in range(len(ds))] == [1, 1]


def test_an_image_name_the_line_format_cannot_hold_is_left_out_with_a_warning(tmp_path):
    """`frame 1,2.jpg` (a space, then a comma): its line was written, and the reader took
    `1,2.jpg` for a bad box, so no training could start: `2007_train.txt:1: bad box ...`."""
    from trainer.data.voc import read_annotation_file

    voc = _voc(tmp_path, {"frame 1,2": [("dog", 1, 2, 20, 30)], "ok": [("dog", 1, 2, 20, 30)]})
    (tmp_path / "classes.txt").write_text("dog\n")
    r = _prepare(tmp_path)
    assert r.exit_code == 0, r.output
    assert (f"Warning: 1 image has a name the annotation lines cannot hold (a space, then a comma:"
            f" {voc / 'JPEGImages' / 'frame 1,2.jpg'}); its line was not written: rename it "
            "(no comma after a space) and run again") in r.stderr.splitlines()
    assert read_annotation_file(tmp_path / "2007_train.txt") == [f"{voc / 'JPEGImages' / 'ok.jpg'} 1,2,20,30,0"]


# --------------------------------------------------------------------------- where it cannot write

def test_prepare_voc_out_where_nothing_can_be_written_is_one_line(tmp_path):
    """`--out` under a file (a read-only or full disk alike): a NotADirectoryError traceback."""
    _voc(tmp_path, {"a": [("dog", 1, 2, 20, 30)]})
    (tmp_path / "classes.txt").write_text("dog\n")
    (tmp_path / "afile").write_text("x")
    r = CliRunner().invoke(cli, ["prepare-voc", str(tmp_path), "--mode", "2", "--classes",
                                 str(tmp_path / "classes.txt"), "--out", str(tmp_path / "afile" / "lines")])
    assert r.exit_code == 1, r.output
    assert error_line(r.stderr) == (f"Error: cannot write {tmp_path / 'afile' / 'lines'} (not a "
                                    "folder); give --out a folder you can write")


def test_prepare_voc_splits_where_the_dataset_cannot_be_written_is_one_line(tmp_path):
    voc = _voc(tmp_path, {"a": [("dog", 1, 2, 20, 30)]})
    main = voc / "ImageSets" / "Main"
    for f in main.iterdir():
        f.unlink()
    main.rmdir()
    main.write_text("not a folder")
    (tmp_path / "classes.txt").write_text("dog\n")
    r = CliRunner().invoke(cli, ["prepare-voc", str(tmp_path), "--mode", "1", "--classes",
                                 str(tmp_path / "classes.txt")])
    assert r.exit_code == 1, r.output
    assert error_line(r.stderr) == (
        f"Error: cannot write {main} (not a folder); the splits are written into the dataset; "
        "--mode 2 writes only the annotation lines (under --out), from the splits it has")


def test_synth_data_where_nothing_can_be_written_is_one_line(tmp_path):
    (tmp_path / "afile").write_text("x")
    r = CliRunner().invoke(cli, ["synth-data", str(tmp_path / "afile" / "synth"), "--images", "2"])
    assert r.exit_code == 1, r.output
    assert error_line(r.stderr) == (
        f"Error: cannot write {tmp_path / 'afile' / 'synth' / 'VOCdevkit' / 'VOC2007' / 'Annotations'}"
        " (not a folder); give OUT a folder you can write")


def test_a_fifo_as_the_classes_file_is_refused_not_waited_on(tmp_path):
    from test_attackdata27_images import _in_thread, _unblock
    from trainer.data.voc import read_classes
    from trainer.errors import DataError

    fifo = tmp_path / "classes.txt"
    os.mkfifo(fifo)
    try:
        finished, exc = _in_thread(lambda: read_classes(fifo))
    finally:
        _unblock(fifo)
    assert finished, "read_classes waited on the FIFO"
    assert isinstance(exc, DataError) and str(exc) == (
        f"cannot read text file {fifo}: not a regular file (a FIFO, socket or device); replace "
        "it with a text file")


def test_prepare_voc_output_never_carries_a_line_or_escape_from_the_dataset(tmp_path):
    """An XML `<name>` is anybody's text: a newline in it (XML allows one) printed a line of
    its own choosing (`Error: …`) in prepare-voc's warnings, and a C1 control (U+009B, CSI in
    many terminals) reached the terminal raw."""
    _voc(tmp_path, {"a": [("dog", 1, 2, 20, 30), ("x\nError: forged", 1, 2, 20, 30),
                          ("y\u009b2J", 1, 2, 20, 30)]})
    (tmp_path / "classes.txt").write_text("dog\n")
    r = _prepare(tmp_path)
    assert r.exit_code == 0, r.output
    assert not any(line.startswith("Error") for line in r.stderr.splitlines()), r.stderr
    assert "\u009b" not in r.stderr
    assert ("Warning: objects of classes not in the classes list were left out: x\\x0aError: "
            "forged (1), y\\x9b2J (1)") in r.stderr.splitlines()


# --------------------------------------------------------------------------- shared references

def _yaml_bomb(levels: int = 6) -> str:
    """A list whose YAML aliases make 10**levels leaves out of a few hundred bytes."""
    items = ["&a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    items += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels + 1)]
    return "[" + ", ".join(items) + "]"


@pytest.mark.parametrize("key", ["train.epochs", "data.classes", "model.anchors"])
def test_a_config_of_a_few_hundred_bytes_never_hangs_the_command(tmp_path, key, synth_voc):
    """YAML aliases share one list many times over: 522 bytes made a value of 10**9 leaves,
    and the message naming a bad value (`got [...]`) wrote all of them out: `trainer eval
    -c` hung (more than 30 s here, gigabytes). 10**7 leaves here: a 70 MB error line before,
    which the length check catches without taking the machine's memory."""
    from test_attackdata27_images import _in_thread

    section, name = key.split(".")
    config = tmp_path / "c.yaml"
    config.write_text(f"{section}:\n  {name}: {_yaml_bomb()}\n")
    box: list = []
    finished, exc = _in_thread(lambda: box.append(CliRunner().invoke(
        cli, ["eval", "-c", str(config), "-w", str(tmp_path / "w.pth")])))
    assert finished, "the command hung on the config"
    assert exc is None, exc
    r = box[0]
    assert r.exit_code == 2, r.output
    line = error_line(r.stderr)
    assert line.startswith(f"Error: config key '{key}'") or line.startswith(f"Error: {key}"), line
    assert len(line) < 400, line


# --------------------------------------------------------------------------- evaluation's truth

def test_evaluation_from_the_xml_scores_the_objects_training_learns(tmp_path):
    """`trainer eval` reads the ground truth from the XML (difficult flags): an inverted or
    empty box there, which prepare-voc leaves out of the lines (training never sees it),
    counted as an object never found, and lowered the mAP of a perfect model."""
    from trainer.data.dataset import EvalDataset
    from trainer.metrics import voc_map

    voc = _voc(tmp_path, {"a": [("dog", 10, 10, 40, 40), ("dog", 50, 10, 20, 40), ("dog", 5, 5, 5, 30)]})
    (tmp_path / "classes.txt").write_text("dog\n")
    assert _prepare(tmp_path).exit_code == 0
    lines = _lines(tmp_path)
    assert lines == [f"{voc / 'JPEGImages' / 'a.jpg'} 10,10,40,40,0"]
    truth = EvalDataset(lines, 64, classes=["dog"]).ground_truth()
    np.testing.assert_array_equal(truth[0][0], [[10, 10, 40, 40]])
    perfect = {0: np.array([[10, 10, 40, 40, 0.9, 0]], dtype=np.float32)}
    assert voc_map(perfect, truth, 1, iou_thresh=0.5)[0] == pytest.approx(1.0)


def test_a_box_coordinate_beyond_any_image_is_a_bad_box(tmp_path):
    """`<xmax>1e39</xmax>` is finite, so it passed; as float32 (the lines' reader, the
    evaluation's truth) it is inf, and the truth's IoU with it NaN: never matched."""
    from trainer.data.devkit import parse_voc_xml
    from trainer.errors import DataError

    voc = _voc(tmp_path, {"a": [("dog", 1, 2, "1e39", 30)]})
    xml = voc / "Annotations" / "a.xml"
    with pytest.raises(DataError) as refused:
        parse_voc_xml(xml)
    assert str(refused.value) == f"annotation {xml}: object 'dog' has a bad <bndbox>"
