"""trainer22: resume from hostile checkpoints (a file on Drive or in the run folder that is a
trainer checkpoint in form but not one this run can go on from). Each is refused with one
line before a step is trained, and no checkpoint is deleted or rewritten."""
from __future__ import annotations

import hashlib
import os

import pytest
import torch

from trainer import checkpoint as ckpt
from trainer.callbacks import Callback


def _config(tiny_config, out_dir, **overrides):
    from trainer.config import load_config

    kw = {"train.freeze_epochs": 0, "train.epochs": 2, "train.save_period": 1,
          "train.eval_period": 100, "train.mosaic": False, "train.mixup": False,
          "train.out_dir": str(out_dir), **overrides}
    return load_config(tiny_config(**kw))


class _Steps(Callback):
    def __init__(self) -> None:
        self.steps = 0

    def on_train_batch_start(self, run, pos) -> None:
        self.steps += 1


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synth_voc):
    """One epoch of the tiny run (its epoch_001.pt), made once for the module."""
    import yaml

    from trainer.config import load_config
    from trainer.engine import fit

    root = tmp_path_factory.mktemp("trained")
    cfg = {"data": {"classes": str(synth_voc.classes_file), "train": str(synth_voc.train_lines_file),
                    "val": str(synth_voc.val_lines_file), "workers": 0, "root": str(root / "data")},
           "model": {"input_size": 64, "width": 0.25},
           "train": {"epochs": 1, "freeze_epochs": 0, "batch_size": 8, "save_period": 1,
                     "eval_period": 100, "out_dir": str(root / "logs"), "deterministic": True,
                     "device": "cpu", "mosaic": False, "mixup": False}}
    (root / "c.yaml").write_text(yaml.safe_dump(cfg))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fit(load_config(str(root / "c.yaml")), resume="none")
    finally:
        torch.set_num_threads(before)
    return root / "logs" / "epoch_001.pt"


def _md5s(folder) -> dict:
    return {n: hashlib.md5(open(os.path.join(folder, n), "rb").read()).hexdigest()
            for n in sorted(os.listdir(folder)) if n.endswith((".pt", ".json"))}


def _hostile(trained, logs, change) -> None:
    """``logs/epoch_001.pt``: the trained checkpoint changed by ``change(state)``, with a
    sidecar that vouches for it (what a buggy or foreign trainer would push)."""
    state = torch.load(trained, weights_only=True)
    change(state)
    ckpt.save_checkpoint(state, str(logs / "epoch_001.pt"))


def _resume_refused(tiny_config, tmp_path, trained, change):
    from trainer.engine import fit
    from trainer.errors import CheckpointError

    logs = tmp_path / "logs"
    _hostile(trained, logs, change)
    before = _md5s(logs)
    steps = _Steps()
    with pytest.raises(CheckpointError) as refused:
        fit(_config(tiny_config, logs), resume="auto", callbacks=[steps])
    assert steps.steps == 0
    assert _md5s(logs) == before                     # nothing deleted nor rewritten
    text = str(refused.value)
    assert "\n" not in text and refused.value.exit_code == 1
    return text


def _nan_model(state):
    key = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][key][0] = float("nan")


def _inf_ema(state):
    key = next(k for k, v in state["ema"]["model"].items() if v.is_floating_point())
    state["ema"]["model"][key].fill_(float("inf"))


def _ema_of_another_shape(state):
    key = next(k for k, v in state["ema"]["model"].items() if v.dim() == 4)
    state["ema"]["model"][key] = state["ema"]["model"][key][:, :1].clone()


def _optimizer_of_another_model(state):
    group = state["optimizer"]["param_groups"][0]
    group["params"] = group["params"][:-1]


def _momentum_of_another_shape(state):
    first = next(iter(state["optimizer"]["state"]))
    state["optimizer"]["state"][first]["momentum_buffer"] = torch.zeros(3)


CASES = [
    (_nan_model, "its model weights hold NaN or infinite values (1 tensor, e.g. "),
    (_inf_ema, "its EMA weights hold NaN or infinite values (1 tensor, e.g. model."),
    (_ema_of_another_shape, "the EMA does not match"),
    (_optimizer_of_another_model, "the optimizer state does not match"),
    (_momentum_of_another_shape, "the optimizer state does not match"),
]


@pytest.mark.slow
@pytest.mark.parametrize("change, said", CASES)
def test_a_hostile_checkpoint_is_refused_in_one_line_before_a_step(
        tiny_config, tmp_path, trained, one_torch_thread, change, said):
    text = _resume_refused(tiny_config, tmp_path, trained, change)
    assert text.startswith(f"cannot resume from {tmp_path / 'logs' / 'epoch_001.pt'}: "), text
    assert said in text, text


# ------------------------------------------------ the same, fast: restore() of a small run

def _small_run(tiny_config, out_dir):
    """A real Run (model with EMA, SGD with momentum after one step) around a one-layer net."""
    from test_messages_train import CLASSES
    from trainer import distributed
    from trainer.config import model_signature
    from trainer.engine import Run
    from trainer.optim import LRSchedule, ModelEMA
    from trainer.saving import Checkpointer
    from trainer.state import TrainState
    from trainer.stopping import StopFlag

    cfg = _config(tiny_config, out_dir)
    os.makedirs(out_dir, exist_ok=True)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    model(torch.ones(2, 3, 5, 5)).sum().backward()
    opt.step()
    info, stop = distributed.env_info(), StopFlag(60)
    return Run(cfg, info, torch.device("cpu"), model, None, opt, ModelEMA(model),
               torch.amp.GradScaler("cpu", enabled=False), LRSchedule(cfg), list(CLASSES),
               model_signature(cfg, len(CLASSES)), TrainState(), stop,
               Checkpointer(cfg, info, None, stop), None)


@pytest.mark.parametrize("change, said", CASES)
def test_restore_refuses_a_hostile_checkpoint_in_one_line(tiny_config, tmp_path, change, said):
    from trainer.errors import CheckpointError
    from trainer.resume import Start, restore
    from trainer.resume_checks import REMEDY
    from trainer.saving import snapshot

    logs = tmp_path / "logs"
    run = _small_run(tiny_config, logs)
    state = snapshot(run)
    state.update(epoch=1, iteration=2, epoch_iteration=0)
    change(state)
    path = ckpt.save_checkpoint(state, str(logs / "epoch_001.pt"))
    before = _md5s(logs)
    fresh = _small_run(tiny_config, tmp_path / "other")
    with pytest.raises(CheckpointError) as refused:
        restore(fresh, Start(run="new", path=path, where=path))
    text = str(refused.value)
    assert "\n" not in text and text.startswith(f"cannot resume from {path}: "), text
    assert said in text, text
    assert text.endswith(f"; {REMEDY}")
    assert _md5s(logs) == before


@pytest.mark.slow
def test_a_nan_checkpoint_on_drive_is_refused_and_drive_keeps_every_file(
        emulator, drive_env, local_state, tiny_config, tmp_path, trained, one_torch_thread):
    """A fresh machine resumes from Drive; the newest verified checkpoint there has NaN weights
    (pushed by a run that diverged): refused in one line, nothing trained, Drive untouched."""
    from trainer.drive import DriveFolder
    from trainer.engine import fit
    from trainer.errors import CheckpointError

    spec = "drive:Models/h22/logs"
    there = tmp_path / "elsewhere"
    there.mkdir()
    _hostile(trained, there, _nan_model)
    DriveFolder(spec, str(there)).push()

    def listing():
        return sorted((f["title"], f.get("md5Checksum")) for f in emulator.files()
                      if not f["labels"]["trashed"] and f["mimeType"] != "application/vnd.google-apps.folder")

    before = listing()
    steps = _Steps()
    with pytest.raises(CheckpointError) as refused:
        fit(_config(tiny_config, tmp_path / "logs", **{"drive.logs": spec}), resume="auto",
            callbacks=[steps])
    assert "its model weights hold NaN or infinite values" in str(refused.value)
    assert steps.steps == 0
    assert listing() == before


# ------------------------------ trainer23: --resume auto goes on from the one before
# (here for the module's trained checkpoint; the fast tests are in test_trainer23_fallback.py)

@pytest.mark.slow
def test_a_run_goes_on_from_the_checkpoint_before_a_nan_one(tiny_config, tmp_path, trained,
                                                            one_torch_thread):
    """End to end (the engine's own vet: YOLOv4-tiny, its EMA and optimizer): epoch_002.pt
    holds NaN weights, epoch_001.pt is good; trainer train --resume auto trains epoch 2 again
    from epoch_001.pt instead of refusing to start."""
    import torch

    from trainer.engine import fit

    logs = tmp_path / "logs"
    logs.mkdir()
    ckpt.copy_checkpoint(str(trained), str(logs / "epoch_001.pt"))
    state = torch.load(trained, weights_only=True)
    _nan_model(state)
    state.update(epoch=2, iteration=2 * state["iteration"], epoch_iteration=0)
    ckpt.save_checkpoint(state, str(logs / "epoch_002.pt"),
                         saved=ckpt.read_sidecar(str(logs / "epoch_001.pt")).saved + 60)
    result = fit(_config(tiny_config, logs), resume="auto")
    assert result.resumed_from == str(logs / "epoch_001.pt")
    assert result.epochs_run == 1
    assert ckpt.load_checkpoint(str(logs / "epoch_002.pt"))["epoch"] == 2


# ------------------------------ another run's checkpoint dropped into the run folder

def _plain(epoch: int, run: str) -> dict:
    return {"format_version": 2, "model": {}, "optimizer": {}, "epoch": epoch,
            "iteration": epoch * 2, "epoch_iteration": 0, "config": {}, "run": run}


def test_another_runs_best_pt_written_last_in_the_folder_is_not_continued_over_this_run(tmp_path):
    """The run folder holds run A up to epoch 3; a best.pt of run B (epoch 2) is copied in
    later (to fine-tune from, or a backup restored). --resume auto went on with run B, the run
    written last, without a word: its epoch 3 then replaced A's epoch_003.pt and last.pt.
    Now refused in one line naming both runs; every file stays."""
    from types import SimpleNamespace

    from trainer.errors import CheckpointError
    from trainer.resume import _decide

    logs = tmp_path / "logs"
    for name in ("last.pt", "epoch_003.pt"):
        ckpt.save_checkpoint(_plain(3, "20260101-000000-aaaa"), str(logs / name), saved=1000.0)
    ckpt.save_checkpoint(_plain(2, "20260202-000000-bbbb"), str(logs / "best.pt"), saved=2000.0)
    before = _md5s(logs)
    with pytest.raises(CheckpointError) as refused:
        _decide(SimpleNamespace(train=SimpleNamespace(out_dir=str(logs))), "auto", None)
    text = str(refused.value)
    assert "\n" not in text
    assert text.startswith(f"{logs} holds checkpoints of two runs: ")
    assert "20260101-000000-aaaa" in text and "20260202-000000-bbbb" in text
    assert "best.pt" in text and "epoch_003.pt" in text
    assert _md5s(logs) == before
