"""A ``DRIVESTAGE_STATE_DIR`` that cannot be a folder (leftovers40).

- One that could not be created (``/proc/x``) exited 1 while one that is a file exited 2:
  both are a bad setting the user typed, a usage error (README: "a bad option or path"),
  so both exit 2 now; a full disk or an I/O error there stays 1.
- ``trainer train`` with ``drive.logs`` said the cause twice: a run_lock warning ("cannot lock
  the run folder ... another training run started in it now would not be refused"), then
  the same cause as its Error. The run needs the state folder to push, so it is one Error.
"""
from __future__ import annotations

from click.testing import CliRunner

from drivestage.cli import cli as drivestage_cli
from trainer.cli import cli as trainer_cli

BAD = "/proc/drivestage-leftovers40"
LINE = (f"Error: cannot create drivestage's state folder {BAD} (No such file or directory); "
        "point DRIVESTAGE_STATE_DIR at a folder you can write\n")


def test_a_state_folder_that_cannot_be_made_is_a_usage_error(emulator, drive_env, tmp_path,
                                                            monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f.txt").write_text("hi")
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", BAD)
    r = CliRunner().invoke(drivestage_cli, ["push", str(src), "drive:S"])
    assert (r.exit_code, r.stderr) == (2, LINE), r.output
    assert emulator.find("S") is None


def test_the_trainer_says_a_bad_state_folder_once(emulator, drive_env, tiny_config, tmp_path,
                                                  monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", BAD)
    config = tiny_config(**{"drive.logs": "drive:runs/a", "train.epochs": 1})
    r = CliRunner().invoke(trainer_cli, ["train", "-c", config, "--resume", "none"])
    assert (r.exit_code, r.stderr) == (2, LINE), r.output
    assert emulator.find("runs") is None
