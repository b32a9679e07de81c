"""The troubleshooting page's messages of attacktrain45, made to happen."""
from __future__ import annotations

import torch
from click.testing import CliRunner

from _messages import renders, shown
from _tiny_run import tiny_run_config


@renders("is no checkpoint of this trainer (")
def test_another_programs_weights_as_last_pt(tmp_path):
    from trainer.cli import cli

    config = tiny_run_config(tmp_path, 1, logs=None)
    (tmp_path / "logs").mkdir()
    torch.save(torch.nn.Linear(2, 1).state_dict(), tmp_path / "logs" / "last.pt")
    res = CliRunner().invoke(cli, ["train", "-c", config])
    assert res.exit_code == 1
    shown("is no checkpoint of this trainer (", res.output.splitlines()[-1])
