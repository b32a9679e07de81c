"""ux34: the same `trainer train` cell run again after the run finished (README: "run the
same cells again") printed `final mAP@0.5 = … (val set, ? images)`: a question mark where
the number of images was not recorded."""
from __future__ import annotations

import shutil

from click.testing import CliRunner

from _once import config_like, shared_run
from _one_epoch import ONE   # (test_resume.py's run: the same shared run, trained once)


def test_a_finished_run_started_again_prints_no_question_mark(
        synth_voc, tmp_path_factory, tmp_path):
    from trainer.cli import cli

    made, _ = shared_run(synth_voc, tmp_path_factory, "tiny-one-epoch", ONE)
    shutil.copytree(made / "logs", tmp_path / "logs")
    path = config_like(made, tmp_path / "logs")
    result = CliRunner().invoke(cli, ["train", "-c", path])
    assert result.exit_code == 0, (result.output, result.exception)
    final = [line for line in result.stdout.splitlines() if line.startswith("final mAP@0.5")]
    assert len(final) == 1 and final[0].endswith("(val set)"), result.stdout
    assert "?" not in result.stdout
