"""attackload37: loadfail37's stop came before the question ``--resume auto`` asks of Drive.
This machine's run folder holds epoch_002.pt (and last.pt) that do not load here (their
sidecars vouch for them: a torch too old for their format, say), and another machine has
since gone on from Drive to epoch 3. Before loadfail37, auto passed over them to
epoch_001.pt, saw that Drive went on further and continued from Drive's epoch_003.pt. With
loadfail37 ``find_latest`` raised first: the run stopped, saying to go on from an *older*
checkpoint (``--resume PATH``), which would branch the run back behind Drive's epoch 3.

The unloadable checkpoint is behind what Drive holds: nothing is lost by going on from
Drive (its saves come after epoch 3). So auto does that, said in a warning; with nothing on
Drive further on, the stop stays (tests/test_loadfail37_resume.py). A real run's
checkpoints; the other machine's epoch 3 trained by the trainer itself."""
from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from test_loadfail37_find import _newer_torch_format
from test_loadfail37_resume import _config, trained  # noqa: F401  (the module's fixture)
from test_trainer22_hostile import _md5s

DRIVE = ("--set", "drive.logs=drive:Models/logs")


def _train(config: str, epochs: int):
    from trainer.cli import cli

    result = CliRunner().invoke(cli, ["train", "-c", config, "--resume", "auto", "--set",
                                      f"train.epochs={epochs}", *DRIVE])
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    return result.exit_code, errors, result.stderr


@pytest.mark.slow
def test_a_local_newest_that_does_not_load_here_is_gone_past_where_drive_went_on(
        trained, synth_voc, tmp_path, emulator, drive_env, local_state, fast_retries,
        one_torch_thread):
    from test_trainer23_fallback import _drive_listing

    other, here = tmp_path / "other", tmp_path / "here"
    shutil.copytree(trained, other / "logs")
    shutil.copytree(trained, here / "logs")
    code, errors, err = _train(_config(other, synth_voc), 3)   # (the other machine: epoch 3)
    assert (code, errors) == (0, []), err
    third = dict(_drive_listing(emulator))["epoch_003.pt"]
    for name in ("epoch_002.pt", "last.pt"):
        _newer_torch_format(str(here / "logs" / name))
    unloadable = {n: m for n, m in _md5s(here / "logs").items() if n in ("epoch_002.pt",
                                                                          "last.pt")}

    code, errors, err = _train(_config(here, synth_voc), 4)

    assert (code, errors) == (0, []), err
    logs = here / "logs"
    assert f"{logs / 'epoch_002.pt'} does not load here" in err, err
    assert f"resumed from drive:Models/logs/epoch_003.pt at epoch 3" in err, err
    assert "training epochs 4..4 of 4" in err, err
    assert _md5s(logs)["epoch_003.pt"] == third
    assert _md5s(logs)["epoch_002.pt"] == unloadable["epoch_002.pt"]   # (left as it was)
