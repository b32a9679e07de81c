"""A copy of the shared one-epoch run (tests/_one_epoch.py) whose checkpoint is torn inside,
its sidecar vouching for the torn bytes (written as a save writes it): what attackb51's
tests resume from. ``torn(one_epoch, logs, tear)``: ``logs`` holds the copy, and
``tear(state)`` changed epoch_001.pt's state, saved under ``name``; returns the config (the
run's, ``train.epochs`` 2) and the torn checkpoint's path."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable

import torch

from _once import config_like
from trainer import checkpoint as ckpt


def one_step_into_epoch_2(state: dict, samples: int = 8) -> None:
    """Make ``state`` (epoch_001.pt's) a save one step (of 8 samples) into epoch 2."""
    assert (state["epoch"], state["epoch_iteration"]) == (1, 0)
    state.update(iteration=state["iteration"] + 1, epoch_iteration=1, epoch_time_s=0.1,
                 epoch_meter={"loss": 0.5, "box": 0.1, "obj": 0.3, "cls": 0.1, "steps": 1,
                              "samples": samples})


def torn(one_epoch: Path, logs: Path, tear: Callable[[dict], Any],
         name: str = "epoch_001.pt") -> tuple[str, str]:
    shutil.copytree(one_epoch / "logs", logs)
    state = torch.load(logs / "epoch_001.pt", weights_only=True)
    tear(state)
    path = ckpt.save_checkpoint(state, str(logs / name))
    return config_like(one_epoch, logs, **{"train.epochs": 2}), path
