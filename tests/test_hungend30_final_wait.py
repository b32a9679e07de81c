"""The end of a run whose final flush waits on a Google Drive mount that hangs (hungend30).

``drive.logs=/content/drive/MyDrive/...`` (or ``train.out_dir`` there): the run's last push
(and its last epoch's write) was waited for without a bound when no stop was asked. A
DriveFS that stops answering (tests/_drivemount.py's ``hang()``: every call into the mount
waits) held ``on_fit_end`` for as long as it hung: an unattended Colab cell, and its compute
units, for good (mount30 found it: still waiting after 8 s, done once the mount answered).
Now the folders the wait is on are listed while it waits, and one that has not answered for
``trainer.final_wait.HUNG_END_S`` ends it: one line, what is complete on this machine and the push
to run, exit 1.
"""
from __future__ import annotations

import os
import tempfile
from typing import Optional

import pytest

from _drivemount import working_drive_mount  # noqa: F401 (fixture)
from drivestage.interrupts import BackgroundThread
from trainer.errors import SaveError
from trainer.state import Position


@pytest.fixture(autouse=True)
def _temporary_folders_here(tmp_path, monkeypatch):
    """A rescued copy goes under this test's folder (``tempfile.tempdir``, as TMPDIR does)."""
    here = tmp_path / "tmp"
    here.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(here))


def _policy(tiny_config, logs, drive=None, **overrides):
    from test_trainer22_hostile import _config, _small_run
    from trainer.saving import Checkpointer
    from trainer.writer import BackgroundWriter

    run = _small_run(tiny_config, logs)
    run.cfg = _config(tiny_config, logs, **overrides)
    writer = BackgroundWriter(str(logs), drive)
    saver = Checkpointer(run.cfg, run.info, writer, run.stop, clock=lambda: 0.0)
    saver.final_wait.patience = 0.5   # (300 s by default: trainer.final_wait.HUNG_END_S)
    return run, writer, saver


def _fit_end(saver, run) -> list:
    """``on_fit_end`` on a thread of its own: what it raised, or ["still waiting"] after 8 s."""
    got: list = []

    def end() -> None:
        try:
            saver.on_fit_end(run)
            got.append(None)
        except BaseException as exc:   # (looked at below)
            got.append(exc)

    if not BackgroundThread(end, "test-fit-end").start().join(8.0):
        return ["still waiting"]
    return got


def test_a_final_push_into_a_hung_drive_mount_ends_the_run_in_one_line(
        local_state, tiny_config, tmp_path, working_drive_mount):
    from trainer.drive import DriveFolder

    mount = working_drive_mount
    logs = tmp_path / "logs"
    spec = str(mount.point / "MyDrive" / "Models" / "run")
    run, writer, saver = _policy(tiny_config, logs, DriveFolder(spec, str(logs)),
                                 **{"drive.logs": spec})
    try:
        saver.on_fit_epoch_end(run, Position(1, 2, 0), {})
        assert writer.wait(saver._epoch_job)
        mount.hang()   # DriveFS stops answering (not ended: no ENOTCONN)
        saver.on_fit_epoch_end(run, Position(2, 4, 0), {})
        got = _fit_end(saver, run)
        assert isinstance(got[0], SaveError), got
        assert got[0].exit_code == 1
        assert str(got[0]) == (
            f"the final push of {logs} to {spec} has not ended: {spec} did not answer for "
            f"0.5 s ({mount.point} is a Google Drive mount: stopped answering?); the "
            f"checkpoints in {logs} are complete on this machine, the newest epoch_002.pt "
            f"(epoch 2, iteration 4), and Drive may lack any of them: upload the run with "
            f"drivestage push {logs} drive:Models/run before this machine goes (it sends "
            "what Drive lacks)")
        # The engine closes again on the way out (on_interrupt): no second wait, no line.
        assert saver._close(push_error=False) is False
    finally:
        mount.answer()
        writer.close()
    assert {"epoch_002.pt", "epoch_002.json"} <= set(os.listdir(logs))


def test_a_mount_that_answers_again_within_the_bound_ends_the_run_as_usual(
        local_state, tiny_config, tmp_path, working_drive_mount):
    """A DriveFS that hangs for less than the bound (under load) is waited for: the run ends
    as it did, every checkpoint pushed into the mount."""
    from trainer.drive import DriveFolder

    mount = working_drive_mount
    logs = tmp_path / "logs"
    spec = str(mount.point / "MyDrive" / "Models" / "run")
    run, writer, saver = _policy(tiny_config, logs, DriveFolder(spec, str(logs)),
                                 **{"drive.logs": spec})
    saver.final_wait.patience = 30.0
    got: list = []
    try:
        mount.hang()
        saver.on_fit_epoch_end(run, Position(2, 4, 0), {})
        end = BackgroundThread(lambda: got.append(saver.on_fit_end(run)), "test-fit-end").start()
        assert not end.join(1.0)   # (waiting on the mount, its listing looked at meanwhile)
        mount.answer()
        assert end.join(8.0) and got == [None]
    finally:
        mount.answer()
        writer.close()
    assert "MyDrive/Models/run/epoch_002.pt" in mount.cached()


def unwritten_end(tiny_config, mount, taken: Optional[list] = None) -> tuple:
    """``train.out_dir`` in the mount, no ``drive.logs``, the mount hanging as the last
    epoch is saved: what ``on_fit_end`` raised, and the run folder (into ``taken``: when
    the last epoch's state was taken)."""
    logs = mount.point / "MyDrive" / "logs"
    run, writer, saver = _policy(tiny_config, logs)
    try:
        mount.hang()
        saver.on_fit_epoch_end(run, Position(2, 4, 0), {})
        (taken if taken is not None else []).append(saver._epoch_job.taken)
        return _fit_end(saver, run)[0], logs
    finally:
        mount.answer()
        writer.close()


def test_a_final_write_into_a_hung_run_folder_mount_ends_the_run_in_one_line(
        tiny_config, tmp_path, working_drive_mount):
    """``train.out_dir`` in the mount, no ``drive.logs``: the last epoch's write waits on it.
    Its state, still in memory, is written on this machine's disk and named."""
    mount = working_drive_mount
    taken: list = []
    got, logs = unwritten_end(tiny_config, mount, taken)
    assert isinstance(got, SaveError), got
    text = str(got)
    head = (f"the checkpoint of epoch 2 (last.pt, epoch_002.pt) is not written: {logs} did "
            f"not answer for 0.5 s ({mount.point} is a Google Drive mount: stopped "
            "answering?); its state is saved in ")
    assert text.startswith(head), text
    path = text[len(head):].split(" ", 1)[0]
    assert text == (head + f"{path} on this machine: --resume {path} goes on from it "
                    f"(copy it to Drive while this machine lasts)")
    assert path.endswith("/epoch_002.pt") and os.path.isfile(path)
    from drivestage.localfs import file_md5
    from trainer import checkpoint as ckpt

    assert ckpt.read_sidecar(path).md5 == file_md5(path)   # (what --resume takes)
    # Dated when the state was taken, as every save of the run (not when it was rescued,
    # half a second on here, minutes on Colab: stopleft31).
    assert ckpt.read_sidecar(path).saved == taken[0]


def test_with_drive_logs_set_the_rescued_state_goes_to_drive_with_the_push_the_line_gives(
        emulator, drive_env, local_state, tiny_config, tmp_path, working_drive_mount):
    """``train.out_dir`` in the hung mount, ``drive.logs=drive:...``: the line's push, run as
    given, puts the last epoch's state on Drive where ``--resume auto`` takes it."""
    import shlex

    from click.testing import CliRunner

    from drivestage.cli import cli
    from trainer.drive import DriveFolder, newest_of_current_run

    spec = "drive:Models/h30/run"
    mount = working_drive_mount
    logs = mount.point / "MyDrive" / "logs"
    run, writer, saver = _policy(tiny_config, logs, DriveFolder(spec, str(logs)),
                                 **{"drive.logs": spec})
    run.state.pos = Position(2, 4, 0)   # (the state of the last epoch, as fit has it)
    try:
        mount.hang()
        saver.on_fit_epoch_end(run, Position(2, 4, 0), {})
        got = _fit_end(saver, run)[0]
    finally:
        mount.answer()
        writer.close(push=False)
    assert isinstance(got, SaveError), got
    text = str(got)
    assert "; its state is saved in " in text and text.endswith(
        " before this machine goes (--resume auto then goes on from it), or here --resume "
        + text.rsplit(" ", 1)[1]), text
    push = text.split("upload it with ", 1)[1].split(" before this machine goes")[0]
    args = shlex.split(push)
    assert args[:2] == ["drivestage", "push"] and args[3] == spec, push
    result = CliRunner().invoke(cli, args[1:])
    assert result.exit_code == 0, result.output
    newest = newest_of_current_run(DriveFolder(spec, str(tmp_path / "elsewhere")).checkpoints())
    assert newest is not None and newest.name == "epoch_002.pt"
    assert newest.sidecar.run == run.state.run and newest.sidecar.epoch == 2


def test_a_stop_s_write_on_a_slow_disk_is_not_said_to_be_a_disk_that_does_not_answer(
        tmp_path, monkeypatch, caplog):
    """stop30 left it: at half a stop's grace the writer warned "the disk does not answer (a
    hung network or FUSE mount?)" of a disk merely slow, just before the stop's line said it
    answers. Worded now by what was measured: its folder lists at once."""
    import logging
    import time

    import torch

    from test_stop30_slow_disk import SlowDisk
    from trainer.writer import BackgroundWriter, SaveJob

    logs = tmp_path / "logs"
    logs.mkdir()
    disk = SlowDisk(monkeypatch, str(logs))
    writer = BackgroundWriter(str(logs))
    state = {"format_version": 1, "model": {"w": torch.zeros(2)}, "optimizer": {}, "epoch": 1,
             "config": {}}
    job = SaveJob(state, ["autosave_00000003.pt"], Position(1, 3, 1))
    try:
        with caplog.at_level(logging.WARNING, logger="trainer.writer"):
            writer.write_now(job, time.monotonic() + 0.4, patience=0.5)   # (waited 0.2 s)
    finally:
        disk.ends()
        writer.close()
    assert job.ended is not None and job.ended.wait(10) and job.written, job.error
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and said[0].startswith(
        f"writing autosave_00000003.pt in {logs} has not ended for 0 s, though its folder "
        "lists at once: the disk answers, but slowly; the saves after it wait for it"), said
