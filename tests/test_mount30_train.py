"""A training run whose folder (``train.out_dir``) is on a Google Drive mount that stops in
the middle of an epoch (mount30). The mount is tests/_drivemount.py's FUSE stand-in: once
DriveFS ends, every call into it fails with ENOTCONN until ``drive.mount(...,
force_remount=True)``, which no Colab cell can run while the training cell runs
(colabtools issues 3441, 3940, 4181).

fidelity29 rescued the state at the epoch's end only. Before that, each ``train.save_minutes``
autosave failed into the dead folder with an ERROR line and training went on to the epoch's
end (the rest of the epoch trained for nothing, perhaps hours); a SIGTERM (Colab ending the
runtime, a spot VM) then ended "autosave_… could not be written ([Errno 107] …); the newest
earlier checkpoint is where --resume auto continues": the state was lost with the mount.
"""
from __future__ import annotations

import os
import signal

import pytest

from _drivemount import working_drive_mount  # noqa: F401 (fixture)
from _tempdir import own_tempdir  # noqa: F401  (an autouse fixture: the rescued copy's place)
from trainer.errors import SaveError, TrainingInterrupted
from trainer.state import Position


def _policy(tiny_config, logs, clock, drive=None, **overrides):
    from test_trainer22_hostile import _config, _small_run
    from trainer.saving import Checkpointer
    from trainer.writer import BackgroundWriter

    run = _small_run(tiny_config, logs)
    run.cfg = _config(tiny_config, logs, **{"train.save_minutes": 1, **overrides})
    writer = BackgroundWriter(str(logs), drive)
    return run, writer, Checkpointer(run.cfg, run.info, writer, run.stop, clock=clock)


def _rescued(tmp_path, name: str) -> str:
    [folder] = [f for f in os.listdir(tmp_path / "tmp") if f.startswith("trainer-rescued-")]
    return str(tmp_path / "tmp" / folder / name)


def _gone(mount, then: str) -> str:
    return (f"{mount.point} no longer answers (Transport endpoint is not connected): the Google "
            "Drive mount has stopped (on Colab it does after a while or under load), and files "
            "written into it that it had not yet sent to Drive are lost. Mount it again "
            f"(drive.mount('{mount.point}', force_remount=True)) and go on from it with "
            f"--resume {then}, or go on from it with train.out_dir on local disk and "
            "drive.logs=drive:... set (no mount needed)")


def _whole(path: str, run) -> None:
    """What --resume takes: the sidecar's md5 is the file's, the state is the run's."""
    from drivestage.localfs import file_md5
    from trainer import checkpoint as ckpt

    assert ckpt.read_sidecar(path).md5 == file_md5(path)
    state = ckpt.load_checkpoint(path)
    assert state["model"].keys() == run.bare_model.state_dict().keys()
    assert state["run"] == run.state.run


def _stopped_and_rescued(caught, tmp_path, mount, logs, run, where: str, name: str) -> None:
    """The SaveError ``caught`` says training stopped at ``where`` (``epoch E, iteration I``)
    with its state rescued on this machine as ``name``, a whole checkpoint of the run."""
    path = _rescued(tmp_path, name)
    assert str(caught.value) == (
        f"cannot save {where} in {logs}, so training stopped there: its state is "
        f"saved in {path} on this machine. " + _gone(mount, path))
    _whole(path, run)


def test_the_autosave_after_the_mount_stopped_rescues_the_state_and_stops(
        tiny_config, tmp_path, working_drive_mount):
    mount = working_drive_mount
    logs = mount.point / "MyDrive" / "logs"
    now = [0.0]
    run, writer, saver = _policy(tiny_config, logs, lambda: now[0])
    try:
        saver.on_fit_epoch_end(run, Position(1, 2, 0), {})
        assert writer.wait(saver._epoch_job)
        mount.disconnect()   # DriveFS ends mid-epoch
        saver.on_train_batch_end(run, Position(1, 3, 1), {})   # no autosave due yet
        now[0] = 61.0                                          # train.save_minutes: 1
        with pytest.raises(SaveError) as caught:
            saver.on_train_batch_end(run, Position(1, 4, 2), {})
    finally:
        writer.close()
    _stopped_and_rescued(caught, tmp_path, mount, logs, run, "epoch 2, iteration 4",
                         "autosave_00000004.pt")


def test_with_autosaves_off_the_mount_is_looked_at_every_minute_of_training(
        tiny_config, tmp_path, working_drive_mount):
    """train.save_minutes 0 (or long): the mount found stopped within LOOK_S of training,
    not at the epoch's end (the rest of the epoch trained for nothing)."""
    from trainer.saving import LOOK_S

    mount = working_drive_mount
    logs = mount.point / "MyDrive" / "logs"
    now = [0.0]
    run, writer, saver = _policy(tiny_config, logs, lambda: now[0])
    saver.interval_s = 0.0   # train.save_minutes: 0
    try:
        mount.disconnect()
        now[0] = LOOK_S - 1
        saver.on_train_batch_end(run, Position(0, 1, 1), {})   # not looked at yet
        now[0] = LOOK_S
        with pytest.raises(SaveError) as caught:
            saver.on_train_batch_end(run, Position(0, 2, 2), {})
    finally:
        writer.close()
    _stopped_and_rescued(caught, tmp_path, mount, logs, run, "epoch 1, iteration 2",
                         "autosave_00000002.pt")


def test_a_stop_after_the_mount_stopped_sends_its_save_to_drive_logs(
        emulator, drive_env, local_state, tiny_config, tmp_path, working_drive_mount):
    """SIGTERM (Colab ending the runtime) after the mount stopped: the stop's save, which
    the dead folder refused at once, is written on this machine and verified on
    ``drive.logs`` within the grace; ``--resume auto`` finds it there."""
    from trainer.drive import DriveFolder, newest_of_current_run

    spec = "drive:Models/m30/run"
    mount = working_drive_mount
    logs = mount.point / "MyDrive" / "logs"
    os.makedirs(logs)
    run, writer, saver = _policy(tiny_config, logs, lambda: 0.0, DriveFolder(spec, str(logs)))
    saver.drive_spec = spec
    mount.disconnect()
    saver.stop.request(signal.SIGTERM)
    try:
        with pytest.raises(TrainingInterrupted) as caught:
            saver.on_train_batch_end(run, Position(1, 3, 1), {})
    finally:
        writer.close()
    path = _rescued(tmp_path, "autosave_00000003.pt")
    assert caught.value.exit_code == 143
    assert str(caught.value) == (
        f"stopped by SIGTERM at epoch 2, iteration 3: autosave_00000003.pt cannot be written "
        f"in {logs}: its state is saved in {path} on this machine and verified on {spec}. "
        + _gone(mount, path))
    _whole(path, run)
    found = DriveFolder(spec, str(tmp_path / "elsewhere")).checkpoints()
    newest = newest_of_current_run(found)
    assert newest is not None and newest.name == "autosave_00000003.pt", [c.name for c in found]


def test_drive_logs_in_a_mount_is_warned_and_a_stopped_one_ends_the_run_with_a_push_to_drive(
        local_state, tiny_config, tmp_path, working_drive_mount, caplog):
    """``drive.logs=/content/drive/MyDrive/...`` (not ``drive:``): each checkpoint counted
    "verified there" once written into the mount, which sends it to Drive later. Said at the
    start, as push says it for a DEST there. The mount then stops: the run's last line named
    epoch_001.pt "verified there" (Drive never got it) and gave a push into the dead mount."""
    import logging

    from drivestage.errors import MirrorError
    from trainer.drive import DriveFolder

    mount = working_drive_mount
    logs = tmp_path / "logs"
    spec = str(mount.point / "MyDrive" / "Models" / "run")
    with caplog.at_level(logging.WARNING, logger="trainer.drive"):
        drive = DriveFolder(spec, str(logs))
    assert [r.getMessage() for r in caplog.records] == [
        f"drive.logs {spec} is inside the Google Drive mount {mount.point}: checkpoints copied "
        "there are written to this machine's disk, and the mount sends them to Drive later "
        "(minutes after each file is closed, longer for big ones); whatever it has not sent "
        "when the runtime ends or the mount stops is lost, though counted as safe here "
        "(train.keep_local removes no local epoch file meanwhile). Set drive.logs="
        "drive:Models/run instead (no mount needed; a checkpoint counts as safe once Drive has "
        "verified its bytes)"]
    run, writer, saver = _policy(tiny_config, logs, lambda: 0.0, drive)
    saver.drive_spec = spec
    saver.on_fit_epoch_end(run, Position(1, 2, 0), {})
    assert writer.wait(saver._epoch_job)
    assert writer.wait_pushed(writer.push_soon())
    assert "MyDrive/Models/run/epoch_001.pt" in mount.cached()
    mount.disconnect()   # before it sent epoch_001.pt to Drive
    assert mount.on_drive == {}
    saver.on_fit_epoch_end(run, Position(2, 4, 0), {})
    with pytest.raises(MirrorError) as caught:
        saver.on_fit_end(run)   # (the final push fails at once: no wait, no hang)
    assert str(caught.value) == (
        f"mirror of {logs} to {spec} failed: {mount.point} no longer answers (Transport "
        "endpoint is not connected): the Google Drive mount has stopped (on Colab it does "
        "after a while or under load), and files written into it that it had not yet sent to "
        f"Drive are lost. Mount it again (drive.mount('{mount.point}', force_remount=True)) "
        "and train on with drive.logs there, or upload to Drive without it as below; the "
        "newest written into it is epoch_001.pt (epoch 1, iteration 2), which Drive may not "
        f"have: upload the run with drivestage push {logs} drive:Models/run before this "
        "machine goes (it sends what Drive lacks)")
    assert sorted(os.listdir(logs)) == ["epoch_001.json", "epoch_001.pt", "epoch_002.json",
                                        "epoch_002.pt", "last.json", "last.pt"]


def test_keep_local_removes_no_epoch_file_while_drive_logs_is_in_a_drive_mount(
        local_state, tiny_config, tmp_path, working_drive_mount):
    """``train.keep_local`` removes an older epoch file from the run folder once Drive holds
    it, verified. With ``drive.logs`` in the mount, "verified there" meant "written into the
    mount's cache": epoch_001.pt left the run folder while Drive had none of it, and the
    mount stopping (or the runtime ending) lost it for good."""
    from trainer.drive import DriveFolder

    mount = working_drive_mount
    logs = tmp_path / "logs"
    spec = str(mount.point / "MyDrive" / "Models" / "run")
    run, writer, saver = _policy(tiny_config, logs, lambda: 0.0, DriveFolder(spec, str(logs)),
                                 **{"train.keep_local": 1, "train.epochs": 3})
    try:
        for epoch in (1, 2, 3):
            saver.on_fit_epoch_end(run, Position(epoch, 2 * epoch, 0), {})
            assert writer.wait(saver._epoch_job)
            assert writer.wait_pushed(writer.push_soon())
    finally:
        writer.close()
    assert {"MyDrive/Models/run/epoch_001.pt", "MyDrive/Models/run/epoch_002.pt"} <= \
        set(mount.cached())
    mount.disconnect()   # before DriveFS sent them
    assert mount.on_drive == {}
    assert {"epoch_001.pt", "epoch_002.pt", "epoch_003.pt"} <= set(os.listdir(logs))
