"""attacktr29: ``train.log_period`` logs again (docs28); a negative one was taken silently (no
line, as 0), as if the user had asked for none. It is refused now, as ``train.save_minutes``
and ``train.keep_local`` are, naming the key and what 0 means."""
from __future__ import annotations

import re

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


def test_log_lines_during_an_epoch_are_lines_of_their_own_in_a_log_file(tiny_config, one_torch_thread):
    """``trainer train 2> log``: the progress bar is drawn without a newline; a line logged
    mid-epoch (``train.log_period``'s, and every other) was written right after it, so a log
    file read ``…| 1/2 [00:00<00:00, 3.66it/s, loss=…]INFO trainer.callbacks: epoch 1/1
    iteration 1 …``. Now each begins a line (after a carriage return: the bar is cleared
    first, and drawn again after it; read as text, as here, each is a line of its own)."""
    from test_docs28_config_keys import _train

    err = _train(tiny_config(**{"train.epochs": 1, "train.freeze_epochs": 0}),
                 "train.log_period=1")
    assert "INFO trainer.callbacks: epoch 1/1 iteration 2 (2 in the epoch)" in err
    glued = [m.start() for m in re.finditer(r"(INFO|DEBUG) trainer\.", err)
             if m.start() > 0 and err[m.start() - 1] not in "\r\n"]
    assert glued == [], [err[max(0, i - 80):i + 40] for i in glued]
