"""trainlefts46 (1): the trainer's own sends to ``drive.logs`` (the last epoch's ``last.pt`` sent
as ``epoch_NNN.pt``, epochkeep32; a stop's save sent alone) went beside a Drive *folder* of the
file's name, which the push refuses (attackpush45): every pull of the folder then refused the
name ("names 2 items"), and the run's next walk push refused the run folder. Now nothing is
sent there: the state stays in the run folder, and the line says why and what to do.

A real tmpfs that fills, the real save policy, writer and DriveFolder against the emulator."""
from __future__ import annotations

import os

import pytest

from _tempdir import own_tempdir  # noqa: F401  (an autouse fixture)
from _save_policy import epoch_1_on_drive, last_epoch_ends
from _tmpfs import small_disk  # noqa: F401  (fixture)
from drivestage.errors import FolderInTheWayError
from test_epochkeep32_drive import _room_for_last_pt_only
from test_lastkeep32_drive import SPEC, _left
from test_train28_hung_disk import _policy
from trainer import checkpoint as ckpt

FOLDER = SPEC.split(":", 1)[1]


def _there(drive) -> list[tuple[str, bool]]:
    """(name, is a folder) of everything in the run's Drive folder named epoch_002.*"""
    store = drive._store
    return sorted((e.name, e.is_dir) for e in store.list(store.resolve(FOLDER))
                  if e.name.startswith("epoch_002."))


def test_the_last_epochs_copy_is_not_sent_beside_a_drive_folder_of_its_name(
        emulator, drive_env, local_state, tiny_config, small_disk):
    """last.pt written, epoch_002.pt not (the disk full in between), and Drive's run folder
    holds a folder ``epoch_002.pt`` (the user's): before, last.pt went beside it as a file
    ``epoch_002.pt`` (the line: "sent … verified there"). Now nothing goes; the line names
    the folder and says to rename it; last.pt keeps the epoch."""
    from trainer.drive import DriveFolder

    logs = small_disk(64 << 20) / "logs"
    drive = DriveFolder(SPEC, str(logs))
    run, writer, saver = _policy(tiny_config, logs, drive)
    try:
        epoch_1_on_drive(run, writer, saver)
        _room_for_last_pt_only(logs)
        emulator.add_file(f"{FOLDER}/epoch_002.pt/mine.txt", b"the user's")
        ended = last_epoch_ends(run, saver)
    finally:
        writer.close()
    assert str(ended) == (
        f"could not write epoch_002.pt (epoch 2) in {logs}: [Errno 28] No space left on device; "
        f"the state of epoch 2 is in last.pt, not sent to {SPEC} ({SPEC}/epoch_002.pt exists "
        f"and is a folder, not a file; this run's epoch_002.pt cannot be sent there: rename "
        f"that folder on Drive): free some space and run the same command again to make them "
        f"from it (it trains nothing more)"), str(ended)
    assert ended.exit_code == 1
    assert _there(drive) == [("epoch_002.pt", True)]   # no file beside it, no sidecar
    side = ckpt.read_sidecar(str(logs / "last.pt"))
    assert side is not None and side.epoch == 2 and _left() == []
    assert emulator.find(f"{FOLDER}/epoch_002.pt/mine.txt") is not None   # the user's, kept


def test_a_save_sent_alone_refuses_a_folder_of_its_sidecars_name_before_a_byte_is_sent(
        emulator, drive_env, local_state, tmp_path):
    """A folder of the sidecar's name (``epoch_002.json``): the checkpoint is not sent either
    (a checkpoint no sidecar vouches for, left beside it), and the error is the push's."""
    from test_messages_attack18 import _tiny_state
    from trainer.drive import DriveFolder

    path = ckpt.save_checkpoint(_tiny_state(2), str(tmp_path / "logs" / "epoch_002.pt"))
    emulator.add_folder(f"{FOLDER}/epoch_002.json")
    drive = DriveFolder(SPEC, str(tmp_path / "logs"))
    with pytest.raises(FolderInTheWayError) as refused:
        drive.send_alone([path, ckpt.sidecar_path(path)])
    assert str(refused.value) == (
        f"{SPEC}/epoch_002.json exists and is a folder, not a file; this run's epoch_002.json "
        f"cannot be sent there: rename that folder on Drive")
    assert _there(drive) == [("epoch_002.json", True)]
    assert os.path.exists(path)


# --------------------------------------------------------------------------- 4: the room

def test_another_machines_fetch_of_rank_0s_checkpoint_asks_for_the_room_first(
        emulator, drive_env, local_state, tmp_path, small_disk):
    """Multi-machine DDP: a machine without rank 0's checkpoint fetches it by id into its run
    folder. It did so with no look at the room (the other fetches ask: lefts45): a large one
    filled the disk, then ENOSPC. Now one line says what it needs and where; nothing is
    fetched, nothing left in the folder."""
    import hashlib
    import re

    from drivestage.errors import DiskSpaceError
    from drivestage.remote import open_store
    from test_lefts45_lone_room import _media
    from trainer.resume import Chosen, ensure_local_checkpoint

    data = bytes(range(256)) * 1024   # 256 KiB
    fid = emulator.add_file(f"{FOLDER}/epoch_004.pt", data)
    store, path = open_store(f"{SPEC}/epoch_004.pt")
    chosen = Chosen(f"{SPEC}/epoch_004.pt", hashlib.md5(data).hexdigest(), len(data),
                    store.resolve(path))
    logs = small_disk(64 * 1024) / "logs"
    since = len(emulator.requests)
    with pytest.raises(DiskSpaceError) as refused:
        ensure_local_checkpoint(str(logs / "epoch_004.pt"), chosen)
    assert re.fullmatch(
        rf"not enough free disk space in {re.escape(str(logs))} to fetch "
        rf"{re.escape(SPEC)}/epoch_004\.pt \(the checkpoint rank 0 resumes from\) for this "
        rf"machine: needs 256\.0 KiB \({len(data)} bytes\), only \d+(\.\d)? KiB \(\d+ bytes\) "
        r"free; free some space on this machine and run the same command \(Drive keeps it\)",
        str(refused.value)), refused.value
    assert _media(emulator, since, fid) == [] and list(logs.iterdir()) == []
