"""attack52: ``trainer train --set drive.logs="$LOGS"`` with the variable unset.

``--set key=`` with nothing after ``=`` was read as YAML's null: ``drive.logs=`` turned the
mirror off (the whole run trained with its checkpoints on this machine only: a disconnect
lost it all, though README's recipe is that Drive holds the state), ``model.weights=`` trained
from scratch, ``data.drive_zip=`` pulled nothing, all exit 0. config.md's way to say none is
``--set drive.logs=null``; an empty value is now refused, exit 2, before anything runs."""
from __future__ import annotations

import pytest
from click.testing import CliRunner


@pytest.mark.parametrize("key", ["drive.logs", "model.weights", "data.drive_zip"])
def test_an_empty_override_is_refused(key):
    """On main 8704ac72 ``load_config`` set the key to None."""
    from trainer.config import load_config
    from trainer.errors import ConfigError

    with pytest.raises(ConfigError) as raised:
        load_config(None, [f"{key}="])
    assert str(raised.value) == (f"--set {key}= has no value (an unset variable?); give one, "
                                 f"or write {key}=null for none")
    assert load_config(None, [f"{key}=null"]) is not None   # (none, said so)


def test_trainer_train_stops_before_training(tmp_path):
    """On main 8704ac72 the run trained (tiny_config's), its checkpoints in train.out_dir
    only, exit 0. (Refused before the config's data is looked at: a config of one key.)"""
    from trainer.cli import cli

    config = tmp_path / "c.yaml"
    config.write_text(f"train:\n  out_dir: {tmp_path / 'logs'}\n")
    res = CliRunner().invoke(cli, ["train", "-c", str(config), "--set", "drive.logs="])
    assert res.exit_code == 2, res.output
    assert res.stderr.splitlines()[-1] == ("Error: --set drive.logs= has no value (an unset "
                                           "variable?); give one, or write drive.logs=null for "
                                           "none")
    assert not (tmp_path / "logs").exists()
