"""What the optimizer step needs besides the model: EMA, learning-rate schedule, optimizer.

Every piece resumes exactly: the EMA carries its update count, the schedule is a pure
function of the fractional epoch, the optimizer's state is checkpointed.
"""
from __future__ import annotations

import copy
import math

import torch
from torch import nn

from trainer import distributed
from trainer.config import Config
from trainer.errors import ConfigError



class ModelEMA:
    """Exponential moving average of a model's weights (the YOLOv5/YOLOX form).

    The decay ramps up with the update count, ``decay * (1 - exp(-updates / tau))``, so early
    averages are not dominated by the random initialisation. The count is checkpointed.
    """

    def __init__(self, model: nn.Module, decay: float = 0.9999, tau: float = 2000.0, updates: int = 0):
        self.ema = copy.deepcopy(distributed.unwrap(model)).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.decay, self.tau, self.updates = decay, tau, updates

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.decay * (1 - math.exp(-self.updates / self.tau))
        msd = distributed.unwrap(model).state_dict()
        for k, v in self.ema.state_dict().items():
            if v.dtype.is_floating_point:
                v.mul_(d).add_(msd[k].detach(), alpha=1 - d)
            else:
                v.copy_(msd[k])

    def state_dict(self) -> dict:
        return {"model": self.ema.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.ema.load_state_dict(state["model"])
        self.updates = int(state["updates"])


# --------------------------------------------------------------------------- optimizer, LR

def scaled_lr(cfg: Config, batch_size: int) -> tuple[float, float]:
    """The port's batch-size scaling: ``lr * batch / nbs`` clamped to the optimizer's range.

    ``batch_size`` is the total over all processes. Returns ``(initial lr, minimum lr)``.
    """
    t = cfg.train
    adam = t.optimizer in ("adam", "adamw")
    lr_max, lr_min = (1e-3, 3e-4) if adam else (5e-2, 5e-4)
    init = min(max(batch_size / t.nbs * t.lr, lr_min), lr_max)
    final = min(max(batch_size / t.nbs * t.lr * t.min_lr_ratio, lr_min * 1e-2), lr_max * 1e-2)
    return init, final


def process_batch(batch: int, world: int, key: str = "train.batch_size") -> tuple[int, int]:
    """``(per process, in all)`` for a phase's ``batch`` on ``world`` processes: each takes
    ``batch // world`` images a step, so the batch trained is the largest multiple of
    ``world`` not above ``batch``, and the learning rate is scaled for that one. A ``batch``
    smaller than ``world`` is refused (ConfigError, naming ``key``): each process took one
    image, and the run trained at ``world``, above the batch configured, without a word."""
    if batch < world:
        raise ConfigError(
            f"{key} {batch} is less than the {world} processes training: each needs at least "
            f"one image a step. Set {key} to {world} or a multiple of it, or train on fewer "
            f"processes")
    per = batch // world
    return per, per * world


def check_batches(cfg: Config, world: int, epoch: int) -> None:
    """Refuse (ConfigError) a phase's batch that ``world`` processes cannot share, for the
    phases a run trains from ``epoch`` on: the frozen one only while it is still ahead."""
    t = cfg.train
    if epoch < min(t.freeze_epochs, t.epochs):
        process_batch(t.freeze_batch_size, world, "train.freeze_batch_size")
    if max(epoch, t.freeze_epochs) < t.epochs:
        process_batch(t.batch_size, world, "train.batch_size")


class LRSchedule:
    """Learning rate as a pure function of the fractional epoch and the phase's batch size.

    ``cos``: quadratic warm-up from 10% over min(max(5% of epochs, 1), 3) epochs, cosine down
    to the minimum, then the minimum for the last min(max(5% of epochs, 1), 15) epochs (the
    port's YOLOX schedule). ``step``: ten equal steps from the initial to the minimum lr.
    Evaluated every iteration; being stateless, it resumes exactly.
    """

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.kind = cfg.train.lr_schedule
        self.epochs = cfg.train.epochs

    def __call__(self, pos: float, batch_size: int) -> float:
        lr, min_lr = scaled_lr(self.cfg, batch_size)
        total = float(self.epochs)
        if self.kind == "step":
            steps = 10
            rate = (min_lr / lr) ** (1 / (steps - 1))
            return lr * rate ** int(pos // (total / steps))
        warmup = min(max(0.05 * total, 1.0), 3.0)
        start = max(0.1 * lr, 1e-6)
        flat = min(max(0.05 * total, 1.0), 15.0)
        if pos <= warmup:
            return (lr - start) * (pos / warmup) ** 2 + start
        if pos >= total - flat:
            return min_lr
        span = max(total - warmup - flat, 1e-9)
        return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * (pos - warmup) / span))

    def state_dict(self) -> dict:
        return {"kind": self.kind, "epochs": self.epochs}


def param_groups(model: nn.Module) -> tuple[list, list, list]:
    """``(norm weights, other weights, biases)``: only the second group gets weight decay."""
    norm, decay, bias = [], [], []
    for module in model.modules():
        if isinstance(getattr(module, "bias", None), nn.Parameter):
            bias.append(module.bias)
        if isinstance(module, nn.modules.batchnorm._NormBase) or isinstance(module, nn.GroupNorm):
            norm.append(module.weight)
        elif isinstance(getattr(module, "weight", None), nn.Parameter):
            decay.append(module.weight)
    return norm, decay, bias


def build_optimizer(model: nn.Module, cfg: Config, lr: float) -> torch.optim.Optimizer:
    """SGD (nesterov) or Adam/AdamW over the three parameter groups of :func:`param_groups`."""
    t = cfg.train
    norm, decay, bias = param_groups(distributed.unwrap(model))
    groups = [{"params": norm, "weight_decay": 0.0}, {"params": decay, "weight_decay": t.weight_decay},
              {"params": bias, "weight_decay": 0.0}]
    if t.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=t.momentum, nesterov=True)
    if t.optimizer == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=(t.momentum, 0.999))
    if t.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=(t.momentum, 0.999))
    raise ConfigError(f"train.optimizer must be sgd, adam or adamw, got {t.optimizer!r}")


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every parameter group's learning rate (the schedule is evaluated per iteration)."""
    for g in optimizer.param_groups:
        g["lr"] = lr
