"""The run folder lock's message (docs/troubleshooting.md), made to happen by the real code."""
from __future__ import annotations

from click.testing import CliRunner

from _messages import renders
from test_run_lock import held  # noqa: F401 (a fixture)
from trainer.cli import cli


@renders("is in use by another training run")
def test_the_busy_folder_message(held, tiny_config, tmp_path):
    """As the CLI prints it."""
    from _messages import shown

    r = CliRunner().invoke(cli, ["train", "-c", tiny_config(**{"train.epochs": 1})])
    shown("is in use by another training run", r.output.strip().splitlines()[-1])
