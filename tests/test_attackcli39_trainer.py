"""``trainer`` given hostile arguments (attackcli39), in-process as its other CLI tests run.

- An empty path (``trainer synth-data "$OUT"``, the variable unset) was the working folder:
  synth-data wrote a dataset there, exit 0; ``export-onnx --out ""`` said ``cannot write
  (: no such file or directory)`` and ``-c ""`` said ``config file not found:`` with no name.
  Each is a usage error now (exit 2) that names the argument.
- ``predict --source runs/imgs --out runs`` (the output folder above the images read) found
  ``no images in runs/imgs``, exit 1: images under ``--out`` were left out as an earlier
  run's output even when ``--out`` held ``--source`` rather than lay inside it.
"""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from trainer.cli import cli
from trainer.model import YoloV4Tiny


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "w2.pth"
    torch.save(YoloV4Tiny(num_classes=2).state_dict(), path)
    return path


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    here = tmp_path / "cwd"
    here.mkdir()
    (here / "mine.txt").write_text("the user's")
    monkeypatch.chdir(here)
    return here


def _image(path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8))


CONFIG = ("Error: the config file's path is empty (an unset variable?); give a YAML config, "
          "e.g. -c configs/voc.yaml\n")


@pytest.mark.parametrize("args, line", [
    (["synth-data", "", "--images", "1"],
     "Error: OUT is empty (an unset variable?); give the folder to write the dataset into\n"),
    (["export-onnx", "--weights", "{weights}", "--out", ""],
     "Error: --out is empty (an unset variable?); give the .onnx file to write\n"),
    (["predict", "--weights", "{weights}", "--source", "{cwd}/imgs", "--out", ""],
     "Error: --out is empty (an unset variable?); give the folder for the annotated images\n"),
    (["train", "-c", ""], CONFIG),
    (["status", "-c", ""], CONFIG),
    (["eval", "-c", "", "-w", "{weights}"], CONFIG),
    (["eval", "-c", "{cwd}/../empty.yaml", "-w", ""],
     "Error: --weights is empty (an unset variable?); give a weights file, or drive:path to "
     "pull one from Drive\n"),
])
def test_an_empty_path_is_a_usage_error_that_names_it(weights, cwd, args, line):
    _image(cwd / "imgs" / "a.jpg")
    (cwd.parent / "empty.yaml").write_text("")
    r = CliRunner().invoke(cli, [a.format(weights=weights, cwd=cwd) for a in args])
    assert (r.exit_code, r.stderr) == (2, line), r.output
    assert sorted(os.listdir(cwd)) == ["imgs", "mine.txt"]
    assert os.listdir(cwd / "imgs") == ["a.jpg"]


def test_predict_into_a_folder_above_the_images(weights, tmp_path):
    runs = tmp_path / "runs"
    _image(runs / "imgs" / "a.jpg")
    before = (runs / "imgs" / "a.jpg").read_bytes()
    r = CliRunner().invoke(cli, ["predict", "--weights", str(weights), "--source",
                                 str(runs / "imgs"), "--out", str(runs), "--input-size", "64"])
    assert r.exit_code == 0, r.output
    assert r.stdout == f"{runs / 'detections.json'}\n"
    assert sorted(os.listdir(runs)) == ["a.jpg", "detections.json", "imgs"]
    assert (runs / "imgs" / "a.jpg").read_bytes() == before


def test_a_run_folder_that_cannot_be_made_is_one_line(tmp_path):
    """``train.out_dir`` where no folder can be made (a read-only disk, a folder of another
    user's; here /proc, which takes no new folder even from root) ended in the traceback of
    ``os.makedirs`` from deep in ``fit``: one line now, naming the setting."""
    out_dir = "/proc/drivestage-attackcli39/logs"
    try:
        os.makedirs(out_dir)
    except OSError as exc:
        why = exc.strerror
    else:  # pragma: no cover - not Linux
        pytest.skip("a folder was made under /proc")
    config = tmp_path / "empty.yaml"
    config.write_text("")
    r = CliRunner().invoke(cli, ["train", "-c", str(config), "--set", f"train.out_dir={out_dir}"])
    assert (r.exit_code, r.stderr) == (2, (
        f"Error: train.out_dir {out_dir} cannot be made: {why} (/proc/drivestage-attackcli39); "
        "set train.out_dir to a folder you can write\n")), r.output


TOP = ("Error: drive.logs {given} is the top of My Drive: the run's files would land there "
       "loose, beside everything else in it, and its retention would prune checkpoints there; "
       "give a folder, e.g. drive:runs/exp1\n")


@pytest.mark.parametrize("yaml_text, overrides, given", [
    ("", ["--set", "drive.logs=drive:"], "drive:"),
    ('drive:\n  logs: "drive:/"\n', [], "drive:/"),
])
def test_the_top_of_my_drive_as_drive_logs_is_refused(tmp_path, yaml_text, overrides, given):
    """``drive.logs: "drive:"`` trained and put results.csv, loss.png, best.pt, epoch_*.pt...
    loose at the top of My Drive, without a word (``drivestage push`` warns of it), where the
    run's retention then pruned. And ``--set drive.logs=drive:`` was refused as ``expects str,
    got {'drive': None}`` (YAML reads ``drive:`` as a mapping)."""
    config = tmp_path / "c.yaml"
    config.write_text(yaml_text)
    r = CliRunner().invoke(cli, ["train", "-c", str(config), *overrides,
                                 "--set", f"train.out_dir={tmp_path / 'logs'}"])
    assert (r.exit_code, r.stderr) == (2, TOP.format(given=given)), r.output
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize("args", [
    ["prepare-voc", "{tmp}/VOCdevkit", "--mode", "2", "--out", "{tmp}/out", "--year", "{year}"],
    ["train", "-c", "{tmp}/empty.yaml", "--set", "data.year={year}"],
])
@pytest.mark.parametrize("year", ["2007/", "2007/../elsewhere", ".."])
def test_a_year_that_is_no_folder_name_is_refused(tmp_path, args, year):
    """``--year`` / ``data.year`` is the part after VOC of the dataset's folder name. One with
    a ``/`` made ``{out}/{year}_train.txt`` a path in another folder than ``--out`` (written
    there when the folders on its way exist), or said "give --out a folder you can write",
    to ``trainer train`` too, which has no --out."""
    voc = tmp_path / "VOCdevkit" / "VOC2007"
    (voc / "Annotations").mkdir(parents=True)
    (voc / "ImageSets" / "Main").mkdir(parents=True)
    (voc / "ImageSets" / "Main" / "train.txt").write_text("")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "empty.yaml").write_text("")
    key = "--year" if args[0] == "prepare-voc" else "data.year"
    r = CliRunner().invoke(cli, [a.format(tmp=tmp_path, year=year) for a in args])
    assert (r.exit_code, r.stderr) == (2, (
        f"Error: {key} {year!r} is not a VOC year: give what follows VOC in the dataset's "
        "folder name (2007 for VOC2007)\n")), r.output
    assert list((tmp_path / "elsewhere").iterdir()) == []
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value", ["abc", "nan", "-1", "1e300"])
def test_a_bad_lease_settle_is_one_line_before_any_claim(emulator, drive_env, local_state,
                                                        tmp_path, monkeypatch, value):
    """``TRAINER_LEASE_SETTLE`` (README: seconds a trainer waits after writing its lease
    claim) that is no number, NaN, negative or 1e300 ended in a traceback of ``float()`` or
    ``time.sleep`` after the claim was on Drive. One line now, before Drive is asked
    anything."""
    monkeypatch.setenv("TRAINER_LEASE_SETTLE", value)
    config = tmp_path / "c.yaml"
    config.write_text("")
    r = CliRunner().invoke(cli, ["train", "-c", str(config), "--resume", "none",
                                 "--set", f"train.out_dir={tmp_path / 'logs'}",
                                 "--set", "drive.logs=drive:runs/a"])
    assert (r.exit_code, r.stderr) == (2, (
        f"Error: TRAINER_LEASE_SETTLE={value!r} is not a number of seconds from 0 to 60 (2 "
        "by default; 0 against the emulator)\n")), r.output
    assert emulator.find("runs") is None
