"""epochkeep32: the last epoch's state reaches ``drive.logs`` in the cases lastkeep32 left.

1. The run folder's disk full between ``last.pt`` and its copy ``epoch_NNN.pt`` at the LAST
   epoch's save: the line said ``the state of epoch 2 is in last.pt``, and last.pt never goes
   to Drive (on Colab the run folder is lost at a disconnect). Now last.pt is sent as
   ``epoch_002.pt`` (verified), and a fresh machine's ``--resume auto`` finds it.
2. Drive's run folder holding ANOTHER run's ``epoch_002.pt``: the kept state was sent beside it
   (two files of one name). Now it is not sent; the line names the other run and the /tmp copy.
3. A stop while the last epoch's save was still queued: the final close spent the grace, and
   the kept state's send always ended "not yet verified". Now the close ends at 3/4 of it.

A real tmpfs that fills, the real save policy, writer and DriveFolder against the emulator."""
from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
from types import SimpleNamespace

import pytest

from _tempdir import own_tempdir  # noqa: F401  (an autouse fixture)
from _save_policy import epoch_1_on_drive, last_epoch_ends
from _tmpfs import small_disk  # noqa: F401  (fixture)
from drivestage.localfs import file_md5
from test_attack18_train import _fill
from test_lastkeep32_drive import SPEC, _last_epoch_on_a_full_disk, _left, _on_drive
from test_train28_hung_disk import _policy
from trainer import checkpoint as ckpt
from trainer.state import Position


def _room_for_last_pt_only(logs) -> None:
    """The disk fills, leaving room for one checkpoint: last.pt, not its copy epoch_002.pt.
    (Epoch 1's last.pt goes first: replaced, it freed its room for the copy.)"""
    size = os.path.getsize(logs / "last.pt")
    os.unlink(logs / "last.pt")
    _fill(str(logs), leave=size + (12 << 10))   # (its pages and its sidecar's)


def test_the_last_epochs_copy_refused_by_a_full_disk_is_sent_from_last_pt(
        emulator, drive_env, local_state, tiny_config, small_disk, tmp_path):
    """last.pt written, epoch_002.pt not (the disk full in between): last.pt's bytes and
    sidecar go to Drive as epoch_002.pt/.json, and a fresh machine resumes from them."""
    from trainer import distributed
    from trainer.drive import DriveFolder
    from trainer.resume import choose

    logs = small_disk(64 << 20) / "logs"
    drive = DriveFolder(SPEC, str(logs))
    run, writer, saver = _policy(tiny_config, logs, drive)
    try:
        epoch_1_on_drive(run, writer, saver)
        _room_for_last_pt_only(logs)
        ended = last_epoch_ends(run, saver)
    finally:
        writer.close()
    text = str(ended)
    assert text == (
        f"could not write epoch_002.pt (epoch 2) in {logs}: [Errno 28] No space left on device; "
        f"the state of epoch 2 is in last.pt and is sent from it to {SPEC}/epoch_002.pt, "
        f"verified there (--resume auto goes on from it on another machine): free some space "
        f"and run the same command again to make them from it (it trains nothing more)"), text
    assert not os.path.exists(logs / "epoch_002.pt") and _left() == []
    there = _on_drive(drive)
    assert there["epoch_002.pt"] == file_md5(str(logs / "last.pt"))
    assert there["epoch_002.json"] == file_md5(str(logs / "last.json"))
    fresh = tmp_path / "fresh"
    cfg = SimpleNamespace(train=SimpleNamespace(out_dir=str(fresh)))
    start = choose(cfg, "auto", distributed.env_info(), DriveFolder(SPEC, str(fresh)))
    assert start.where == f"{SPEC}/epoch_002.pt"
    side = ckpt.read_sidecar(start.path)
    assert side.md5 == there["epoch_002.pt"] and (side.epoch, side.iteration) == (2, 4)


def test_the_last_epochs_copy_drive_refuses_says_why(
        emulator, drive_env, local_state, fast_retries, tiny_config, small_disk):
    """Drive refusing it: the line as before, and why it is on this machine only."""
    from trainer.drive import DriveFolder

    logs = small_disk(64 << 20) / "logs"
    run, writer, saver = _policy(tiny_config, logs, DriveFolder(SPEC, str(logs)))
    try:
        saver.on_fit_epoch_end(run, Position(1, 2, 0), {})
        assert writer.wait(saver._epoch_job)
        assert writer.wait_pushed(writer.push_soon(), time.monotonic() + 30)
        _room_for_last_pt_only(logs)
        emulator.faults.inject("POST", r"/upload/", reason="storageQuotaExceeded", times=None)
        ended = last_epoch_ends(run, saver)
    finally:
        writer.close()
    text = str(ended)
    head = (f"could not write epoch_002.pt (epoch 2) in {logs}: [Errno 28] No space left on "
            f"device; the state of epoch 2 is in last.pt, not sent to {SPEC} (Not enough Drive "
            f"storage")
    assert text.startswith(head) and text.endswith(
        "): free some space and run the same command again to make them from it (it trains "
        "nothing more)"), text


def test_a_kept_state_is_not_sent_beside_another_runs_file_of_its_name(
        emulator, drive_env, local_state, tiny_config, small_disk, tmp_path):
    """Drive's folder holds another run's epoch_002.pt: ours is not added beside it (two
    files of one name); the line names that run and keeps the /tmp copy; theirs stays."""
    from trainer.drive import DriveFolder

    from test_messages_attack18 import _tiny_state

    theirs = ckpt.save_checkpoint(_tiny_state(2, "20261201-other"),
                                  str(tmp_path / "other" / "epoch_002.pt"))
    text, logs, drive = _last_epoch_on_a_full_disk(
        tiny_config, small_disk, then=lambda: DriveFolder(SPEC, str(tmp_path / "other"))
        .send_alone([theirs, ckpt.sidecar_path(theirs)]))
    kept = "; its state is saved in "
    path = text.split(kept, 1)[1].split(" ", 1)[0]
    assert text.endswith(
        f"{kept}{path} on this machine, not sent to {SPEC} (it holds another run's "
        f"epoch_002.pt, of run 20261201-other; sent, two files of one name would be "
        f"there): free some space, then --resume {path} goes on from it (copy it off this "
        f"machine while it lasts)"), text
    assert _left() == [os.path.basename(os.path.dirname(path))]
    store = drive._store
    named = [e for e in store.list(store.resolve("Models/lk32/run"))
             if e.name in ("epoch_002.pt", "epoch_002.json")]
    assert sorted((e.name, e.md5) for e in named) == sorted(
        [("epoch_002.pt", file_md5(theirs)), ("epoch_002.json", file_md5(
            ckpt.sidecar_path(theirs)))])


def test_a_stop_before_the_last_epochs_save_is_written_leaves_its_send_a_share_of_the_grace(
        emulator, drive_env, local_state, tiny_config, tmp_path, monkeypatch):
    """The writer held by a slow write as the last epoch's save is queued, then a SIGTERM:
    the close waited the whole grace, and the state kept in /tmp was never verified on
    Drive. The close now ends at 3/4 of the grace; the send is verified within it.
    (A grace of 4 s: at 2 s its quarter, 0.5 s to write the state into /tmp and send and
    verify two files, was missed at load 16 on two cores, 2 of 18 runs.)"""
    from test_messages_attack18 import _SlowToWrite, _run, _tiny_state
    from trainer.config import load_config
    from trainer.errors import TrainingInterrupted
    from trainer.writer import SaveJob

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    cfg = load_config(tiny_config(**{"drive.logs": "drive:Models/ek32/logs", "train.epochs": 2,
                                     "train.grace_seconds": 4.0}))
    run = _run(cfg, drive=True)
    run.state.pos = Position(1, 2, 0)
    run.checkpointer.on_fit_epoch_end(run, run.state.pos, {"epoch": 1, "map50": 0.5})
    assert run.writer.wait(run.checkpointer._epoch_job)
    go = threading.Event()
    slow = SaveJob({**_tiny_state(1, run.state.run), "epoch_iteration": 1, "iteration": 3,
                    "slow": _SlowToWrite(go)}, ["autosave_00000003.pt"], Position(1, 3, 1))
    run.writer.submit(slow)
    deadline = time.monotonic() + 30
    while run.writer._current is not slow:
        assert time.monotonic() < deadline, "the slow save was never taken up"
        time.sleep(0.01)
    run.state.pos = Position(2, 4, 0)
    run.checkpointer.on_fit_epoch_end(run, run.state.pos, {"epoch": 2, "map50": 0.6})
    run.stop.request(signal.SIGTERM)
    try:
        with pytest.raises(TrainingInterrupted) as stopped:
            run.checkpointer.on_fit_end(run)
        took = time.monotonic() - run.stop.at
    finally:
        go.set()
        assert run.writer.close() is True
    assert took <= 4.0 + 0.5, took   # (never past the grace: a SIGKILL comes there)
    assert str(stopped.value) == (
        "stopped by SIGTERM while the checkpoint of epoch 2 (last.pt, epoch_002.pt, best.pt) "
        "was still to be written; its state is sent to drive:Models/ek32/logs/epoch_002.pt from "
        "a temporary folder of this machine instead and verified there (the temporary copy is "
        "removed): --resume auto goes on from it"), str(stopped.value)
