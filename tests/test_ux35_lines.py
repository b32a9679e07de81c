"""ux35: what a new user reads on stderr when a command fails. `TRAINER_DEBUG=1` (and
`DRIVESTAGE_DEBUG=1`) showed the traceback but turned a config or usage error's exit code 2
into Python's 1; and trainer's `Error:` line after a progress bar continued the bar's line
(`…[00:00<?, ?B/s]\\x1b[AError: …` in a log file or notebook)."""
from __future__ import annotations

import re

from click.testing import CliRunner

from _cli import run


def test_trainer_debug_shows_the_traceback_and_keeps_a_config_errors_exit_code(
        tiny_config, monkeypatch):
    from trainer.cli import cli as trainer_cli

    cfg = tiny_config(**{"train.epochs": 0})
    monkeypatch.delenv("TRAINER_DEBUG", raising=False)
    plain = CliRunner().invoke(trainer_cli, ["train", "-c", cfg])
    assert plain.exit_code == 2
    assert plain.stderr == "Error: train.epochs must be >= 1, got 0\n"
    monkeypatch.setenv("TRAINER_DEBUG", "1")
    debug = CliRunner().invoke(trainer_cli, ["train", "-c", cfg])
    assert debug.exit_code == 2, debug.stderr
    assert debug.stderr.startswith("Traceback (most recent call last):\n")
    assert debug.stderr.endswith(
        "trainer.errors.ConfigError: train.epochs must be >= 1, got 0\n")


def test_drivestage_debug_keeps_a_usage_errors_exit_code(monkeypatch, tmp_path):
    monkeypatch.setenv("DRIVESTAGE_DEBUG", "1")
    code, _out, err = run("pull", "drive:x.zip", str(tmp_path / "d"), "--remove-archive")
    assert code == 2, err
    assert err.startswith("Traceback (most recent call last):\n")
    assert "drivestage.errors.UsageError: --remove-archive removes the archive" in err


def test_a_trainer_error_after_a_progress_bar_starts_on_a_line_of_its_own(
        emulator, local_state, drive_env, tiny_config, tmp_path):
    """The download's bars (not a terminal: drawn all the same) left the line open with a
    cursor-up escape, and `Error:` followed it there."""
    from trainer.cli import cli as trainer_cli

    emulator.add_file("VOC_datasets/labels.zip", b"not an archive\n" * 100_000)
    cfg = tiny_config(**{"data.drive_zip": "drive:VOC_datasets/labels.zip"})
    result = CliRunner().invoke(trainer_cli, ["train", "-c", cfg])
    assert result.exit_code == 1, (result.stderr, result.exception)
    assert "%|" in result.stderr   # (a bar was drawn)
    errors = [line for line in re.split(r"[\r\n]", result.stderr) if "Error: " in line]
    assert len(errors) == 1 and errors[0].startswith(
        "Error: data.drive_zip: drive:VOC_datasets/labels.zip is not a zip or tar archive"), \
        errors


def test_a_drivestage_summary_after_a_progress_bar_starts_on_a_line_of_its_own(
        emulator, local_state, drive_env, tmp_path):
    """A pull's bar, cleared with a carriage return that only a terminal obeys, had the
    summary after it on its line in a log file (`data: 100%|…|\\r   \\rdrive:data -> …`)."""
    emulator.add_file("data/a.bin", b"a" * 1000)
    code, _out, err = run("pull", "drive:data", str(tmp_path / "d"))
    assert code == 0, err
    assert "%|" in err
    assert f"\ndrive:data -> {tmp_path / 'd' / 'data'}: 1 file (1 downloaded)" in err
