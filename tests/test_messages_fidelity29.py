"""What drivestage says when the Google Drive mount it pushes or pulls into behaves as Colab's
does (fidelity29). The mount is tests/_drivemount.py's FUSE stand-in, in the kernel:

* DriveFS keeps what is written into it on the machine's disk and sends it to Drive minutes
  after each file is closed; what it had not sent when the runtime ends is lost
  (googlecolab/colabtools issues 659, 2607, 287). A push into it said "1 uploaded", and
  nothing more.
* DriveFS stops (colabtools issues 3441, 3940, 4181): every call into the mount then fails
  with ENOTCONN, "Transport endpoint is not connected". A push into it said "<mount> is a
  file, not a folder" (exit 2) or ended in a traceback; a pull said "Transport endpoint is
  not connected" and no more. A training run whose folder is on the mount trained every
  later epoch for nothing (none could be saved; Colab's cell runs the trainer, so no
  ``drive.mount()`` can come meanwhile: colabtools 3940, "400 units with no output") and
  ended "nothing of run … is saved there: … it trains from the start".
"""
from __future__ import annotations

import os
import tempfile

import pytest
from click.testing import CliRunner

from _drivemount import drive_mount, working_drive_mount  # noqa: F401 (fixtures)
from _messages import error_line as error
from _messages import renders, shown
from drivestage.cli import cli
from drivestage.lost_mounts import lost_mount_message
from trainer.errors import SaveError
from trainer.state import Position
from test_messages_fidelity27 import logs, run

GONE = "no longer answers (Transport endpoint is not connected)"


def stopped(mount) -> str:
    """What drivestage says of a Drive mount whose program ended."""
    return (f"{mount.point} {GONE}: the Google Drive mount has stopped (on Colab it does after "
            "a while or under load), and files written into it that it had not yet sent to "
            "Drive are lost. Mount it again (drive.mount('" f"{mount.point}', "
            "force_remount=True)) and run again, or use drive: paths instead: drivestage "
            "needs no mount")


@renders("is inside the Google Drive mount", GONE)
def test_a_push_into_a_drive_mount_then_the_mount_stops(local_state, tmp_path,
                                                         working_drive_mount):
    mount = working_drive_mount
    dest = mount.point / "MyDrive" / "Models" / "logs"
    ckpt = os.urandom(5000)
    code, err = run("push", logs(tmp_path, **{"epoch_001.pt": ckpt}), str(dest))
    assert code == 0, err
    # Counted as uploaded, yet only on this machine's disk: the warning says so.
    assert mount.cached() == {"MyDrive/Models/logs/epoch_001.pt": ckpt}
    assert mount.on_drive == {}
    warning = (f"WARNING drivestage.cli.push: DEST {dest} is inside the Google Drive mount "
               f"{mount.point}: what is pushed there is written to this machine's disk, and "
               "the mount sends it to Drive later (minutes after each file is closed, longer "
               "for big ones); whatever it has not sent when the runtime ends is lost, though "
               "counted as uploaded here. Push to drive:Models/logs instead (drivestage needs "
               "no mount, and a push ends when Drive has verified the bytes), or run "
               "drive.flush_and_unmount() before the runtime ends")
    assert warning in err.splitlines(), err
    shown("is inside the Google Drive mount", err)

    mount.disconnect()   # DriveFS ends before it sent the checkpoint: Drive never gets it
    assert mount.on_drive == {}
    code, err = run("push", logs(tmp_path, **{"epoch_002.pt": b"2" * 100}), str(dest))
    assert code == 1   # was 2: "<mount> is a file, not a folder; choose another path ..."
    line = error(err)
    assert line == f"Error: {dest}: {stopped(mount)}", err
    shown(GONE, line)


@renders(GONE)
def test_a_pull_into_a_drive_mount_that_stopped(local_state, tmp_path, working_drive_mount):
    mount = working_drive_mount
    src = tmp_path / "set.bin"
    src.write_bytes(b"data" * 100)
    mount.disconnect()
    dest = mount.point / "MyDrive" / "data"
    code, err = run("pull", str(src), str(dest))
    assert code == 1
    line = error(err)
    assert line == f"Error: cannot stage {src} into {dest}: {stopped(mount)}", err
    shown(GONE, line)


def test_the_mount_stops_during_a_pull_into_it(local_state, tmp_path, working_drive_mount):
    """DriveFS ends while a pull writes into the mount: the same line, exit 1."""
    mount = working_drive_mount
    mount.end_at_write = 1
    src = tmp_path / "set.bin"
    src.write_bytes(os.urandom(300_000))
    dest = mount.point / "MyDrive" / "data"
    code, err = run("pull", str(src), str(dest))
    assert code == 1
    assert error(err) == f"Error: cannot stage {src} into {dest}: {stopped(mount)}", err
    assert mount.disconnected and mount.on_drive == {}


def test_the_mount_stops_during_a_push(local_state, tmp_path, working_drive_mount):
    """DriveFS ends while a checkpoint is written into it (the write is aborted, every call
    after it fails): one line and exit 1, not a traceback; the local files stay."""
    mount = working_drive_mount
    mount.end_at_write = 1
    src = logs(tmp_path, **{"epoch_001.pt": os.urandom(3000)})
    dest = mount.point / "MyDrive" / "logs"
    code, err = run("push", src, str(dest), "--jobs", "1")
    assert code == 1
    line = error(err)
    assert line == f"Error: cannot write {dest / 'epoch_001.pt'}: {stopped(mount)}", err
    assert mount.disconnected and mount.on_drive == {}
    assert os.listdir(src) == ["epoch_001.pt"]


def test_another_fuse_mount_that_stopped_gets_no_colab_advice():
    mounts = "fuse /mnt/nas fuse.sshfs rw,nosuid,nodev 0 0\n"
    assert lost_mount_message("/mnt/nas", mounts) == (
        f"/mnt/nas {GONE}: the program behind this FUSE mount has stopped. Mount it again, "
        "then run again")


# --------------------------------------------------------------------------- training

@pytest.fixture(autouse=True)
def _temporary_folders_here(tmp_path, monkeypatch):
    """The rescued copy goes under this test's folder (``tempfile.tempdir``, as TMPDIR does)."""
    here = tmp_path / "tmp"
    here.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(here))


def _policy(tiny_config, logs, drive=None):
    from test_trainer22_hostile import _config, _small_run
    from trainer.saving import Checkpointer
    from trainer.stopping import StopFlag
    from trainer.writer import BackgroundWriter

    run = _small_run(tiny_config, logs)
    run.cfg = _config(tiny_config, logs)
    run.stop = StopFlag(60)
    writer = BackgroundWriter(str(logs), drive)
    return run, writer, Checkpointer(run.cfg, run.info, writer, run.stop)


RESCUED = "cannot save epoch … in …, so training stopped there: its state is saved in … on " \
    "this machine"


@renders(RESCUED, GONE)
def test_the_run_stops_at_the_epoch_after_its_mount_stopped_with_the_state_kept(
        tiny_config, tmp_path, working_drive_mount):
    from trainer import checkpoint as ckpt

    mount = working_drive_mount
    logs = mount.point / "MyDrive" / "logs"
    run, writer, saver = _policy(tiny_config, logs)
    try:
        saver.on_fit_epoch_end(run, Position(1, 2, 0), {})
        assert writer.wait(saver._epoch_job)
        assert "MyDrive/logs/epoch_001.pt" in mount.cached()
        mount.disconnect()
        with pytest.raises(SaveError) as caught:
            saver.on_fit_epoch_end(run, Position(2, 4, 0), {})
    finally:
        writer.close()
    rescued = str(tmp_path / "tmp")
    [folder] = [f for f in os.listdir(rescued) if f.startswith("trainer-rescued-")]
    path = os.path.join(rescued, folder, "autosave_00000004.pt")
    line = str(caught.value)
    assert line == (
        f"cannot save epoch 2 in {logs}, so training stopped there: its state is saved in {path} "
        f"on this machine. {mount.point} no longer answers (Transport endpoint is not "
        "connected): the Google Drive mount has stopped (on Colab it does after a while or "
        "under load), and files written into it that it had not yet sent to Drive are lost. "
        f"Mount it again (drive.mount('{mount.point}', force_remount=True)) and go on from it "
        f"with --resume {path}, or go on from it with train.out_dir on local disk and "
        "drive.logs=drive:... set (no mount needed)")
    shown(RESCUED, line)
    shown(GONE, line)
    # Whole, with its sidecar: what --resume takes.
    from drivestage.localfs import file_md5

    assert ckpt.read_sidecar(path).md5 == file_md5(path)
    assert ckpt.load_checkpoint(path)["model"].keys() == run.bare_model.state_dict().keys()


# --------------------------------------------------------------------------- shortcut targets

def test_a_shortcut_targets_path_of_an_unmounted_drive_names_the_drive_id_path(tmp_path,
                                                                               monkeypatch):
    """The mount shows a shortcut's target (a folder shared with you, added to My Drive) at
    ``<mount>/.shortcut-targets-by-id/<ID>/<name>`` (TheLastBen/fast-stable-diffusion issue
    1919), and Colab's file browser copies such paths. Without the mount the path was a
    missing local file ("no such file or folder"), with no word of Drive."""
    import drivestage.localfs

    monkeypatch.setattr(drivestage.localfs, "COLAB_CONTENT", str(tmp_path))
    src = tmp_path / "drive" / ".shortcut-targets-by-id" / "1AbCdEfG" / "VOC" / "VOC07.zip"
    result = CliRunner().invoke(cli, ["pull", str(src), str(tmp_path / "data")])
    assert result.exit_code == 2
    assert error(result.stderr) == (
        f"Error: {src} is under {tmp_path / 'drive'}, where Colab mounts Google Drive, but "
        "Drive is not mounted there (a folder made there stays on this machine); write "
        "drive:id:1AbCdEfG/VOC07.zip instead: drivestage needs no mount")
    assert not (tmp_path / "data").exists()
    target = tmp_path / "gdrive" / ".shortcut-targets-by-id" / "1AbCdEfG" / "VOC"
    from drivestage.localfs import unmounted_drive_path

    assert unmounted_drive_path(str(target)) == (str(tmp_path / "gdrive"), "drive:id:1AbCdEfG")


def test_with_drive_logs_the_state_of_a_run_whose_mount_stopped_is_sent_to_drive(
        emulator, drive_env, local_state, tiny_config, tmp_path, working_drive_mount):
    """With ``drive.logs`` set, the rescued state is also sent there, verified: a Colab
    runtime that ends next (a spot VM) loses nothing; ``--resume auto`` finds it on Drive."""
    from trainer.drive import DriveFolder, newest_of_current_run

    spec = "drive:Models/f29/run"
    mount = working_drive_mount
    logs = mount.point / "MyDrive" / "logs"
    os.makedirs(logs)
    run, writer, saver = _policy(tiny_config, logs, DriveFolder(spec, str(logs)))
    saver.drive_spec = spec
    mount.disconnect()
    try:
        with pytest.raises(SaveError) as caught:
            saver.on_fit_epoch_end(run, Position(1, 2, 0), {})
    finally:
        writer.close()
    line = str(caught.value)
    [folder] = [f for f in os.listdir(tmp_path / "tmp") if f.startswith("trainer-rescued-")]
    path = tmp_path / "tmp" / folder / "autosave_00000002.pt"
    assert line.startswith(f"cannot save epoch 1 in {logs}, so training stopped there: its "
                           f"state is saved in {path} on this machine and verified on {spec}. "
                           f"{mount.point} no longer answers"), line
    found = DriveFolder(spec, str(tmp_path / "elsewhere")).checkpoints()
    newest = newest_of_current_run(found)
    assert newest is not None and newest.name == "autosave_00000002.pt", [c.name for c in found]

