"""The training loop: ``train_one_epoch``, ``evaluate``, ``fit``.

Reads top to bottom like torchvision's detection references. ``fit`` stages the data,
builds the model, resumes (locally or from Drive), then runs the freeze and unfreeze phases;
everything that is not training (results.csv, plots, TensorBoard, Drive) hangs off
callback events. Rank 0 alone evaluates, saves and talks to Drive; the others wait.
"""
from __future__ import annotations

import copy
import logging
import math
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np
import torch
from torch import nn

from trainer import checkpoint as ckpt
from trainer import distributed
from trainer.callbacks import Callback, CallbackList, CSVLogger, DriveSync, PlotCallback, TensorBoardLogger
from trainer.config import Config, model_signature
from trainer.errors import CheckpointError, ConfigError, DataError, NonFiniteLossError, TrainingInterrupted

logger = logging.getLogger(__name__)

#: Files of the run folder that are not mirrored to Drive.
MIRROR_EXCLUDE = ("last.pt", "last.json")


# --------------------------------------------------------------------------- EMA

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


# --------------------------------------------------------------------------- one epoch

def train_one_epoch(run: "Run", epoch: int) -> dict:
    """One pass over the training data; returns the epoch's mean losses, lr and speed."""
    model, optimizer, loader, criterion = run.model, run.optimizer, run.train_loader, run.criterion
    device, t = run.device, run.cfg.train
    model.train()
    n = len(loader)
    sums = {"loss": 0.0, "box": 0.0, "obj": 0.0, "cls": 0.0}
    seen, t0 = 0, time.perf_counter()
    bar = _progress(n, f"epoch {epoch + 1}/{t.epochs}{' (frozen)' if run.frozen else ''}", run.info)
    params = [p for p in model.parameters() if p.requires_grad]
    lr = run.lr_at(epoch)
    for i, (images, targets) in enumerate(loader):
        lr = run.lr_at(epoch + i / n)
        set_lr(optimizer, lr)
        images = images.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        if t.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, enabled=run.amp or run.cpu_bf16,
                            dtype=torch.bfloat16 if run.cpu_bf16 else None):
            outputs = model(images)
            loss, parts = criterion(outputs, targets)
        # Every rank must agree to stop, so the check is on the mean over ranks.
        loss_value = float(distributed.all_reduce_mean(loss.detach()))
        if not math.isfinite(loss_value):
            raise NonFiniteLossError(
                f"the loss became {loss_value} at epoch {epoch + 1}, iteration {i + 1}/{n} "
                f"(lr {lr:.3g}); training stopped and nothing was saved for this epoch. "
                f"Resume from the last checkpoint with a lower train.lr, or check the data")
        optimizer.zero_grad(set_to_none=True)
        run.scaler.scale(loss).backward()
        if t.grad_clip > 0:
            run.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, t.grad_clip)
        run.scaler.step(optimizer)
        run.scaler.update()
        if run.ema is not None:
            run.ema.update(model)
        run.state.global_step += 1

        seen += images.shape[0] * run.info.world_size
        sums["loss"] += loss_value
        for k in ("box", "obj", "cls"):
            sums[k] += float(parts[k])
        speed = seen / max(time.perf_counter() - t0, 1e-9)
        logs = {"loss": loss_value, "lr": lr, "img_s": speed}
        if bar is not None:
            bar.set_postfix(loss=f"{sums['loss'] / (i + 1):.4f}", box=f"{sums['box'] / (i + 1):.3f}",
                            obj=f"{sums['obj'] / (i + 1):.3f}", cls=f"{sums['cls'] / (i + 1):.3f}",
                            lr=f"{lr:.2e}", img_s=f"{speed:.1f}", refresh=False)
            bar.update(1)
        # One line per iteration at debug level (-v): tests and log files follow progress with it.
        logger.debug("epoch %d/%d iter %d/%d loss %.5f lr %.3g", epoch + 1, t.epochs, i + 1, n,
                     loss_value, lr)
        if t.log_period and (i + 1) % t.log_period == 0:
            logger.info("epoch %d/%d iter %d/%d loss %.4f lr %.3g %.1f img/s", epoch + 1, t.epochs,
                        i + 1, n, sums["loss"] / (i + 1), lr, speed)
        run.callbacks.fire("on_train_batch_end", run, epoch, run.state.global_step, logs)
        _stop_if_requested(run)
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - t0
    out = {k: v / max(n, 1) for k, v in sums.items()}
    out.update(lr=lr, images_per_s=seen / max(elapsed, 1e-9), epoch_time_s=elapsed)
    return out


def _progress(total: int, desc: str, info: distributed.DistInfo):
    if not info.is_main:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="it", dynamic_ncols=True, leave=True, mininterval=0.5)


# --------------------------------------------------------------------------- evaluation

@torch.no_grad()
def validation_loss(model: nn.Module, criterion: nn.Module, loader: Iterable, device: torch.device) -> float:
    """Mean loss over the (letterboxed, unaugmented) validation set."""
    model.eval()
    total, n = 0.0, 0
    for images, targets in loader:
        loss, _ = criterion(model(images.to(device)), targets.to(device))
        total += float(loss)
        n += 1
    return total / max(n, 1)


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Any, class_names: Sequence[str], device: torch.device, *,
             conf_thresh: float = 0.001, nms_thresh: float = 0.5, batch_size: int = 8,
             workers: int = 0, coco: bool = True) -> dict:
    """Detect on an :class:`EvalDataset` and score: VOC mAP@0.5 and COCO mAP@0.5:0.95.

    Returns ``{"map50", "map", "per_class": {name: AP@0.5}, "images"}``.
    """
    from torch.utils.data import DataLoader

    from trainer.metrics import coco_map, voc_map
    from trainer.model.decode import decode, postprocess

    base = distributed.unwrap(model)
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                        collate_fn=dataset.collate)
    size = dataset.input_size
    detections: dict[int, np.ndarray] = {}
    for images, indices, sizes in loader:
        outputs = model(images.to(device))
        decoded = decode(outputs, base.anchors, base.anchors_mask, size)
        results = postprocess(decoded, conf_thres=conf_thresh, nms_thres=nms_thresh,
                              image_sizes=sizes, input_size=size, letterbox=True)
        for det, idx in zip(results, indices.tolist()):
            detections[idx] = det.detach().float().cpu().numpy().reshape(-1, 6)
    gt = dataset.ground_truth()
    map50, ap = voc_map(detections, gt, len(class_names), iou_thresh=0.5)
    per_class = {name: (None if math.isnan(v) else float(v)) for name, v in zip(class_names, ap)}
    out = {"map50": float(map50), "per_class": per_class, "images": len(dataset), "map": None}
    if coco:
        value = float(coco_map(detections, gt, len(class_names))["map50_95"])
        out["map"] = None if math.isnan(value) else value  # nan: nothing to score (no detections)
    return out


# --------------------------------------------------------------------------- data staging

@dataclass
class DataSpec:
    """What :func:`stage_data` found: class names and annotation lines."""

    class_names: list[str]
    train_lines: list[str]
    val_lines: list[str]
    voc_root: Optional[str] = None


def stage_data(cfg: Config, info: distributed.DistInfo = distributed.DistInfo()) -> DataSpec:
    """Pull ``data.drive_zip`` (once per machine), find the VOCdevkit, read classes and lines."""
    d = cfg.data
    with distributed.main_first(info) as first:
        if d.drive_zip and first:
            import drivestage

            logger.info("staging %s into %s", d.drive_zip, d.root)
            drivestage.pull(d.drive_zip, d.root, extract=True)
        spec = _read_data(cfg, write=first)
    return spec


def _read_data(cfg: Config, *, write: bool) -> DataSpec:
    from trainer.data.voc import find_voc_root, prepare_voc, read_annotation_file, read_classes

    d = cfg.data
    voc_root = None
    if d.voc_root:
        voc_root = str(find_voc_root(d.voc_root, d.year))
    else:
        found = _search_voc(d.root, d.year)
        voc_root = str(found) if found else None
    classes = d.classes
    if isinstance(classes, str) and not os.path.isfile(classes) and voc_root:
        # A classes file named relative to the dataset (e.g. inside the zip).
        for cand in (Path(voc_root) / classes, Path(voc_root).parent / classes):
            if cand.is_file():
                classes = str(cand)
                break
    try:
        names = read_classes(classes)
    except (OSError, DataError) as exc:
        raise DataError(f"data.classes: {exc}") from None

    lines = {}
    for key in ("train", "val"):
        value = getattr(d, key)
        if os.path.isfile(value):
            lines[key] = read_annotation_file(value)
            continue
        if voc_root is None:
            raise DataError(
                f"data.{key}={value!r} is neither an annotation file nor a split of a VOCdevkit; "
                f"no VOCdevkit was found under data.root={d.root!r} (set data.voc_root or data.drive_zip)")
        split_file = Path(voc_root) / f"VOC{d.year}" / "ImageSets" / "Main" / f"{value}.txt"
        if not split_file.is_file():
            raise DataError(f"data.{key}={value!r}: no annotation file of that name and no split "
                            f"{split_file}; give an annotation file or a split name")
        ann_dir = Path(d.root) / "annotations"
        ann_file = ann_dir / f"{d.year}_{value}.txt"
        if write:
            ann_dir.mkdir(parents=True, exist_ok=True)
            prepare_voc(voc_root, 2, names, ann_dir, year=d.year, image_sets=(value,))
        lines[key] = read_annotation_file(ann_file)
    return DataSpec(class_names=names, train_lines=lines["train"], val_lines=lines["val"],
                    voc_root=voc_root)


def _search_voc(root: str, year: str) -> Optional[Path]:
    base = Path(root)
    if not base.is_dir():
        return None
    for depth in range(4):
        for cand in sorted(base.glob("/".join(["*"] * depth + [f"VOC{year}"]) if depth else f"VOC{year}")):
            if cand.is_dir() and (cand / "Annotations").is_dir():
                return cand.parent
    return None


def _local_weights(spec: str, cfg: Config) -> str:
    """``drive:...`` weights are pulled next to the data; local paths are returned as they are."""
    if not spec.startswith("drive:"):
        if not os.path.isfile(spec):
            raise ConfigError(f"model.weights: file not found: {spec}")
        return spec
    import drivestage

    # Staged (md5-verified, cached) next to the data; a re-run finds it already there.
    return drivestage.pull(spec, os.path.join(cfg.data.root, "weights"), extract=False, quiet=True).path


# --------------------------------------------------------------------------- the run

@dataclass
class TrainState:
    """Bookkeeping that lives in every checkpoint."""

    epoch: int = 0                 # epochs completed
    global_step: int = 0           # optimizer steps taken
    best_map50: Optional[float] = None
    best_epoch: Optional[int] = None
    last_map50: Optional[float] = None
    history: list = field(default_factory=list)     # one row per epoch (results.csv)
    retention: dict = field(default_factory=dict)   # names written, the one resumed from


@dataclass
class FitResult:
    """What :func:`fit` returns (on every rank)."""

    out_dir: str
    epochs_run: int
    resumed_from: Optional[str]
    best_map50: Optional[float]
    best_epoch: Optional[int]
    final: dict                    # the last epoch's metrics (map50, map, val_loss, per_class)
    last_checkpoint: Optional[str]
    model: Any = field(default=None, repr=False)   # the trained network (bare, on its device)


class Run:
    """Everything one training run holds; callbacks receive it."""

    def __init__(self, cfg: Config, info: distributed.DistInfo, device: torch.device):
        self.cfg, self.info, self.device = cfg, info, device
        self.out_dir = cfg.train.out_dir
        self.state = TrainState()
        self.callbacks = CallbackList()
        self.amp = bool(cfg.train.amp and device.type == "cuda")
        # bf16 needs no loss scaling; on CPUs without native bf16 it would be slower, so skip it.
        self.cpu_bf16 = bool(cfg.train.cpu_amp and device.type == "cpu" and distributed.cpu_has_bf16())
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp)
        self.schedule = LRSchedule(cfg)
        self.frozen = False
        self.stop_requested = False               # set by SIGTERM; checked between iterations
        self.batch_size = cfg.train.batch_size
        self.model: nn.Module                     # the network, DDP-wrapped when distributed
        self.criterion: nn.Module
        self.optimizer: torch.optim.Optimizer
        self.ema: Optional[ModelEMA] = None
        self.train_loader: Any = None
        self.resumed_from: Optional[str] = None
        self.sync: Any = None
        self.start_epoch = 0
        self.class_names: list[str] = []
        self.signature: dict = {}

    def lr_at(self, pos: float) -> float:
        return self.schedule(pos, self.batch_size)

    @property
    def bare_model(self) -> nn.Module:
        return distributed.unwrap(self.model)

    @property
    def eval_model(self) -> nn.Module:
        return self.ema.ema if self.ema is not None else self.bare_model


def _warn_if_on_drive_mount(run: "Run") -> None:
    """The recipe kept logs/ on the Drive mount; here that is slow and no safer."""
    from drivestage.localfs import drive_mount

    mount = drive_mount(run.out_dir)
    if mount is not None and run.info.is_main:
        logger.warning(
            "train.out_dir %s is inside the Google Drive mount %s: checkpoints written there go "
            "through the slow mount and may not reach Drive before the runtime dies. Keep "
            "train.out_dir on local disk and set drive.logs=drive:... to mirror it, verified",
            run.out_dir, mount)


def fit(cfg: Config, *, resume: str = "auto", callbacks: Sequence[Callback] = ()) -> FitResult:
    """Train as configured; ``resume`` is ``auto`` (local, then Drive), ``none`` or a path."""
    info, device = distributed.setup(cfg.train.device)
    _set_determinism(cfg)
    run = Run(cfg, info, device)
    os.makedirs(run.out_dir, exist_ok=True)
    _warn_if_on_drive_mount(run)
    restore_signal = _install_sigterm(run)
    try:
        return _fit(run, resume, callbacks)
    finally:
        restore_signal()
        distributed.cleanup()


def _fit(run: Run, resume: str, extra_callbacks: Sequence[Callback]) -> FitResult:
    cfg, info, t = run.cfg, run.info, run.cfg.train

    # Data first: a bad dataset should fail before anything is written.
    data = stage_data(cfg, info)
    run.class_names = data.class_names
    num_classes = len(data.class_names)
    run.signature = model_signature(cfg, num_classes)

    # Model, loss, EMA, optimizer.
    from trainer.loss import YoloLoss
    from trainer.model import YoloV4Tiny

    torch.manual_seed(t.seed)
    model = YoloV4Tiny(num_classes, cfg.model.anchors, cfg.model.anchors_mask,
                       input_size=cfg.model.input_size, phi=cfg.model.phi)
    if cfg.model.weights:
        # The first rank of each machine pulls drive: weights; the others then find them staged.
        with distributed.main_first(info):
            weights = _local_weights(cfg.model.weights, cfg)
        from trainer.weights import load_weights

        load_weights(model, weights)  # logs what was loaded and what was skipped (and why)
    model.to(run.device)
    if t.channels_last:
        model.to(memory_format=torch.channels_last)
    run.model = model
    run.criterion = YoloLoss(num_classes, cfg.model.anchors, cfg.model.anchors_mask,
                             input_size=cfg.model.input_size, label_smoothing=t.label_smoothing,
                             focal_loss=t.focal_loss).to(run.device)
    run.ema = ModelEMA(model, decay=t.ema_decay) if t.ema else None
    run.optimizer = build_optimizer(model, cfg, scaled_lr(cfg, t.freeze_batch_size)[0])

    # Drive hooks and side effects hang off callbacks (rank 0 only). From here on any
    # failure, SIGTERM included, flushes the Drive mirror on the way out.
    if info.is_main:
        run.sync = _make_sync(cfg) if cfg.drive.logs else None
        cbs = [CSVLogger(run.out_dir), PlotCallback(run.out_dir), TensorBoardLogger(run.out_dir)]
        if run.sync is not None:
            cbs.append(DriveSync(run.sync))
        run.callbacks = CallbackList([*cbs, *extra_callbacks])
    try:
        final = _train_epochs(run, data, resume)
        run.callbacks.fire("on_fit_end", run)
    except BaseException as exc:
        run.callbacks.fire("on_interrupt", run, exc)
        raise
    last = os.path.join(run.out_dir, "last.pt")
    return FitResult(out_dir=run.out_dir, epochs_run=t.epochs - run.start_epoch, resumed_from=run.resumed_from,
                     best_map50=run.state.best_map50, best_epoch=run.state.best_epoch, final=final,
                     last_checkpoint=last if os.path.isfile(last) else None, model=run.bare_model)


def _train_epochs(run: Run, data: DataSpec, resume: str) -> dict:
    """Resume, then train the remaining epochs; returns the last evaluation's metrics."""
    from trainer.data.dataset import EvalDataset, YoloDataset, build_loader, set_loader_epoch

    cfg, info, t = run.cfg, run.info, run.cfg.train
    start_path = _resolve_resume(run, resume)
    if start_path:
        _restore(run, start_path)
        if run.sync is not None:
            run.sync.protect(os.path.basename(start_path))  # never pruned while we depend on it
    num_classes = len(data.class_names)
    train_set = YoloDataset(data.train_lines, cfg.model.input_size, num_classes, train=True,
                            mosaic=t.mosaic, mixup=t.mixup, mosaic_prob=t.mosaic_prob,
                            mixup_prob=t.mixup_prob, special_aug_ratio=t.special_aug_ratio,
                            epochs=t.epochs, seed=t.seed)
    val_set = YoloDataset(data.val_lines, cfg.model.input_size, num_classes, train=False, seed=t.seed)
    val_loader = build_loader(val_set, max(1, t.batch_size // info.world_size), shuffle=False,
                              workers=cfg.data.workers, seed=t.seed, drop_last=False)
    eval_lines = data.val_lines[: cfg.data.max_val_images] if cfg.data.max_val_images else data.val_lines
    # With the class names, ground truth comes from the VOC XML: difficult objects are ignored.
    eval_set = EvalDataset(eval_lines, cfg.model.input_size, classes=data.class_names)

    final: dict = {}
    run.start_epoch = start = run.state.epoch
    if start >= t.epochs:
        logger.info("the checkpoint already holds %d of %d epochs; nothing to train", start, t.epochs)
        return dict(run.state.history[-1]) if run.state.history else {}
    logger.info("training epochs %d..%d of %d on %s (%d train / %d val images, %d classes)",
                start + 1, t.epochs, t.epochs, run.device, len(train_set), len(val_set), num_classes)
    run.callbacks.fire("on_fit_start", run)
    for epoch in range(start, t.epochs):
        _enter_phase(run, epoch, train_set, build_loader)
        _seed_epoch(t.seed, epoch, info.rank)
        set_loader_epoch(run.train_loader, epoch)
        run.callbacks.fire("on_train_epoch_start", run, epoch)
        stats = train_one_epoch(run, epoch)
        distributed.broadcast_buffers(run.model)  # every rank leaves the epoch with rank 0's BN stats

        row = {"epoch": epoch + 1, "phase": "freeze" if run.frozen else "unfreeze",
               "train_loss": stats.pop("loss"), **stats, "val_loss": None, "map50": None, "map": None}
        metrics: dict = {}
        if info.is_main:  # the other ranks wait for rank 0 at the next collective
            row["val_loss"] = metrics["val_loss"] = validation_loss(
                run.eval_model, run.criterion, val_loader, run.device)
            if (epoch + 1) % t.eval_period == 0 or epoch + 1 == t.epochs:
                final = evaluate(run.eval_model, eval_set, run.class_names, run.device,
                                 conf_thresh=t.conf_thresh, nms_thresh=t.nms_thresh,
                                 batch_size=max(1, t.batch_size), workers=cfg.data.workers)
                row["map50"] = metrics["map50"] = final["map50"]
                row["map"] = metrics["map"] = final["map"]
                logger.info("epoch %d: mAP@0.5 %.4f  mAP@0.5:0.95 %.4f  val loss %.4f", epoch + 1,
                            final["map50"], final["map"] or float("nan"), row["val_loss"])
            final["val_loss"] = row["val_loss"]
        run.state.epoch = epoch + 1
        run.state.history.append(row)
        if info.is_main:
            spent = sum(r["epoch_time_s"] for r in run.state.history[start:])
            left = spent / (epoch + 1 - start) * (t.epochs - epoch - 1)
            logger.info("epoch %d/%d done in %.1f s (%.1f img/s): train loss %.4f, val loss %.4f; "
                        "about %s left", epoch + 1, t.epochs, row["epoch_time_s"], row["images_per_s"],
                        row["train_loss"], row["val_loss"], _hms(left))
        _save_epoch(run, epoch + 1, metrics)
        run.callbacks.fire("on_fit_epoch_end", run, epoch, row)
        distributed.barrier()
    return final


def _hms(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _enter_phase(run: Run, epoch: int, train_set: Any, build_loader: Callable) -> None:
    """Freeze or unfreeze the backbone, (re)build the loader and the DDP wrapper on a phase change."""
    t, info = run.cfg.train, run.info
    frozen = epoch < t.freeze_epochs
    if run.train_loader is not None and frozen == run.frozen:
        return
    run.frozen = frozen
    run.batch_size = t.freeze_batch_size if frozen else t.batch_size
    bare = run.bare_model
    for p in bare.backbone.parameters():
        p.requires_grad_(not frozen)
    per_rank = max(1, run.batch_size // info.world_size)
    drop_last = len(train_set) >= per_rank * info.world_size
    run.train_loader = build_loader(train_set, per_rank, shuffle=True, workers=run.cfg.data.workers,
                                    seed=t.seed, drop_last=drop_last, distributed=info.distributed)
    if info.distributed:
        # DDP records which parameters need gradients when it is built: rebuild per phase.
        if run.cfg.model.sync_bn and run.device.type == "cuda" and not isinstance(run.model, nn.parallel.DistributedDataParallel):
            bare = nn.SyncBatchNorm.convert_sync_batchnorm(bare)
        run.model = nn.parallel.DistributedDataParallel(
            bare, device_ids=[run.device.index] if run.device.type == "cuda" else None)
    if info.is_main:
        logger.info("%s phase from epoch %d: batch %d (%d per process), lr %.3g",
                    "freeze" if frozen else "unfreeze", epoch + 1, run.batch_size, per_rank,
                    run.lr_at(epoch))


def _seed_epoch(seed: int, epoch: int, rank: int) -> None:
    """Seed the global RNGs from (seed, epoch, rank): a restarted epoch replays exactly."""
    s = (seed * 1_000_003 + epoch * 7919 + rank) % (2**31 - 1)
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)


def _set_determinism(cfg: Config) -> None:
    if cfg.train.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    elif torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True


# --------------------------------------------------------------------------- save / resume

def _state_dict(run: Run) -> dict:
    rng = distributed.all_gather_object(ckpt.capture_rng())  # every rank's RNG, in rank order
    return {
        "format_version": ckpt.FORMAT_VERSION,
        "trainer_version": ckpt.trainer_version(),
        "model": run.bare_model.state_dict(),
        "ema": run.ema.state_dict() if run.ema is not None else None,
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.schedule.state_dict(),
        "scaler": run.scaler.state_dict(),
        "epoch": run.state.epoch,
        "global_step": run.state.global_step,
        "best_map50": run.state.best_map50,
        "best_epoch": run.state.best_epoch,
        "history": run.state.history,
        "retention": run.state.retention,
        "rng": rng,
        "config": run.cfg.to_dict(),
        "signature": run.signature,
        "class_names": list(run.class_names),
    }


def _save_epoch(run: Run, epoch: int, metrics: dict) -> None:
    """``last.pt`` every epoch, ``epoch_NNN.pt`` every save_period, ``best.pt`` on a better mAP@0.5."""
    t = run.cfg.train
    state = _state_dict(run)  # collective: every rank takes part
    if not run.info.is_main:
        return
    last = os.path.join(run.out_dir, "last.pt")
    map50 = metrics.get("map50")
    improved = map50 is not None and (run.state.best_map50 is None or map50 > run.state.best_map50)
    if improved:
        run.state.best_map50, run.state.best_epoch = map50, epoch
        state["best_map50"], state["best_epoch"] = map50, epoch
    periodic = epoch % t.save_period == 0 or epoch == t.epochs  # the final state always lands on Drive
    if periodic:
        name = f"epoch_{epoch:03d}.pt"
        run.state.retention.setdefault("written", []).append(name)
    state["retention"] = run.state.retention
    ckpt.save_checkpoint(state, last, metrics=metrics)
    run.callbacks.fire("on_model_save", run, last, "last", epoch, metrics)
    if periodic:
        path = ckpt.copy_checkpoint(last, os.path.join(run.out_dir, name))
        run.callbacks.fire("on_model_save", run, path, "periodic", epoch, metrics)
    if improved:
        path = ckpt.copy_checkpoint(last, os.path.join(run.out_dir, "best.pt"))
        logger.info("new best mAP@0.5 %.4f at epoch %d", map50, epoch)
        run.callbacks.fire("on_model_save", run, path, "best", epoch, metrics)


def _make_sync(cfg: Config) -> Any:
    from drivestage.hooks import CheckpointSync
    from drivestage.retention import RetentionPolicy

    d = cfg.drive
    policy = RetentionPolicy(keep_last=d.keep_last or None, keep_best=d.keep_best or None,
                             metric="map50" if d.keep_best else None, mode="max",
                             max_bytes=d.max_bytes)
    # last.pt is rewritten every epoch: mirroring it would re-upload the whole model each
    # epoch and race the rewrite. Drive gets epoch_NNN.pt (every save_period and the final
    # epoch), best.pt and the logs.
    return CheckpointSync(d.logs, policy, local_dir=cfg.train.out_dir, exclude=MIRROR_EXCLUDE)


def _resolve_resume(run: Run, resume: str) -> Optional[str]:
    """Rank 0 decides which checkpoint to start from (fetching it from Drive if needed).

    Under multi-machine DDP the other machines have no copy of a checkpoint rank 0 fetched
    from Drive: their local rank 0 pulls the same file (md5-verified) while the others wait."""
    path: Optional[str] = None
    remote: Optional[str] = None
    if run.info.is_main:
        path, remote = _find_resume(run, resume)
    path, remote = distributed.broadcast_object((path, remote))
    if path and remote:
        with distributed.main_first(run.info, local=True) as first:
            if first:
                ensure_local_checkpoint(path, remote)
    return path


def ensure_local_checkpoint(path: str, remote: str) -> str:
    """Make ``path`` exist: pull ``remote`` (a ``drive:`` file) into its folder if missing."""
    if os.path.isfile(path):
        return path
    import drivestage

    logger.info("fetching %s from %s for this machine", os.path.basename(path), remote)
    result = drivestage.pull(remote, os.path.dirname(os.path.abspath(path)), quiet=True)
    if os.path.abspath(result.path) != os.path.abspath(path):
        os.replace(result.path, path)
    return path


def _find_resume(run: Run, resume: str) -> tuple[Optional[str], Optional[str]]:
    """(local checkpoint path, the drive: file it was fetched from, if any)."""
    if resume in (None, "", "none", "no", "false"):
        return None, None
    if resume != "auto":
        if not os.path.isfile(resume):
            raise CheckpointError(f"--resume {resume}: no such file; use --resume auto or a checkpoint path")
        return resume, None
    local = ckpt.find_latest(run.out_dir)
    if local:
        logger.info("resuming from %s", local)
        return local, None
    if run.sync is None:
        logger.info("no checkpoint in %s: starting fresh", run.out_dir)
        return None, None
    entry = run.sync.latest_remote_checkpoint()
    if entry is None:
        logger.info("no checkpoint in %s nor on %s: starting fresh", run.out_dir, run.cfg.drive.logs)
        return None, None
    name = getattr(entry, "name", "resume.pt")
    dest = os.path.join(run.out_dir, name)
    logger.info("local run folder is empty; fetching %s from %s", name, run.cfg.drive.logs)
    got = run.sync.fetch(entry, dest)
    path = str(got) if isinstance(got, (str, os.PathLike)) else dest
    return path, f"{run.cfg.drive.logs.rstrip('/')}/{name}"


def _restore(run: Run, path: str) -> None:
    """Load every piece of state from a full checkpoint; refuse one for another model shape."""
    state = ckpt.load_checkpoint(path, map_location="cpu")
    ckpt.check_signature(state.get("signature", {}), run.signature, path)
    try:
        run.bare_model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"cannot resume from {path}: the model does not match ({exc})") from None
    if run.ema is not None and state.get("ema"):
        run.ema.load_state_dict(state["ema"])
    run.optimizer.load_state_dict(state["optimizer"])
    if state.get("scaler") and run.scaler.is_enabled():
        run.scaler.load_state_dict(state["scaler"])
    s = run.state
    s.epoch, s.global_step = int(state["epoch"]), int(state["global_step"])
    s.best_map50, s.best_epoch = state.get("best_map50"), state.get("best_epoch")
    s.history = list(state.get("history") or [])[: s.epoch]
    s.retention = dict(state.get("retention") or {})
    s.retention["resumed_from"] = os.path.basename(path)
    if run.info.is_main:
        _repair_run_folder(run, path)
    rng = state.get("rng") or []
    if run.info.rank < len(rng):
        ckpt.restore_rng(rng[run.info.rank])
    run.resumed_from = path
    if run.info.is_main:
        logger.info("resumed from %s: %d epochs done, step %d, best mAP@0.5 %s", path, s.epoch,
                    s.global_step, "none yet" if s.best_map50 is None else f"{s.best_map50:.4f}")


def _repair_run_folder(run: Run, path: str) -> None:
    """After fetching a checkpoint from Drive, rebuild what the local folder would hold."""
    s = run.state
    row = s.history[-1] if s.history else {}
    metrics = {k: row[k] for k in ("val_loss", "map50", "map") if row.get(k) is not None}
    if ckpt.read_sidecar(path) is None:
        # The same sidecar the run wrote (the mirror would otherwise upload one without metrics).
        ckpt.write_sidecar(path, s.epoch, s.global_step, metrics)
    best = os.path.join(run.out_dir, "best.pt")
    if s.best_epoch == s.epoch and not os.path.exists(best) and os.path.dirname(
            os.path.abspath(path)) == os.path.abspath(run.out_dir):
        # The run died before best.pt reached Drive; this checkpoint is that state.
        ckpt.copy_checkpoint(path, best)


# --------------------------------------------------------------------------- SIGTERM

def _install_sigterm(run: "Run") -> Callable[[], None]:
    """Note SIGTERM; the loop stops at the next iteration boundary and flushes Drive.

    The handler only sets a flag: an exception raised from a signal handler can land inside
    code that swallows exceptions (a logging handler, a plot) and be lost."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum, frame):
        run.stop_requested = True

    previous = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)


def _stop_if_requested(run: "Run") -> None:
    """Raise TrainingInterrupted on every rank at the same point once any rank got SIGTERM."""
    if distributed.any_rank(run.stop_requested, run.device):
        raise TrainingInterrupted("terminated by SIGTERM; the Drive mirror was flushed, "
                                  "resume with --resume auto")
