"""attack52: a web address that is no Drive link, given where a file is meant.

``model.weights`` or ``trainer eval -w`` set to ``https://example.com/w.pth`` said ``file not
found: https://example.com/w.pth; a file on Google Drive is written
drive:https://example.com/w.pth``: advice that names no path at all (followed, it fails
again). Now it says what a web address is not, and what to do."""
from __future__ import annotations

from click.testing import CliRunner


def test_eval_weights_as_a_web_address(tmp_path):
    """On main 8704ac72 the hint was ``drive:https://example.com/w.pth``."""
    from trainer.cli import cli

    config = tmp_path / "c.yaml"
    config.write_text("data:\n  classes: [a]\n")
    res = CliRunner().invoke(cli, ["eval", "-c", str(config), "-w", "https://example.com/w.pth"])
    assert res.exit_code == 2, res.output
    assert res.stderr.splitlines()[-1] == (
        "Error: --weights: file not found: https://example.com/w.pth; a web address is neither "
        "a file here nor a path on Google Drive: download it first and give the file, or give "
        "its drive: path")
