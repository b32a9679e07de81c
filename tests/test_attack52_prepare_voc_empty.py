"""attack52: ``trainer prepare-voc "$ROOT"`` (or ``--out``/``--classes``) with the variable
unset.

click made each a ``Path("")``, which is ``.``: ``prepare-voc "" --force`` run from inside a
VOCdevkit replaced the dataset's own splits in ImageSets/Main with new random ones, exit 0;
``--classes ""`` said ``cannot read .: Is a directory``, exit 1. Every other command refuses
an empty path (attackcli39); now these do too, exit 2, before anything is read or written."""
from __future__ import annotations

import pytest
from click.testing import CliRunner


@pytest.mark.parametrize("args, line", [
    (["", "--force", "--mode", "1", "--seed", "5"],
     "Error: ROOT is empty (an unset variable?); give the VOCdevkit folder (or the folder "
     "holding it)"),
    ([".", "--mode", "2", "--out", ""],
     "Error: --out is empty (an unset variable?); give the folder for 2007_train.txt and "
     "2007_val.txt"),
    ([".", "--mode", "2", "--classes", ""],
     "Error: --classes is empty (an unset variable?); give the class names file, or leave "
     "--classes out for the 20 VOC classes"),
])
def test_an_empty_path_is_refused(tmp_path, monkeypatch, args, line):
    """On main 8704ac72: the splits replaced, exit 0; ``--out ""`` wrote the lines into the
    working folder; ``--classes ""``: exit 1."""
    from trainer.cli import cli

    runner = CliRunner()
    made = runner.invoke(cli, ["synth-data", str(tmp_path / "s"), "--images", "6",
                               "--classes", "2", "--min-size", "16", "--max-size", "32"])
    assert made.exit_code == 0, made.output
    devkit = tmp_path / "s" / "VOCdevkit"
    splits = devkit / "VOC2007" / "ImageSets" / "Main"
    before = {p.name: p.read_text() for p in splits.iterdir()}
    monkeypatch.chdir(devkit)
    res = runner.invoke(cli, ["prepare-voc", *args])
    assert (res.exit_code, res.stdout) == (2, ""), res.output
    assert res.stderr.splitlines()[-1] == line
    assert {p.name: p.read_text() for p in splits.iterdir()} == before
    assert sorted(p.name for p in devkit.iterdir()) == ["VOC2007"]
