"""docs/troubleshooting.md: the messages attackdata's fixes added, shown by ``trainer prepare-voc``
on a tiny VOCdevkit (see tests/_messages.py)."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from _messages import error_line, renders, shown
from test_attack_data3 import _phone_photo, _voc
from test_voc import devkit  # noqa: F401 (a fixture)


def _prepare(root) -> tuple[int, str]:
    from trainer.cli import cli

    (root / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main" / "val.txt").write_text("")
    result = CliRunner().invoke(cli, ["prepare-voc", str(root), "--mode", "2", "--classes",
                                      str(root / "classes.txt"), "--out", str(root)])
    return result.exit_code, result.stderr


@renders("annotation …: object … has <difficult>…</difficult>; expected 0 or 1")
def test_difficult_that_means_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("TRAINER_DEBUG", raising=False)
    voc = _voc(tmp_path, {"a": [("dog", 1, 2, 20, 30, "maybe")]})
    (tmp_path / "classes.txt").write_text("dog\n")
    code, stderr = _prepare(tmp_path)
    line = error_line(stderr)
    assert code == 1
    assert line == (f"Error: annotation {voc / 'Annotations' / 'a.xml'}: object 'dog' has "
                    "<difficult>maybe</difficult>; expected 0 or 1")
    shown("annotation …: object … has <difficult>…</difficult>; expected 0 or 1", line)


@renders("with an empty or inverted box (xmax <= xmin or ymax <= ymin)")
def test_an_inverted_box(tmp_path):
    voc = _voc(tmp_path, {"a": [("dog", 10, 10, 40, 40), ("dog", 50, 10, 20, 40)]})
    (tmp_path / "classes.txt").write_text("dog\n")
    code, stderr = _prepare(tmp_path)
    assert code == 0
    assert (f"Warning: 1 object with an empty or inverted box (xmax <= xmin or ymax <= ymin) was left out "
            f"(e.g. {voc / 'Annotations' / 'a.xml'}); fix the <bndbox>") in stderr.splitlines()
    shown("with an empty or inverted box (xmax <= xmin or ymax <= ymin)", stderr)


@renders("turned by … EXIF orientation but … annotated unturned")
def test_a_phone_photo_annotated_with_labelimg(tmp_path):
    voc = _voc(tmp_path, {"a": [("dog", 1, 2, 20, 30)]}, split=b"a\nphoto\n")
    _phone_photo(voc, "photo", (64, 48))
    (tmp_path / "classes.txt").write_text("dog\n")
    code, stderr = _prepare(tmp_path)
    assert code == 0
    assert f"(e.g. {voc / 'JPEGImages' / 'photo.jpg'})" in stderr
    assert "Warning: 1 image is turned by its EXIF orientation but was annotated unturned" in stderr
    shown("turned by … EXIF orientation but … annotated unturned", stderr)


@renders("more than once in the … split; each is written once")
def test_an_id_listed_twice_in_a_split(tmp_path):
    _voc(tmp_path, {"a": [("dog", 1, 2, 20, 30)]}, split=b"a\na\n")
    (tmp_path / "classes.txt").write_text("dog\n")
    code, stderr = _prepare(tmp_path)
    assert code == 0
    assert "Warning: 1 id appears more than once in the train split; each is written once" in \
        stderr.splitlines()
    shown("more than once in the … split; each is written once", stderr)


@renders("holds the dataset's own splits (…); new random ones would replace them")
@pytest.mark.parametrize("mode", [0, 1])
def test_prepare_voc_never_replaces_the_datasets_own_splits_unasked(devkit, tmp_path, mode):
    """VOC2007 ships its splits, its test set among them: new random ones written over them
    change what every later evaluation measures (and a pull finds the dataset staged all the
    same: same sizes). Refused, naming the way to keep them and the way to replace them."""
    from click.testing import CliRunner

    from trainer.cli import cli

    root, classes = devkit
    sets = root / "VOC2007/ImageSets/Main"
    sets.mkdir(parents=True, exist_ok=True)
    own = {n: f"{n}-000001\n" for n in ("trainval", "train", "val", "test")}
    for name, text in own.items():
        (sets / f"{name}.txt").write_text(text)
    result = CliRunner().invoke(cli, ["prepare-voc", str(root), "--mode", str(mode), "--classes",
                                      str(classes), "--out", str(tmp_path / "lines")])
    assert result.exit_code == 1, result.output
    line = result.stderr.strip().splitlines()[-1]
    assert line == (f"Error: {sets} holds the dataset's own splits (test.txt, train.txt, "
                    "trainval.txt, val.txt); new random ones would replace them. Use --mode 2 "
                    "to write the annotation lines from them, or --force to replace them"), line
    shown("holds the dataset's own splits (…); new random ones would replace them", line)
    assert {n: (sets / f"{n}.txt").read_text() for n in own} == own
    assert not (tmp_path / "lines").exists()
    # Asked for: replaced. Run again with the same seed: the same splits, no question.
    result = CliRunner().invoke(cli, ["prepare-voc", str(root), "--mode", str(mode), "--classes",
                                      str(classes), "--out", str(tmp_path / "lines"), "--force"])
    assert result.exit_code == 0, result.output
    written = {n: (sets / f"{n}.txt").read_text() for n in own}
    assert written != own
    result = CliRunner().invoke(cli, ["prepare-voc", str(root), "--mode", str(mode), "--classes",
                                      str(classes), "--out", str(tmp_path / "lines")])
    assert result.exit_code == 0, result.output
    assert {n: (sets / f"{n}.txt").read_text() for n in own} == written
