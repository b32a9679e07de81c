"""attacktrain36: a checkpoint written by a newer trainer (its format_version above this
trainer's), the run's newest, met by --resume auto of an older trainer (a second machine with
an older pinned install, a notebook's older wheel, a downgrade).

It was skipped as a damaged file ("skipping ...: written by a newer trainer; upgrade
trainer"), and the run went on from the next older checkpoint: its saves then replaced the
newer trainer's last.pt (and epoch_NNN.pt of the same names) with a state further back, in the
run folder and, once pushed, on Drive. A newer trainer's checkpoint is no damaged file: the
resume is refused in one line now (upgrade, or --resume PATH an older checkpoint on purpose),
and nothing is written."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import torch
import yaml

from _messages import error_text
from trainer import checkpoint as ckpt
from trainer.config import load_config
from trainer.data.synth import make_synthetic_voc
from trainer.engine import fit
from trainer.errors import TrainerError


def _config(tmp_path: Path, epochs: int) -> str:
    synth = make_synthetic_voc(tmp_path / "data", images=12, classes=2, seed=0,
                               image_size=(64, 96)) if not (tmp_path / "data").exists() else None
    data = tmp_path / "data"
    cfg = {"data": {"classes": str(data / "classes.txt"), "train": str(data / "2007_train.txt"),
                    "val": str(data / "2007_val.txt"), "workers": 0, "root": str(data)},
           "model": {"input_size": 64, "width": 0.25},
           "train": {"epochs": epochs, "freeze_epochs": 0, "batch_size": 4,
                     "freeze_batch_size": 4, "save_period": 1, "eval_period": 1,
                     "out_dir": str(tmp_path / "logs"), "deterministic": True, "device": "cpu",
                     "mosaic": False, "mixup": False}}
    del synth
    path = tmp_path / f"c{epochs}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _as_if_newer(path: Path) -> None:
    """Rewrite the checkpoint at ``path`` as a newer trainer would (format 3), its sidecar
    describing the new bytes (a verified checkpoint of that trainer)."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    state["format_version"] = ckpt.FORMAT_VERSION + 1
    side = ckpt.read_sidecar(str(path))
    assert side is not None
    ckpt.save_checkpoint(state, str(path), saved=side.saved)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_a_newer_trainers_checkpoint_is_not_passed_over_by_resume_auto(tmp_path, one_torch_thread):
    fit(load_config(_config(tmp_path, 1)), resume="none")
    fit(load_config(_config(tmp_path, 2)), resume="auto")
    logs = tmp_path / "logs"
    for name in ("last.pt", "epoch_002.pt"):
        _as_if_newer(logs / name)
    before = {p.name: _md5(p) for p in logs.iterdir() if p.is_file()}

    with pytest.raises(TrainerError) as refused:
        fit(load_config(_config(tmp_path, 3)), resume="auto")

    assert error_text(refused.value) == (
        f"Error: {logs / 'epoch_002.pt'} was written by a newer trainer (format "
        f"{ckpt.FORMAT_VERSION + 1} > {ckpt.FORMAT_VERSION}); upgrade trainer to resume from it")
    assert refused.value.exit_code == 1
    assert {p.name: _md5(p) for p in logs.iterdir() if p.is_file()} == before


def test_from_drive_a_newer_trainers_checkpoint_is_refused_and_drive_keeps_it(
        tmp_path, one_torch_thread, emulator, drive_env, local_state):
    """A fresh machine with the older trainer: Drive's newest checkpoint is the newer
    trainer's. It went back to epoch_001.pt and its pushes replaced epoch_002.pt on Drive
    with a state behind it."""
    from trainer.drive import DriveFolder

    def cfg(epochs: int):
        c = load_config(_config(tmp_path, epochs))
        c.drive.logs = "drive:runs/a"
        return c

    fit(cfg(1), resume="none")
    fit(cfg(2), resume="auto")
    logs = tmp_path / "logs"
    for name in ("last.pt", "epoch_002.pt"):
        _as_if_newer(logs / name)
    DriveFolder("drive:runs/a", str(logs)).push()   # (the newer trainer's saves, verified)
    looked = DriveFolder("drive:runs/a", str(tmp_path / "x"))
    before = {c.name: c.sidecar.md5 for c in looked.checkpoints()}
    assert before["epoch_002.pt"] == _md5(logs / "epoch_002.pt")
    import shutil

    shutil.rmtree(logs)   # (a new machine)

    with pytest.raises(TrainerError) as refused:
        fit(cfg(3), resume="auto")

    assert error_text(refused.value) == (
        f"Error: {logs / 'epoch_002.pt'} was written by a newer trainer (format "
        f"{ckpt.FORMAT_VERSION + 1} > {ckpt.FORMAT_VERSION}); upgrade trainer to resume from it")
    assert {c.name: c.sidecar.md5 for c in looked.checkpoints()} == before
    assert not [n for n in os.listdir(logs) if n.endswith(".pt")] if logs.exists() else True
    # trainer status says what --resume auto does: refuses, naming Drive's file.
    from trainer.status import resume_verdict

    verdict = resume_verdict(looked, looked.checkpoints(), str(tmp_path / "y"))
    assert (verdict.start, verdict.refused) == (None, (
        f"drive:runs/a/epoch_002.pt was written by a newer trainer (format "
        f"{ckpt.FORMAT_VERSION + 1} > {ckpt.FORMAT_VERSION}); upgrade trainer to resume from it"))


def test_a_newer_trainer_that_went_on_on_drive_is_not_overwritten_from_here(
        tmp_path, one_torch_thread, emulator, drive_env, local_state):
    """This machine holds epoch 1 of the run; another machine, with a newer trainer, went on
    to epoch 2 on Drive. --resume auto here went on from the local epoch_001.pt (Drive's
    newer one "cannot be used"), and its push replaced epoch_002.pt on Drive."""
    import shutil

    from trainer.drive import DriveFolder

    def cfg(epochs: int, out: str):
        c = load_config(_config(tmp_path, epochs))
        c.drive.logs, c.train.out_dir = "drive:runs/a", str(tmp_path / out)
        return c

    fit(cfg(1, "here"), resume="none")
    shutil.copytree(tmp_path / "here", tmp_path / "there")
    fit(cfg(2, "there"), resume="auto")
    _as_if_newer(tmp_path / "there" / "epoch_002.pt")
    DriveFolder("drive:runs/a", str(tmp_path / "there")).push()
    looked = DriveFolder("drive:runs/a", str(tmp_path / "x"))
    before = {c.name: c.sidecar.md5 for c in looked.checkpoints()}
    assert before["epoch_002.pt"] == _md5(tmp_path / "there" / "epoch_002.pt")
    here = {p.name: _md5(p) for p in (tmp_path / "here").iterdir() if p.is_file()}

    with pytest.raises(TrainerError) as refused:
        fit(cfg(3, "here"), resume="auto")

    assert error_text(refused.value) == (
        f"Error: {tmp_path / 'here' / 'epoch_002.pt'} was written by a newer trainer (format "
        f"{ckpt.FORMAT_VERSION + 1} > {ckpt.FORMAT_VERSION}); upgrade trainer to resume from it")
    assert {c.name: c.sidecar.md5 for c in looked.checkpoints()} == before
    assert {p.name: _md5(p) for p in (tmp_path / "here").iterdir() if p.is_file()} == here
