"""Room in the run folder for the next save, checked before a single step is trained.

A checkpoint holds the model, its EMA and the optimizer's state: about 90 MiB for
YOLOv4-tiny. An epoch's save writes ``last.pt`` and, when the policy says so,
``epoch_NNN.pt`` and ``best.pt`` (copies of it). Without this check a run on a small disk
(Kaggle's working folder, a spot VM's boot disk) trained its first epoch and then lost it:
the save met a full disk. The estimate of a checkpoint's size (:func:`checkpoint_bytes`) is
the bytes of its tensors plus what ``torch.save`` adds around each; measured against real
checkpoints of the tiny test model and of YOLOv4-tiny on 20 classes, it is a little above
the file's size (tests/test_trainer22_room.py).
"""
from __future__ import annotations

import os
import shutil
from typing import Any, Callable, Optional

import torch

from drivestage.sizes import format_size

#: What ``torch.save`` writes around each tensor (its zip entry's headers, the 64-byte
#: alignment, its pickled reference), rounded up.
PER_TENSOR = 512
#: The rest of a checkpoint: config, history, RNG states, class names (measured: < 100 KiB).
FIXED = 1 << 20


def _tensor_bytes(obj: Any) -> tuple[int, int]:
    """``(bytes, tensors)`` of every tensor in a nested state structure."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size(), 1
    items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else ()
    size = count = 0
    for v in items:
        s, c = _tensor_bytes(v)
        size, count = size + s, count + c
    return size, count


def _optimizer_slots(optimizer: torch.optim.Optimizer) -> int:
    """Tensors the optimizer keeps per parameter once it has stepped (its state is empty
    before the first step, and the first save comes after it)."""
    if isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW)):
        return 3 if any(g.get("amsgrad") for g in optimizer.param_groups) else 2
    if isinstance(optimizer, torch.optim.SGD):
        return 1 if any(g.get("momentum") for g in optimizer.param_groups) else 0
    return 2


def checkpoint_bytes(model: torch.nn.Module, ema: Any, optimizer: torch.optim.Optimizer) -> int:
    """About how many bytes a checkpoint of this run takes on disk (never much less)."""
    size, count = _tensor_bytes(model.state_dict())
    if ema is not None:
        s, c = _tensor_bytes(ema.state_dict())
        size, count = size + s, count + c
    if optimizer.state:   # resumed: its real state
        s, c = _tensor_bytes(optimizer.state_dict()["state"])
    else:
        params = [p for g in optimizer.param_groups for p in g["params"]]
        slots = _optimizer_slots(optimizer)
        s = slots * sum(p.numel() * p.element_size() for p in params) + 4 * len(params)
        c = (slots + 1) * len(params)
    return size + s + (count + c) * PER_TENSOR + FIXED


def epoch_save_names(cfg: Any, epochs_done: int) -> list[str]:
    """The files the next epoch's save writes (as :class:`trainer.saving.Checkpointer` names
    them), ``best.pt`` whenever that epoch is evaluated (it may improve)."""
    t = cfg.train
    epoch = epochs_done + 1
    names = ["last.pt"]
    if epoch % t.save_period == 0 or epoch == t.epochs:
        names.append(f"epoch_{epoch:03d}.pt")
    if epoch % t.eval_period == 0 or epoch == t.epochs:
        names.append("best.pt")
    return names


def needed_bytes(out_dir: str, names: list[str], size: int) -> int:
    """The most the save of ``names`` takes at once: each new file, plus one temporary file
    beside a file it replaces (written in full, then renamed over it; the copies are made one
    after the other, so one such temporary file at a time)."""
    new = [n for n in names if not os.path.exists(os.path.join(out_dir, n))]
    return size * (len(new) + (1 if len(new) < len(names) else 0))


def shortage(cfg: Any, epochs_done: int, size: int,
             free_bytes: Callable[[str], int] = lambda p: shutil.disk_usage(p).free) -> Optional[str]:
    """Why the next epoch's save would not fit in ``train.out_dir`` (one line); None if it does
    or nothing is left to train."""
    t = cfg.train
    if epochs_done >= t.epochs:
        return None
    names = epoch_save_names(cfg, epochs_done)
    needed = needed_bytes(t.out_dir, names, size)
    free = free_bytes(t.out_dir)
    if needed <= free:
        return None
    return (f"not enough free disk space in {t.out_dir} for the checkpoint of epoch "
            f"{epochs_done + 1}: its save writes {', '.join(names)} of about {format_size(size)} "
            f"each, {format_size(needed)} ({needed} bytes) at once, only {format_size(free)} "
            f"({free} bytes) free; nothing was trained: free some space or set train.out_dir to "
            f"a folder on a larger disk")
