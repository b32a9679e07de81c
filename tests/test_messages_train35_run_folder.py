"""attacktrain35: ``train.out_dir`` that holds the dataset (``data.root``, or ``data.voc_root``),
with ``drive.logs`` set. The run folder is mirrored to drive.logs whole: the first push of
``--set train.out_dir=data`` (or ``train.out_dir: .`` over ``data.root: ./data``) uploaded
the whole VOCdevkit (its images, the archive kept beside it: gigabytes of Drive's daily
upload cap and of the account's storage) beside the checkpoints, exit 0. Now the run is
refused in one line naming both keys, exit 2, before anything is staged or sent."""
from __future__ import annotations

import pytest
from _messages import renders, shown
from click.testing import CliRunner

from trainer.cli import cli

HEADING = ("(the dataset): the run folder is mirrored to drive.logs whole, and the dataset would "
           "be uploaded with the checkpoints")


@renders(HEADING)
@pytest.mark.parametrize("where", ["same", "above"])
def test_a_run_folder_that_holds_the_dataset_is_refused_with_drive_logs(drive_env, tiny_config, tmp_path,
                                                                        where):
    data = tmp_path / "data"
    out = data if where == "same" else tmp_path
    path = tiny_config(**{"train.out_dir": str(out), "drive.logs": "drive:runs/exp"})
    r = CliRunner().invoke(cli, ["train", "-c", path])
    assert r.exit_code == 2, (r.output, r.exception)
    held = "is data.root" if where == "same" else f"holds data.root {data}"
    assert r.stderr.strip().splitlines()[-1] == (
        f"Error: train.out_dir {out} {held} (the dataset): the run folder is mirrored to "
        f"drive.logs whole, and the dataset would be uploaded with the checkpoints; give "
        f"train.out_dir a folder of its own (e.g. --set train.out_dir={tmp_path / 'logs'})")
    shown(HEADING, r.stderr)
    assert not data.exists()


def test_voc_root_in_the_run_folder_is_refused_too(drive_env, tiny_config, tmp_path):
    path = tiny_config(**{"train.out_dir": str(tmp_path / "run"),
                          "data.voc_root": str(tmp_path / "run" / "VOCdevkit"),
                          "drive.logs": "drive:runs/exp"})
    r = CliRunner().invoke(cli, ["train", "-c", path])
    assert r.exit_code == 2, (r.output, r.exception)
    assert r.stderr.strip().splitlines()[-1] == (
        f"Error: train.out_dir {tmp_path / 'run'} holds data.voc_root "
        f"{tmp_path / 'run' / 'VOCdevkit'} (the dataset): the run folder is mirrored to "
        f"drive.logs whole, and the dataset would be uploaded with the checkpoints; give "
        f"train.out_dir a folder of its own (e.g. --set train.out_dir={tmp_path / 'run' / 'logs'})")


def test_without_drive_logs_or_beside_the_dataset_it_trains(tiny_config, tmp_path):
    # Without drive.logs nothing is uploaded; a run folder inside data.root sends itself alone.
    for settings in ({"train.out_dir": str(tmp_path / "data")},
                     {"train.out_dir": str(tmp_path / "data" / "logs"), "drive.logs": None}):
        path = tiny_config(**{**settings, "train.epochs": 1, "train.freeze_epochs": 0})
        r = CliRunner().invoke(cli, ["train", "-c", path])
        assert r.exit_code == 0, (r.output, r.exception)


MIRRORED = ("is inside train.out_dir …: the run folder would be mirrored into itself, one level "
            "deeper at every push")


@renders(MIRRORED)
def test_drive_logs_inside_the_run_folder_is_refused(tiny_config, tmp_path):
    """A local drive.logs (a NAS, a second disk) inside train.out_dir: every push copied the
    run folder into itself, the copy of the copy one level deeper each time (8 levels and
    172 MB after 6 epochs of a 4.6 MB model; a real run's pushes fill the disk)."""
    out = tmp_path / "logs"
    path = tiny_config(**{"drive.logs": str(out / "mirror")})
    r = CliRunner().invoke(cli, ["train", "-c", path])
    assert r.exit_code == 2, (r.output, r.exception)
    line = r.stderr.strip().splitlines()[-1]
    assert line == (
        f"Error: drive.logs {out / 'mirror'} is inside train.out_dir {out}: the run folder would "
        f"be mirrored into itself, one level deeper at every push (its files copied again each "
        f"time, until the disk is full); give drive.logs a folder outside train.out_dir")
    shown(MIRRORED, line)
    assert not out.exists()


@pytest.mark.parametrize("where", ["same", "below"])
def test_drive_logs_that_is_or_holds_the_run_folder_is_refused(tiny_config, tmp_path, where):
    """drive.logs the run folder itself: "every upload verified" of a copy that is the file
    itself, and drive.keep_last pruned the run folder's epoch files; drive.logs above it: the
    mirror's copies land beside the run folder, in the same tree."""
    out = tmp_path / "logs"
    logs = out if where == "same" else tmp_path
    path = tiny_config(**{"drive.logs": str(logs)})
    r = CliRunner().invoke(cli, ["train", "-c", path])
    assert r.exit_code == 2, (r.output, r.exception)
    what = "is train.out_dir" if where == "same" else f"holds train.out_dir {out}"
    assert r.stderr.strip().splitlines()[-1] == (
        f"Error: drive.logs {logs} {what}: the mirror would be no second copy of the run; give "
        f"drive.logs a folder of its own, outside train.out_dir (or a Drive folder, "
        f"drive:…)")
    assert not out.exists()
