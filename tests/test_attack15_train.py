"""Attacks on the trainer's checkpoints and resume (trainer/checkpoint.py, writer.py, resume.py,
drive.py) and the drivestage hooks they call: two runs in one Drive folder, SIGKILL at exact
moments of a save (audit hooks in a real training child), damaged checkpoints on Drive."""
from __future__ import annotations

import hashlib
import io
import os

import pytest
import torch

from trainer import checkpoint as ckpt

FOLDER = "Models/logs"


@pytest.fixture
def drive(emulator, drive_env, local_state):
    return emulator


def _state(run: str, epoch: int, iteration: int) -> dict:
    """A minimal full checkpoint state (what load_checkpoint accepts)."""
    return {"format_version": 2, "model": {"w": torch.full((4,), float(epoch))}, "optimizer": {},
            "epoch": epoch, "iteration": iteration, "epoch_iteration": 0, "config": {},
            "run": run}


def _remote(emu, folder=FOLDER):
    """{name: [md5, ...]} of the live files directly in ``folder``."""
    parent = emu.find(folder)
    out: dict = {}
    for f in emu.files():
        if not f["labels"]["trashed"] and any(p["id"] == parent["id"] for p in f.get("parents", [])):
            out.setdefault(f["title"], []).append(f.get("md5Checksum"))
    return out


def _md5(path) -> str:
    return hashlib.md5(open(path, "rb").read()).hexdigest()


def test_a_second_run_started_before_the_first_pushed_never_replaces_its_checkpoints(drive,
                                                                                      tmp_path):
    """Machine A and machine B start run A and run B in the same drive.logs while it is empty
    (both pass the start-up check). B's epoch_001.pt must not replace A's on Drive."""
    from trainer.drive import DriveFolder

    a, b = tmp_path / "a", tmp_path / "b"
    ckpt.save_checkpoint(_state("run-A", 1, 10), str(a / "epoch_001.pt"))
    ckpt.save_checkpoint(_state("run-B", 1, 10), str(b / "epoch_001.pt"))
    DriveFolder(f"drive:{FOLDER}", str(a)).push()
    assert _remote(drive)["epoch_001.pt"] == [_md5(a / "epoch_001.pt")]
    before = _remote(drive)
    # B's trainer pushes through its background writer: the push leaves A's files and the
    # writer holds that as its error (the run's end raises it: exit 1, not a silent 0).
    from trainer.writer import BackgroundWriter

    writer = BackgroundWriter(str(b), DriveFolder(f"drive:{FOLDER}", str(b)))
    assert writer.close()
    assert _remote(drive) == before
    assert str(writer.last_error) == (
        f"drive:{FOLDER} holds another run's epoch_001.pt, left as they are; "
        f"give this run its own folder: --set drive.logs=<a new Drive folder>")
    found = DriveFolder(f"drive:{FOLDER}", str(tmp_path / "c")).checkpoints()
    assert [(c.name, c.sidecar.run) for c in found] == [("epoch_001.pt", "run-A")]
    # A's next push (epoch 2) goes as before; B's copy of a name A has not used yet goes too.
    ckpt.save_checkpoint(_state("run-A", 2, 20), str(a / "epoch_002.pt"))
    assert DriveFolder(f"drive:{FOLDER}", str(a)).push().other_run == []
    assert _remote(drive)["epoch_002.pt"] == [_md5(a / "epoch_002.pt")]


@pytest.mark.slow
def test_a_run_killed_between_an_epoch_copy_and_its_sidecar_gets_it_verified_on_drive(
        drive, tiny_config, tmp_path, one_torch_thread):
    """The writer writes last.pt (+ last.json), then copies it to epoch_002.pt, then writes
    epoch_002.json. A SIGKILL between the last two (what an audit hook on the rename of
    epoch_002.json's temporary file finds) leaves epoch_002.pt complete without its sidecar;
    before the fix the resumed run pushed it to Drive unverified, for ever, and Drive's newest
    verified checkpoint stayed epoch 1 (a second loss of the machine went back to epoch 1)."""
    from trainer.config import load_config
    from trainer.engine import fit

    kw = {"train.freeze_epochs": 0, "train.save_period": 1, "train.eval_period": 100}
    fit(load_config(tiny_config(**kw, **{"train.epochs": 2})), resume="none")
    logs = tmp_path / "logs"
    os.unlink(logs / "epoch_002.json")              # the state the kill leaves
    fit(load_config(tiny_config(**kw, **{"train.epochs": 3, "drive.logs": f"drive:{FOLDER}"})),
        resume="auto")
    side = ckpt.read_sidecar(str(logs / "epoch_002.pt"))
    assert side is not None and side.md5 == _md5(logs / "epoch_002.pt") and side.epoch == 2
    from trainer.drive import DriveFolder

    found = {c.name: c for c in DriveFolder(f"drive:{FOLDER}", str(tmp_path / "c")).checkpoints()}
    assert {"epoch_002.pt", "epoch_003.pt"} <= set(found)
    assert found["epoch_002.pt"].described.md5 == side.md5


def test_a_local_run_whose_checkpoints_are_all_damaged_does_not_continue_another_run_from_drive(
        drive, tmp_path):
    """The run folder holds run A, every checkpoint of it unreadable (a disk that filled up);
    drive.logs holds only run B (another run's folder). --resume auto must not continue run B
    into run A's folder."""
    from types import SimpleNamespace

    from trainer.drive import DriveFolder
    from trainer.errors import CheckpointError
    from trainer.resume import _decide

    theirs = tmp_path / "theirs"
    ckpt.save_checkpoint(_state("run-B", 5, 50), str(theirs / "epoch_005.pt"))
    DriveFolder(f"drive:{FOLDER}", str(theirs)).push()
    logs = tmp_path / "logs"
    ckpt.save_checkpoint(_state("run-A", 1, 10), str(logs / "epoch_001.pt"))
    with open(logs / "epoch_001.pt", "r+b") as fh:
        fh.truncate(100)
    cfg = SimpleNamespace(train=SimpleNamespace(out_dir=str(logs)))
    with pytest.raises(CheckpointError) as refused:
        _decide(cfg, "auto", DriveFolder(f"drive:{FOLDER}", str(logs)))
    assert str(refused.value) == (
        f"{logs} holds run run-A but drive:{FOLDER} holds checkpoints of run run-B; resuming "
        f"would mix the two runs on Drive. Set drive.logs to the Drive folder of run run-A, or "
        f"move {logs} aside to continue the run on Drive")
    assert sorted(os.listdir(logs)) == ["epoch_001.json", "epoch_001.pt"]
