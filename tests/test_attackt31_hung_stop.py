"""attackt31: a stop (SIGTERM, Ctrl-C) on a run without ``drive.logs`` whose run folder
(``train.out_dir`` in Colab's Drive mount) hangs: the stop's write there never ends, and with
no Drive to send its state from elsewhere (trainer.stop_save, which needs ``drive.logs``) the
state in memory was dropped: `autosave_… could not be written (its write … has not ended within
train.grace_seconds …); the newest earlier checkpoint is where --resume auto continues`. The
machine's own disk answered all along. Now the state is written there and named, as
hungend30's end of a run does with the last epoch's."""
from __future__ import annotations

import os
import signal
import tempfile

import pytest

from _drivemount import working_drive_mount  # noqa: F401 (fixture)
from drivestage.localfs import file_md5
from test_hungend30_final_wait import _policy
from trainer import checkpoint as ckpt
from trainer.errors import TrainingInterrupted
from trainer.state import Position


@pytest.fixture(autouse=True)
def _temporary_folders_here(tmp_path, monkeypatch):
    here = tmp_path / "tmp"
    here.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(here))


def test_a_stop_whose_run_folder_mount_hangs_keeps_its_state_on_this_machine(
        tiny_config, working_drive_mount):
    mount = working_drive_mount
    logs = mount.point / "MyDrive" / "logs"
    run, writer, saver = _policy(tiny_config, logs)
    run.stop.grace_s = 0.4
    try:
        saver.on_fit_epoch_end(run, Position(1, 2, 0), {})
        assert writer.wait(saver._epoch_job)
        mount.hang()   # (DriveFS stops answering; the stop comes)
        run.stop.request(signal.SIGTERM)
        run.state.pos = Position(1, 3, 1)   # (the state of the step, as fit has it)
        with pytest.raises(TrainingInterrupted) as stopped:
            saver._save_and_stop(run, Position(1, 3, 1))
    finally:
        mount.answer()
        writer.close()
    text = str(stopped.value)
    head = (f"stopped by SIGTERM at epoch 2, iteration 3: autosave_00000003.pt could not be "
            f"written (its write in {logs} has not ended within train.grace_seconds (0.4 s)); its "
            "state is saved in ")
    assert text.startswith(head) and stopped.value.exit_code == 143, text
    path = text[len(head):].split(" ", 1)[0]
    assert text == (head + f"{path} on this machine: --resume {path} goes on from it (copy it "
                    "off this machine while it lasts)")
    assert os.path.basename(path) == "autosave_00000003.pt"
    side = ckpt.read_sidecar(path)
    assert side.md5 == file_md5(path) and side.iteration == 3


def test_a_stop_while_the_last_epoch_waits_on_a_hung_run_folder_keeps_that_epoch(
        tiny_config, working_drive_mount):
    """The same at the run's end: SIGTERM while the last epoch's write waited on the hung
    mount said `stopped by SIGTERM while the checkpoint of epoch 2 (last.pt, epoch_002.pt) was
    still to be written; what is saved in … is not known …`: the trained epoch, in memory, was
    dropped. Now it is kept on this machine, and `--resume <it>` puts epoch_002.pt into the
    run folder (a checkpoint outside it made no epoch file there: trained nothing, and the run
    folder and Drive never had the last epoch)."""
    from trainer.restore import _repair_run_folder

    mount = working_drive_mount
    logs = mount.point / "MyDrive" / "logs"
    run, writer, saver = _policy(tiny_config, logs)
    run.stop.grace_s = 0.4
    run.state.pos = Position(2, 4, 0)   # (the state of the last epoch, as fit has it)
    try:
        saver.on_fit_epoch_end(run, Position(1, 2, 0), {})
        assert writer.wait(saver._epoch_job)
        mount.hang()
        saver.on_fit_epoch_end(run, Position(2, 4, 0), {})
        run.stop.request(signal.SIGTERM)
        with pytest.raises(TrainingInterrupted) as stopped:
            saver.on_fit_end(run)
    finally:
        mount.answer()
        writer.close()
    text = str(stopped.value)
    head = ("stopped by SIGTERM while the checkpoint of epoch 2 (last.pt, epoch_002.pt) was "
            "still to be written; its state is saved in ")
    assert text.startswith(head) and stopped.value.exit_code == 143, text
    path = text[len(head):].split(" ", 1)[0]
    assert text == (head + f"{path} on this machine: --resume {path} goes on from it (copy it "
                    "off this machine while it lasts)")
    assert os.path.basename(path) == "epoch_002.pt" and ckpt.read_sidecar(path).epoch == 2
    os.remove(logs / "epoch_002.pt")   # (the hung write ended once the mount answered)
    os.remove(logs / "epoch_002.json")
    _repair_run_folder(run, path)   # (what --resume <path> does first)
    assert file_md5(str(logs / "epoch_002.pt")) == file_md5(path)
