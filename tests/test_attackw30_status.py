"""``trainer status`` with a config that changes the model's shape (here ``model.width``;
also the class count, anchors mask, attention): it said only that the run's newest
checkpoint was safe on Drive, and the user, starting a machine for it, met ``--resume auto``
refusing it at once. Now one line says ``--resume auto`` would refuse it, in restore's words.

Real checkpoints of a real (small) model, the real PyDrive2 stack against the emulator, the
CLI in-process (test_trainer24_status's run and helpers)."""
from __future__ import annotations

import json

from click.testing import CliRunner

from test_trainer24_status import SPEC, _save, _small_run, _status, fitted


def test_status_says_resume_auto_would_refuse_a_checkpoint_of_another_width(
        emulator, drive_env, local_state, tiny_config, tmp_path):
    from trainer.cli import cli
    from trainer.drive import DriveFolder

    there = tmp_path / "elsewhere"
    run = _small_run(tiny_config, there)             # (model.width 0.25)
    _save(run, there, "epoch_001.pt", 1, 1000.0, fitted())
    DriveFolder(SPEC, str(there)).push()
    fresh = tmp_path / "fresh"
    assert len(_status(tiny_config, fresh).stdout.splitlines()) == 1   # as before

    res = _status(tiny_config, fresh, "--set", "model.width=0.5")
    assert res.exit_code == 0, res.output
    refusal = (f"cannot resume from {SPEC}/epoch_001.pt: the config changes the model's shape "
               f"(width: checkpoint 0.25, config 0.5). Restore model.width (0.25): its weights "
               f"fit no other width; or start a new run in a new train.out_dir (--resume none)")
    assert res.stdout.splitlines()[1:] == [f"--resume auto would refuse: {refusal}"]
    data = json.loads(_status(tiny_config, fresh, "--set", "model.width=0.5", "--json").stdout)
    assert data["resume_refused"] == refusal and data["resume_from"] is None
    assert not fresh.exists()

    config = tiny_config(**{"drive.logs": SPEC, "train.out_dir": str(fresh)})
    res = CliRunner().invoke(cli, ["train", "-c", config, "--resume", "auto",
                                   "--set", "model.width=0.5"])
    assert res.exit_code == 1, res.output       # what status said, of the file it pulled
    assert res.output.strip().splitlines()[-1] == "Error: " + refusal.replace(
        f"{SPEC}/epoch_001.pt", str(fresh / "epoch_001.pt"))
