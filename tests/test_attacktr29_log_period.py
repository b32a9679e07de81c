"""attacktr29: ``train.log_period`` logs again (docs28); a negative one was taken silently (no
line, as 0), as if the user had asked for none. It is refused now, as ``train.save_minutes``
and ``train.keep_local`` are, naming the key and what 0 means."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from trainer.cli import cli
from trainer.config import load_config
from trainer.errors import ConfigError


def test_a_negative_log_period_is_refused_naming_the_key():
    with pytest.raises(ConfigError) as err:
        load_config(None, ["train.log_period=-5"])
    assert str(err.value) == "train.log_period must be >= 0 (0 = only the progress bar), got -5"


def test_the_cli_refuses_it_with_exit_2(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochs: 1\n  freeze_epochs: 0\n")
    res = CliRunner().invoke(cli, ["train", "--config", str(path), "--set", "train.log_period=-1"])
    assert res.exit_code == 2, res.output
    assert "Error: train.log_period must be >= 0 (0 = only the progress bar), got -1" \
        in res.output


@pytest.mark.parametrize("value", ["0", "1", "1000000000000"])
def test_0_1_and_a_huge_one_are_taken(value):
    assert load_config(None, [f"train.log_period={value}"]).train.log_period == int(value)
