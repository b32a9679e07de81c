"""``trainer train --resume logs/`` (the run folder, for the checkpoint in it) said
``--resume logs/: no such file`` (attackcli40): it is there, a folder. It says so now and
which file to give, exit 2, before anything is staged or trained."""
from __future__ import annotations

import os

from click.testing import CliRunner

from trainer.cli import cli


def test_resume_from_a_folder_names_it(tiny_config, tmp_path):
    run = tmp_path / "logs"
    run.mkdir()
    result = CliRunner().invoke(cli, ["train", "-c", tiny_config(), "--resume", str(run)])
    assert (result.exit_code, result.output.splitlines()[-1]) == (2, (
        f"Error: --resume {run} is a folder; give a checkpoint in it (e.g. "
        f"{os.path.join(run, 'last.pt')}), or --resume auto for the newest in "
        "train.out_dir"))
    assert os.listdir(run) == []
