"""attack52: ``trainer train --resume "$CKPT"`` with the variable unset.

The help reads ``--resume auto|PATH|none``; an empty value was one of none's spellings
(``trainer.start.NO_RESUME``): the run meant to go on from a checkpoint started a new run
from scratch, exit 0 (into empty folders; where they held the run, the refusal named a
``--resume none`` the user never typed). Now a usage error, exit 2, before anything runs."""
from __future__ import annotations

from click.testing import CliRunner


def test_an_empty_resume_is_refused(tmp_path):
    """On main 8704ac72 a new run trained from scratch (tiny_config's), exit 0. (Refused
    before the config's data is looked at: a config of one key.)"""
    from trainer.cli import cli

    config = tmp_path / "c.yaml"
    config.write_text(f"train:\n  out_dir: {tmp_path / 'logs'}\n")
    res = CliRunner().invoke(cli, ["train", "-c", str(config), "--resume", ""])
    assert res.exit_code == 2, res.output
    assert res.stderr.splitlines()[-1] == ("Error: --resume is empty (an unset variable?); "
                                           "give auto, none or a checkpoint's path")
    assert not (tmp_path / "logs").exists()
