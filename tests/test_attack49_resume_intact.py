"""attack49: ``--resume auto`` from Drive when the newest checkpoint's bytes arrive damaged.

Drive holds epoch 4 and epoch 7 of the run, each verified (its md5 is the one its sidecar
names); the run folder is empty (a new VM). A byte of epoch_007.pt is flipped on the way in
two answers running (a flaky link, a proxy: the emulator's ``corrupt`` fault): the download
fails its check twice (ChecksumMismatchError). On main the resume took that as "cannot be
used" and went back to epoch 4 (a WARNING): three epochs trained again, and the saves of
the new line then leave epoch 7 behind on Drive, for retention to remove. The bytes on Drive
were never at fault. Now the resume stops (one line, "run again"), and the rerun, over a
link that behaves, goes on from epoch 7.
"""
from __future__ import annotations

import os
import types

import pytest

from _messages import renders, shown
from trainer import checkpoint as ckpt
from trainer.errors import CheckpointError

FOLDER = "Models/a49/logs"


def _decide(out_dir):
    from trainer.drive import DriveFolder
    from trainer.resume import _decide as decide

    cfg = types.SimpleNamespace(train=types.SimpleNamespace(out_dir=str(out_dir)))
    return decide(cfg, "auto", DriveFolder(f"drive:{FOLDER}", str(out_dir)))


def _put(emulator, path: str) -> str:
    """The checkpoint at ``path`` and its sidecar on Drive: the checkpoint's id."""
    ids = [emulator.add_file(f"{FOLDER}/{os.path.basename(p)}", p)
           for p in (path, ckpt.sidecar_path(path))]
    return ids[0]


def _state(epoch: int) -> dict:
    return {"format_version": ckpt.FORMAT_VERSION, "model": {}, "optimizer": {}, "epoch": epoch,
            "iteration": epoch * 10, "epoch_iteration": 0, "config": {}, "run": "r1"}


@renders('did not arrive as Drive holds it (… the downloaded bytes do not match Drive')
def test_a_newest_checkpoint_damaged_in_transit_twice_never_sends_the_resume_back(
        emulator, drive_env, local_state, tmp_path):
    logs, made = tmp_path / "logs", tmp_path / "made"
    _put(emulator, ckpt.save_checkpoint(_state(4), str(made / "epoch_004.pt")))
    newest = _put(emulator, ckpt.save_checkpoint(_state(7), str(made / "epoch_007.pt")))
    emulator.faults.corrupt(newest, times=2)
    with pytest.raises(CheckpointError) as stop:
        _decide(logs)
    assert str(stop.value).startswith(
        f"drive:{FOLDER}/epoch_007.pt, the checkpoint of run r1 to go on from, did not arrive "
        f"as Drive holds it (drive:{FOLDER}/epoch_007.pt: the downloaded bytes do not match "
        "Drive (expected "), stop.value
    assert str(stop.value).endswith(
        "--resume auto does not go back to an older one for that. Run again (Drive keeps it); "
        "if it persists, check what lies between here and Drive (a proxy?), or --resume a "
        "checkpoint file you have"), stop.value
    shown('did not arrive as Drive holds it (… the downloaded bytes do not match Drive', str(stop.value))
    # Nothing of it left in the run folder (no copy, no partial); epoch 4 not fetched.
    assert not logs.exists() or [n for n in os.listdir(logs)
                                 if not n.startswith(".drivestage")] == []
    start = _decide(logs)                          # the rerun: the link behaves now
    assert start.path == str(logs / "epoch_007.pt"), start
    assert ckpt.load_checkpoint(start.path)["epoch"] == 7
