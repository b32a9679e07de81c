"""trainlefts47 (1): a *folder* under a name the run's saves write (``last.pt``, ``best.pt``,
``epoch_NNN.pt``, an autosave's, or a sidecar's ``.json``) in the run folder. Before, every
save of that name failed at its first file and the whole run trained anyway (``best.pt``
never written). Now ``train`` refuses before the dataset is pulled: one line naming the
folder and what to do, exit 1, nothing changed."""
from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from trainer.cli import cli as trainer_cli


@pytest.mark.parametrize("name", ["last.pt", "best.pt", "epoch_003.pt", "autosave_00000002.pt",
                                  "last.json"])
def test_a_folder_where_a_save_goes_is_refused_before_the_data_is_pulled(
        emulator, drive_env, local_state, tiny_config, tmp_path, name):
    """The dataset's archive is on Drive (``data.drive_zip``, missing there: a pull would say
    so): the refusal comes first, and no request reaches Drive."""
    logs = tmp_path / "logs"
    (logs / name).mkdir(parents=True)
    (logs / name / "mine.txt").write_text("the user's")
    cfg = tiny_config(**{"data.drive_zip": "drive:VOC_datasets/gone.zip"})
    before = len(emulator.requests)
    result = CliRunner().invoke(trainer_cli, ["train", "-c", cfg])
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == (
        f"Error: {logs}/{name} is a folder, and this run saves its {name} there: every save "
        f"of that name would fail while the run trains on; nothing was changed. Move or "
        f"rename that folder out of {logs}, then run the same command")
    assert sorted(os.listdir(logs)) == [name]
    assert (logs / name / "mine.txt").read_text() == "the user's"
    assert len(emulator.requests) == before


def test_status_says_train_would_refuse_the_folder(emulator, drive_env, local_state, tiny_config,
                                                   tmp_path):
    """``trainer status`` says the refusal ``train`` would make (its foreign-file line)."""
    emulator.add_file("Models/tl47/logs/keep.txt", b"x")
    logs = tmp_path / "logs"
    (logs / "best.pt").mkdir(parents=True)
    cfg = tiny_config(**{"drive.logs": "drive:Models/tl47/logs"})
    result = CliRunner().invoke(trainer_cli, ["status", "-c", cfg])
    assert result.exit_code == 1, result.output
    assert f"--resume auto would refuse: {logs}/best.pt is a folder" in result.stderr, result.stderr
