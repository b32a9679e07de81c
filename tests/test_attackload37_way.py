"""attackload37: every stop of loadfail37 ("cannot resume from X: loading it failed on this
machine ...") must leave the user a way on that works, not a run stuck for ever. Each is run
here as the user would, on a real run's checkpoints whose newest (epoch_002.pt, last.pt)
hold a newer torch's zip format vouched for by their sidecars (this torch refuses them):

- local: the stop, then ``--resume logs/epoch_001.pt`` (on purpose), then ``--resume auto``
  goes on from epoch_001.pt (the branch recorded), trains, and the run's own saves replace
  the unreadable ones (loadable here now): never the stop again;
- Drive, on a machine with none of the run: the stop, ``drivestage pull`` of epoch_001.pt
  (what the line says), ``--resume PATH`` of it, then ``--resume auto``: the same, on Drive.
"""
from __future__ import annotations

import os
import shutil

import torch
import pytest
from click.testing import CliRunner

from test_loadfail37_find import _newer_torch_format
from test_loadfail37_resume import _config, trained  # noqa: F401  (the module's fixture)
from test_trainer22_hostile import _md5s

UNREADABLE = ("epoch_002.pt", "last.pt")


def _train(config: str, resume: str, epochs: int, *more: str):
    from trainer.cli import cli

    result = CliRunner().invoke(cli, ["train", "-c", config, "--resume", resume, "--set",
                                      f"train.epochs={epochs}", *more])
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    return result.exit_code, errors, result.stderr


def _loads(path) -> bool:
    try:
        torch.load(path, weights_only=True)
    except RuntimeError:
        return False
    return True


def _way_on(config: str, older: str, logs, *drive: str) -> None:
    """The stop, the older checkpoint on purpose, then --resume auto to the end."""
    code, errors, err = _train(config, "auto", 3, *drive)
    assert code == 1 and len(errors) == 1, err
    assert errors[0].startswith("Error: cannot resume from ") and errors[0].endswith(
        "or go on from an older checkpoint on purpose with --resume PATH" +
        (" (drivestage pull one from drive.logs first)" if drive else "")), errors[0]

    code, errors, err = _train(config, older, 1, *drive)   # (1 epoch: nothing to train)
    assert (code, errors) == (0, []), err
    assert "INFO trainer.branches: resumed on purpose from epoch_001.pt, not the run's newest " \
           "(epoch_002.pt)" in err, err

    code, errors, err = _train(config, "auto", 3, *drive)
    assert (code, errors) == (0, []), err
    assert f"resumed from {logs / 'epoch_001.pt'} at epoch 1, iteration 2" in err, err
    assert "training epochs 2..3 of 3" in err, err
    assert all(_loads(logs / n) for n in (*UNREADABLE, "epoch_003.pt"))


def test_the_local_stop_goes_on_with_resume_path_then_auto(trained, synth_voc, tmp_path,
                                                           one_torch_thread):
    logs = tmp_path / "logs"
    shutil.copytree(trained, logs)
    for name in UNREADABLE:
        _newer_torch_format(str(logs / name))
    assert not any(_loads(logs / n) for n in UNREADABLE)

    _way_on(_config(tmp_path, synth_voc), str(logs / "epoch_001.pt"), logs)


@pytest.mark.slow
def test_the_drive_stop_goes_on_with_a_pulled_checkpoint_then_auto(
        trained, synth_voc, tmp_path, emulator, drive_env, local_state, fast_retries,
        one_torch_thread):
    from _cli import ok
    from test_trainer23_fallback import _drive_listing
    from trainer.drive import DriveFolder

    there = tmp_path / "there"
    shutil.copytree(trained, there)
    for name in UNREADABLE:
        _newer_torch_format(str(there / name))
    DriveFolder("drive:Models/logs", str(there)).push()
    unreadable = dict(_drive_listing(emulator))["epoch_002.pt"]
    pulled = tmp_path / "pulled"
    ok("pull", "drive:Models/logs/epoch_001.pt", str(pulled))

    _way_on(_config(tmp_path, synth_voc), str(pulled / "epoch_001.pt"), tmp_path / "logs",
            "--set", "drive.logs=drive:Models/logs")

    on_drive = dict(_drive_listing(emulator))
    here = _md5s(tmp_path / "logs")
    assert on_drive["epoch_002.pt"] != unreadable
    assert on_drive["epoch_002.pt"] == here["epoch_002.pt"]
    assert on_drive["epoch_003.pt"] == here["epoch_003.pt"]

