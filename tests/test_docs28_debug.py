"""`DRIVESTAGE_DEBUG` / `TRAINER_DEBUG`: the README says `1` prints tracebacks; `=0` did too
(any non-empty value), so a user turning it off got tracebacks (found by docs28)."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from drivestage.cli import cli as drivestage_cli
from drivestage.errors import AuthError
from trainer.cli import cli as trainer_cli
from trainer.errors import ConfigError

ROOT = "http://127.0.0.1:9/"


@pytest.mark.parametrize("value", ["0", "false", "no", "off", ""])
def test_debug_off_values_print_the_one_line_error(value, monkeypatch, tmp_path):
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", ROOT)
    monkeypatch.delenv("DRIVESTAGE_TOKEN", raising=False)
    monkeypatch.setenv("DRIVESTAGE_DEBUG", value)
    res = CliRunner().invoke(drivestage_cli, ["ls", "drive:"])
    assert res.exit_code == 1
    assert res.stderr.startswith(f"Error: the Drive API root is {ROOT} (--api-root / DRIVESTAGE_API_ROOT) "
                                 "but no token was given")
    monkeypatch.setenv("TRAINER_DEBUG", value)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  epoch: 3\n")
    res = CliRunner().invoke(trainer_cli, ["train", "-c", str(cfg)])
    assert res.exit_code == 2
    assert res.stderr == f"Error: unknown config key 'train.epoch' in {cfg}; did you mean 'train.epochs'?\n"


@pytest.mark.parametrize("value", ["1", "yes", "true"])
def test_debug_on_prints_the_traceback(value, monkeypatch, tmp_path):
    """The traceback, with the exit code the error has without it (ux35: Python's 1 was the
    code of every error, a config error's 2 included)."""
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", ROOT)
    monkeypatch.delenv("DRIVESTAGE_TOKEN", raising=False)
    monkeypatch.setenv("DRIVESTAGE_DEBUG", value)
    res = CliRunner().invoke(drivestage_cli, ["ls", "drive:"])
    assert res.exit_code == 1
    assert res.stderr.startswith("Traceback (most recent call last):\n")
    assert f"\n{AuthError.__module__}." in res.stderr
    monkeypatch.setenv("TRAINER_DEBUG", value)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  epoch: 3\n")
    res = CliRunner().invoke(trainer_cli, ["train", "-c", str(cfg)])
    assert res.exit_code == 2
    assert res.stderr.startswith("Traceback (most recent call last):\n")
    assert res.stderr.endswith(f"{ConfigError.__module__}.ConfigError: unknown config key "
                               f"'train.epoch' in {cfg}; did you mean 'train.epochs'?\n")
