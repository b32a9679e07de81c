"""One epoch of training: :func:`train_one_epoch`, a step function with explicit arguments
(as torchvision's detection references have it), split from :mod:`trainer.engine` at its line
cap; :func:`trainer.engine.fit` assembles the run and calls it once per epoch.
"""
from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable, Iterable, Optional

import torch
from torch import nn

from trainer import distributed, stuck
from trainer.data.batches import to_model_input
from trainer.errors import NonFiniteLossError
from trainer.optim import ModelEMA, set_lr
from trainer.state import EpochMeter, Position

# The name its lines always had (the CLI prints it; tests and bench/survival.py follow it).
logger = logging.getLogger("trainer.engine")


def train_one_epoch(model: nn.Module, criterion: nn.Module, optimizer: torch.optim.Optimizer,
                    loader: Iterable, device: torch.device, *, start: Position, steps: int,
                    lr_at: Callable[[float], float], scaler: Any, ema: Optional[ModelEMA],
                    meter: EpochMeter, after_step: Callable[[Position, dict], None],
                    before_step: Optional[Callable[[Position], None]] = None,
                    autocast: Optional[torch.dtype] = None, grad_clip: float = 0.0,
                    channels_last: bool = False, world_size: int = 1, desc: str = "",
                    status: Optional[Callable[[], str]] = None) -> dict:
    """Train from ``start`` (``start.epoch_iteration`` of the epoch's ``steps`` already done;
    ``loader`` yields the rest) to the epoch's end. ``before_step(pos)`` runs as each batch
    arrives (the time before it is the wait for data; ``pos`` names the last completed step),
    ``after_step(pos, logs)`` after every step. Returns the epoch's lr, speed and time; the
    mean losses and the epoch's time accumulate in ``meter``."""
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    pos, seen, t0 = start, 0, time.perf_counter()
    last = t0   # (each step's time counted in ``meter`` before a save may take it)
    bar = _progress(steps, desc, start.epoch_iteration) if status is not None else None
    lr = lr_at(pos.epoch + max(pos.epoch_iteration - 1, 0) / steps)   # the last step's, if any
    try:
        for images, targets in loader:
            if before_step is not None:
                before_step(pos)
            lr = lr_at(pos.epoch + pos.epoch_iteration / steps)
            set_lr(optimizer, lr)
            images = to_model_input(images, device, non_blocking=True)  # uint8 batches become float32 here
            targets = targets.to(device, non_blocking=True)
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            # (Under DDP the forward and backward wait for the other ranks: trainer.stuck.)
            with stuck.waiting(), torch.autocast(device.type, enabled=autocast is not None,
                                                 dtype=autocast):
                loss, parts = criterion(model(images), targets)
            # Every rank must agree to stop, so the check is on the mean over ranks.
            loss_value = float(distributed.all_reduce_mean(loss.detach()))
            if not math.isfinite(loss_value):
                raise NonFiniteLossError(
                    f"the loss became {loss_value} at epoch {pos.epoch + 1}, iteration "
                    f"{pos.epoch_iteration + 1}/{steps} (lr {lr:.3g}); training stopped and nothing was "
                    f"saved for this epoch. Resume from the last checkpoint with a lower train.lr, or "
                    f"check the data")
            optimizer.zero_grad(set_to_none=True)
            with stuck.waiting():
                scaler.scale(loss).backward()
            if grad_clip > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            scaler.step(optimizer)
            scaler.update()
            if ema is not None:
                ema.update(model)
            meter.add(loss_value, parts, images.shape[0] * world_size)  # (equal on every rank)
            meter.spent(time.perf_counter() - last)
            last = time.perf_counter()
            pos = pos.stepped()
            seen += images.shape[0] * world_size
            speed = seen / max(time.perf_counter() - t0, 1e-9)
            if bar is not None:
                m = meter.means()
                drive = status()  # first: tqdm sorts keywords (loss went last) and a narrow bar cuts the end
                bar.set_postfix({**({"drive": drive} if drive else {}), "loss": f"{m['loss']:.4f}",
                                 "lr": f"{lr:.2e}", "img_s": f"{speed:.1f}", "box": f"{m['box']:.3f}",
                                 "obj": f"{m['obj']:.3f}", "cls": f"{m['cls']:.3f}"}, refresh=False)
                bar.update(1)
            # One line per iteration at debug level (-v): tests, logs and bench/survival.py follow it.
            logger.debug("%s iter %d/%d (iteration %d) loss %.5f lr %.3g", desc.split(" (")[0],
                         pos.epoch_iteration, steps, pos.iteration, loss_value, lr)
            after_step(pos, {"loss": loss_value, "lr": lr, "img_s": speed})
    finally:
        if bar is not None:
            bar.close()
    meter.spent(time.perf_counter() - last)
    elapsed = time.perf_counter() - t0
    # The epoch's time over every resume of it (None: the part before a resume from a
    # checkpoint of before trainlefts46, unknown); its speed is this process's own.
    return {"lr": lr, "images_per_s": seen / max(elapsed, 1e-9),
            "epoch_time_s": meter.seconds}


def _progress(total: int, desc: str, initial: int):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="it", dynamic_ncols=True,
                leave=True, mininterval=0.5)
