"""The training loop: ``fit``, ``evaluate``; one epoch's steps: :mod:`trainer.one_epoch`.

Reads top to bottom like torchvision's detection references. ``fit`` stages the data,
builds the model, decides where to start (:mod:`trainer.resume`), assembles the run in one
place and trains the remaining epochs; the save policy (:mod:`trainer.saving`) and
everything that is not training (results.csv, plots, TensorBoard) hang off callback events.
Counting follows :mod:`trainer.state`. Rank 0 alone evaluates, saves and talks to Drive.
"""
from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Sequence

import numpy as np
import torch
from torch import nn

from drivestage.errors import MirrorError
from trainer import checkpoint as ckpt
from trainer import distributed, peer_loss, resume, sample_list, silence, stuck
from trainer.callbacks import Callback, CallbackList, CSVLogger, PlotCallback, ProgressLines, TensorBoardLogger
from trainer.config import Config, model_signature
from trainer.determinism import set_determinism as _set_determinism
from trainer.errors import ConfigError
from trainer.evaluation import evaluate, validation_loss
from trainer.one_epoch import train_one_epoch
from trainer.optim import LRSchedule, ModelEMA, build_optimizer, check_batches, process_batch, scaled_lr
from trainer.saving import Checkpointer
from trainer.staging import DataSpec, local_weights, stage_data
from trainer.state import EpochMeter, Position, TrainState
from trainer.stopping import StopFlag, StopRequested
from trainer.writer import BackgroundWriter, SafeOnDrive

logger = logging.getLogger(__name__)

__all__ = ["fit", "evaluate", "validation_loss", "FitResult", "Run",
           "stage_data", "local_weights"]


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
    drive_note: Optional[str] = None   # every file on Drive, the rest of its final push failed


@dataclass
class Run:
    """Everything one training run holds, assembled once in :func:`fit`; callbacks receive it."""

    cfg: Config
    info: distributed.DistInfo
    device: torch.device
    model: nn.Module                   # the network; DDP-wrapped when distributed
    criterion: nn.Module
    optimizer: torch.optim.Optimizer
    ema: Optional[ModelEMA]
    scaler: Any
    schedule: LRSchedule
    class_names: list
    signature: dict
    state: TrainState
    stop: StopFlag
    checkpointer: Checkpointer
    writer: Optional[BackgroundWriter]
    callbacks: CallbackList = field(default_factory=CallbackList)
    resumed_from: Optional[str] = None
    frozen: bool = False
    batch_size: int = 0
    train_loader: Any = None

    @property
    def out_dir(self) -> str:
        return self.cfg.train.out_dir

    @property
    def bare_model(self) -> nn.Module:
        return distributed.unwrap(self.model)

    @property
    def eval_model(self) -> nn.Module:
        return self.ema.ema if self.ema is not None else self.bare_model

    def lr_at(self, pos: float) -> float:
        """The learning rate at fractional epoch ``pos`` for the current phase's batch size."""
        return self.schedule(pos, self.batch_size)

    def drive_text(self, short: bool = False) -> str:
        """The age of the newest checkpoint verified on Drive ("" when Drive is off)."""
        if self.writer is None or self.writer.drive is None:
            return ""
        return self.writer.safe_text("nothing verified yet" if short else
                                     "Drive: nothing verified yet", short=short)


def fit(cfg: Config, *, resume: str = "auto", callbacks: Sequence[Callback] = ()) -> FitResult:
    """Train as configured; ``resume`` is ``auto`` (local, then Drive), ``none`` or a path."""
    from drivestage.state import state_dir
    from trainer.run_lock import RunFolderLock

    info, device = distributed.setup(cfg.train.device)
    _set_determinism(cfg)
    os.makedirs(cfg.train.out_dir, exist_ok=True)
    lock = RunFolderLock(cfg.train.out_dir)
    try:   # (a rank silent, or lost before training: one line; trainer.silence)
        with silence.watch(cfg, info):   # one run per folder; a refusal reaches every rank
            with distributed.main_first(info, local=False) as first:
                if first:
                    if cfg.drive.logs:   # its pushes need the state folder: a bad one is the
                        state_dir()      # run's one Error, not a lock warning and then it
                    lock.acquire()
            return _fit(cfg, info, device, resume, callbacks, StopFlag(cfg.train.grace_seconds))
    finally:
        lock.release()
        distributed.cleanup()


def _fit(cfg: Config, info: distributed.DistInfo, device: torch.device, resume_from: str,
         extra_callbacks: Sequence[Callback], stop: StopFlag) -> FitResult:
    t = cfg.train
    _warn_if_on_drive_mount(cfg, info)
    data = stage_data(cfg, info)           # a bad dataset fails before anything is written
    model, criterion, ema, optimizer = _build(cfg, data, device, info)
    drive = _drive_folder(cfg, stop) if info.is_main and cfg.drive.logs else None
    if drive is not None:
        drive.check_writable()   # not hours of training whose checkpoints cannot leave here
    # --resume auto passes over a newest checkpoint that fails the resume checks (NaN, an EMA
    # or optimizer of another model) to the newest that passes, instead of refusing to start.
    from trainer.resume_checks import vetter

    start = resume.choose(cfg, resume_from, info, drive,
                          vet=vetter(distributed.unwrap(model), ema, optimizer,
                                     model_signature(cfg, len(data.class_names))))
    _check_batches(cfg, info, start)   # a batch the processes cannot share: before training
    if cfg.model.weights and not start.path:   # (a resume never uses them: a fresh VM lacks them)
        ema = _start_weights(cfg, model, ema, info)
    _check_room(cfg, info, start, model, ema, optimizer, data)  # not an epoch trained, then lost
    writer = None
    if info.is_main:
        writer = BackgroundWriter(t.out_dir, drive, interval_s=60 * (t.save_minutes or 10))
        if start.safe is not None:  # what the progress bar shows until this run's first upload
            writer.safe = SafeOnDrive.of(start.safe)
    checkpointer = Checkpointer(cfg, info, writer, stop, passed_over=start.passed_over)
    run = Run(cfg, info, device, model, criterion, optimizer, ema,
              torch.amp.GradScaler(device.type, enabled=_amp(cfg, device)), LRSchedule(cfg),
              data.class_names, model_signature(cfg, len(data.class_names)), TrainState(
                  run=start.run, samples=sample_list.fingerprint(data.train_lines)), stop, checkpointer, writer)
    rank0 = [CSVLogger(t.out_dir), PlotCallback(t.out_dir), TensorBoardLogger(t.out_dir),
             ProgressLines(t.log_period), *extra_callbacks] if info.is_main else []
    run.callbacks = CallbackList([*rank0, checkpointer])   # the policy last: it sees fresh files
    try:
        try:
            rng = resume.restore(run, start) if start.path else None
        finally:
            resume.loaded(start, info)   # (a hidden copy of rank 0's bytes is removed)
        if writer is not None and start.path:
            # This run's saves come after every save of the run seen here, whatever the clock.
            writer.not_before(resume.saved_before(t.out_dir, run.state.run, start))
        if writer is not None and run.state.resumed_from:
            writer.protect(run.state.resumed_from)  # never pruned on Drive while we depend on it
        if writer is not None and start.path:
            # Resumed on purpose from an older checkpoint: recorded now, here and on Drive,
            # not only at this branch's first save (a run stopped before it was forgotten).
            try:
                resume.record_branch(t.out_dir, start, run.state.run, writer)
            except MirrorError:
                # Nothing new to flush on the way out: a second push of what just failed,
                # after all its retries, only doubled the wait for the error.
                writer.close(push=False)
                raise
        begun_at = run.state.pos.epoch
        # From here on there is something to save: SIGTERM/SIGINT only set the stop flag.
        with stop.installed(), peer_loss.watched(run):   # (a lost rank: one line, rank 0 saved)
            final = _train(run, data, rng)
            run.callbacks.fire("on_fit_end", run)
    except BaseException as exc:
        run.callbacks.fire("on_interrupt", run, exc)
        raise
    last = os.path.join(t.out_dir, "last.pt")
    return FitResult(out_dir=t.out_dir, epochs_run=max(t.epochs - begun_at, 0), resumed_from=run.resumed_from,
                     best_map50=checkpointer.best_map50, best_epoch=checkpointer.best_epoch,
                     final=final, last_checkpoint=last if os.path.isfile(last) else None,
                     model=run.bare_model, drive_note=checkpointer.drive_note)


def _check_batches(cfg: Config, info: distributed.DistInfo, start: resume.Start) -> None:
    """Refuse (ConfigError) a phase batch smaller than the number of processes, for the phases
    trained from where the run starts (:func:`trainer.optim.check_batches`): each process took
    one image and the run trained at a batch above the one configured. Rank 0 decides."""
    if info.world_size == 1:
        return
    why = None
    if info.is_main:
        side = ckpt.read_sidecar(start.path) if start.path else None
        try:
            check_batches(cfg, info.world_size, (side.epoch or 0) if side is not None else 0)
        except ConfigError as exc:
            why = str(exc)
    why = distributed.broadcast_object(why)
    if why is not None:
        raise ConfigError(why)


def _check_room(cfg: Config, info: distributed.DistInfo, start: resume.Start, model: nn.Module,
                ema: Optional[ModelEMA], optimizer: torch.optim.Optimizer,
                data: DataSpec) -> None:
    """Refuse to train (SaveError, exit 1) when the run folder has no room for the next
    epoch's checkpoint files, the autosaves kept beside them and the image cache written
    before them (:mod:`trainer.room`): on a small disk the first epoch was trained, then its
    save failed and the epoch was lost. Rank 0 decides and tells every rank."""
    from trainer import room
    from trainer.errors import SaveError

    why = None
    if info.is_main:
        done, size = 0, room.checkpoint_bytes(distributed.unwrap(model), ema, optimizer)
        at: Optional[int] = None
        if start.path:
            side = ckpt.read_sidecar(start.path)
            done = (side.epoch or 0) if side is not None else 0
            at = side.iteration if side is not None else None
            size = max(size, os.path.getsize(start.path))   # the real size, where there is one
        why = room.shortage(cfg, done, size, images=(data.train_lines, data.val_lines),
                            resumed_at=at, aside={os.path.basename(p) for p, _ in start.passed_over})
    why = distributed.broadcast_object(why)
    if why is not None:
        raise SaveError(why)


def _train(run: Run, data: DataSpec, resumed_rng: Optional[dict]) -> dict:
    """Train the remaining epochs from ``run.state.pos``; returns the last evaluation's metrics."""
    from trainer.sample_list import resumed_epoch
    from trainer.stopping import prepared
    from trainer.worker_deaths import guarded

    cfg, info, t, s = run.cfg, run.info, run.cfg.train, run.state
    train_set, val_loader, eval_set = prepared(run.stop, lambda: _datasets(cfg, data, info))
    if s.pos.epoch >= t.epochs:
        logger.info("the checkpoint already holds %d of %d epochs; nothing to train", s.pos.epoch, t.epochs)
        return dict(s.history[-1]) if s.history else {}
    logger.info("training epochs %d..%d of %d on %s (%d train / %d val images, %d classes)",
                s.pos.epoch + 1, t.epochs, t.epochs, run.device, len(train_set),
                len(eval_set), len(data.class_names))
    run.callbacks.fire("on_fit_start", run)
    final: dict = {}
    first = s.pos.epoch
    for epoch in range(first, t.epochs):
        loader = _enter_phase(run, epoch, train_set)
        done = s.pos.epoch_iteration          # > 0 only in an epoch a resume lands in the middle of
        _seed_epoch(t.seed, epoch, info.rank)
        if done and resumed_rng is not None:
            ckpt.restore_rng(resumed_rng)      # the RNG exactly as it was at that iteration
        resumed_rng = None
        s.meter.samples = resumed_epoch(loader, epoch, done, s.meter.samples, run)
        if not done:
            s.meter = EpochMeter()
        run.callbacks.fire("on_train_epoch_start", run, epoch)
        batches = guarded(loader, run)
        try:
            stats = train_one_epoch(
                run.model, run.criterion, run.optimizer, batches, run.device, start=s.pos,
                steps=len(loader) + done, lr_at=run.lr_at, scaler=run.scaler, ema=run.ema,
                meter=s.meter, after_step=lambda pos, logs: _after_step(run, pos, logs),
                before_step=lambda pos: run.callbacks.fire("on_train_batch_start", run, pos),
                autocast=_autocast(cfg, run.device), grad_clip=t.grad_clip,
                channels_last=t.channels_last, world_size=info.world_size,
                desc=f"epoch {epoch + 1}/{t.epochs}{' (frozen)' if run.frozen else ''}",
                status=(lambda: run.drive_text(short=True)) if info.is_main else None)
        except BaseException:
            # Its workers end with the epoch, not when its error is collected: a stop's error
            # kept (a notebook's last traceback) kept them running, holding their memory, and
            # the collection waited up to 5 s for each (evalworkers38).
            batches.close()
            raise
        distributed.broadcast_buffers(run.model)  # every rank leaves with rank 0's BN statistics
        row, metrics = _evaluate_epoch(run, epoch, stats, val_loader, eval_set)
        final = metrics or final
        run.callbacks.fire("on_validation_end", run, s.pos, row)   # a stop during it saves here
        s.pos, s.meter = s.pos.epoch_done(), EpochMeter()
        s.history.append(row)
        _log_epoch(run, row, first)
        run.callbacks.fire("on_fit_epoch_end", run, s.pos, row)
        distributed.barrier()
    return final


def _after_step(run: Run, pos: Position, logs: dict) -> None:
    run.state.pos = pos
    run.callbacks.fire("on_train_batch_end", run, pos, logs)   # the Checkpointer may save or stop


# --------------------------------------------------------------------------- evaluation

def _evaluate_epoch(run: Run, epoch: int, stats: dict, val_loader: Iterable,
                    eval_set: Any) -> tuple[dict, dict]:
    """The epoch's results.csv row and (when mAP was computed) its metrics; rank 0 evaluates,
    the others wait at the next collective. A stop request leaves the row without metrics."""
    t = run.cfg.train
    means = run.state.meter.means()
    row = {"epoch": epoch + 1, "phase": "freeze" if run.frozen else "unfreeze",
           "train_loss": means["loss"], "box": means["box"], "obj": means["obj"],
           "cls": means["cls"], **stats, "val_loss": None, "map50": None, "map": None}
    final: dict = {}
    if not run.info.is_main:
        return row, final
    try:
        row["val_loss"] = validation_loss(run.eval_model, run.criterion, val_loader, run.device,
                                          stop=run.stop)
        if (epoch + 1) % t.eval_period == 0 or epoch + 1 == t.epochs:
            final = evaluate(run.eval_model, eval_set, run.class_names, run.device,
                             conf_thresh=t.conf_thresh, nms_thresh=t.nms_thresh,
                             batch_size=max(1, t.batch_size), workers=run.cfg.data.workers,
                             stop=run.stop)
            row["map50"], row["map"] = final["map50"], final["map"]
            logger.info("epoch %d: mAP@0.5 %s  mAP@0.5:0.95 %s  val loss %.4f", epoch + 1,
                        metric_text(final["map50"]), metric_text(final["map"]), row["val_loss"])
        final["val_loss"] = row["val_loss"]
    except StopRequested:
        logger.info("%s during the evaluation of epoch %d: saving instead", run.stop.name, epoch + 1)
    return row, final


def _log_epoch(run: Run, row: dict, first: int) -> None:
    if not run.info.is_main:
        return
    t = run.cfg.train
    epoch = row["epoch"]
    # (An epoch resumed mid-way from a checkpoint of before trainlefts46 has no time.)
    known = [r["epoch_time_s"] for r in run.state.history[first:]
             if r.get("epoch_time_s") is not None]
    left = (f"about {_hms(sum(known) / len(known) * (t.epochs - epoch))} left" if known else
            "the time left unknown")
    took = row["epoch_time_s"]
    drive = run.drive_text()
    logger.info("epoch %d/%d done in %s (%.1f img/s): train loss %.4f, val loss %.4f; "
                "%s%s", epoch, t.epochs, f"{took:.1f} s" if took is not None else
                "an unknown time (resumed from a checkpoint that does not say the time before)",
                row["images_per_s"], row["train_loss"],
                row["val_loss"] if row["val_loss"] is not None else float("nan"),
                left, f"; {drive}" if drive else "")


def _hms(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


# --------------------------------------------------------------------------- assembling the run

def _build(cfg: Config, data: DataSpec, device: torch.device, info: distributed.DistInfo):
    """The model (model.weights not loaded yet), the loss, the EMA and the optimizer."""
    from trainer.loss import YoloLoss
    from trainer.model import YoloV4Tiny

    t = cfg.train
    n = len(data.class_names)
    torch.manual_seed(t.seed)
    model = YoloV4Tiny(n, cfg.model.anchors, cfg.model.anchors_mask, input_size=cfg.model.input_size,
                       phi=cfg.model.phi, width=cfg.model.width)
    model.to(device)   # (model.weights: loaded by _start_weights, on a fresh start alone)
    if t.channels_last:
        model.to(memory_format=torch.channels_last)
    criterion = YoloLoss(n, cfg.model.anchors, cfg.model.anchors_mask,
                         input_size=cfg.model.input_size, label_smoothing=t.label_smoothing,
                         focal_loss=t.focal_loss).to(device)
    ema = ModelEMA(model, decay=t.ema_decay) if t.ema else None
    optimizer = build_optimizer(model, cfg, scaled_lr(cfg, t.freeze_batch_size)[0])
    return model, criterion, ema, optimizer


def _start_weights(cfg: Config, model: nn.Module, ema: Optional[ModelEMA],
                   info: distributed.DistInfo) -> Optional[ModelEMA]:
    """model.weights loaded into ``model`` for a fresh start; the EMA made again from it."""
    from trainer.weights import load_weights

    # The first rank of each machine pulls drive: weights; the others then find them staged.
    with distributed.main_first(info):
        weights = local_weights(cfg.model.weights, cfg)
    load_weights(model, weights)  # logs what was loaded and what was skipped (and why)
    return ModelEMA(model, decay=cfg.train.ema_decay) if ema is not None else None


def metric_text(value: Optional[float]) -> str:
    """A metric as the logs print it: four decimals, ``n/a`` when there is none (a measured
    0.0 is 0.0000: it was shown as nan)."""
    return "n/a" if value is None else f"{value:.4f}"


def _drive_folder(cfg: Config, stop: StopFlag):
    from trainer.lease import held_folder   # (the run's lease taken there first)

    return held_folder(cfg, stop)


def _datasets(cfg: Config, data: DataSpec, info: distributed.DistInfo):
    from trainer.data.dataset import EvalDataset, YoloDataset, build_loader

    t = cfg.train
    n = len(data.class_names)
    cache = {"cache": cfg.data.cache, "cache_dir": os.path.join(cfg.data.root, "image-cache")}
    train_set = YoloDataset(data.train_lines, cfg.model.input_size, n, train=True,
                            mosaic=t.mosaic, mixup=t.mixup, mosaic_prob=t.mosaic_prob,
                            mixup_prob=t.mixup_prob, special_aug_ratio=t.special_aug_ratio,
                            epochs=t.epochs, seed=t.seed, **cache)
    val_set = YoloDataset(data.val_lines, cfg.model.input_size, n, train=False, seed=t.seed, **cache)
    val_loader = build_loader(val_set, max(1, t.batch_size // info.world_size), shuffle=False,
                              workers=cfg.data.workers, seed=t.seed, drop_last=False)
    lines = data.val_lines[: cfg.data.max_val_images] if cfg.data.max_val_images else data.val_lines
    # With the class names, ground truth comes from the VOC XML: difficult objects are ignored.
    return train_set, val_loader, EvalDataset(lines, cfg.model.input_size, classes=data.class_names)


def _enter_phase(run: Run, epoch: int, train_set: Any):
    """Freeze or unfreeze the backbone, (re)build the loader and the DDP wrapper on a phase change."""
    from trainer.data.dataset import build_loader

    t, info = run.cfg.train, run.info
    frozen = epoch < t.freeze_epochs
    if run.train_loader is not None and frozen == run.frozen:
        return run.train_loader
    run.frozen = frozen
    key, batch = ("train.freeze_batch_size", t.freeze_batch_size) if frozen else \
        ("train.batch_size", t.batch_size)
    # The batch trained, not the one configured, sets the learning rate (lefts45): batch 16
    # on 3 processes trains at 15 (5 each), and was scaled for 16 without a word.
    per_rank, run.batch_size = process_batch(batch, info.world_size, key)
    if run.batch_size != batch and info.is_main:
        logger.warning("%s %d is not a multiple of the %d processes: each takes %d image%s a "
                       "step, so the batch trained is %d, and the learning rate is scaled for "
                       "%d. Set a multiple of %d to train at the batch configured", key, batch,
                       info.world_size, per_rank, "s" if per_rank != 1 else "", run.batch_size,
                       run.batch_size, info.world_size)
    bare = run.bare_model
    for p in bare.backbone.parameters():
        p.requires_grad_(not frozen)
    drop_last = len(train_set) >= per_rank * info.world_size
    run.train_loader = build_loader(train_set, per_rank, shuffle=True, workers=run.cfg.data.workers,
                                    seed=t.seed, drop_last=drop_last, distributed=info.distributed)
    if info.distributed:
        # DDP records which parameters need gradients when it is built: rebuild per phase.
        if run.cfg.model.sync_bn and run.device.type == "cuda" and not isinstance(run.model, nn.parallel.DistributedDataParallel):
            bare = nn.SyncBatchNorm.convert_sync_batchnorm(bare)
        with stuck.waiting():   # (it broadcasts rank 0's parameters)
            run.model = nn.parallel.DistributedDataParallel(
                bare, device_ids=[run.device.index] if run.device.type == "cuda" else None)
    if info.is_main:
        logger.info("%s phase from epoch %d: batch %d (%d per process), lr %.3g",
                    "freeze" if frozen else "unfreeze", epoch + 1, run.batch_size, per_rank,
                    run.lr_at(epoch))
    return run.train_loader


def _seed_epoch(seed: int, epoch: int, rank: int) -> None:
    """Seed the global RNGs from (seed, epoch, rank): a restarted epoch replays exactly."""
    s = (seed * 1_000_003 + epoch * 7919 + rank) % (2**31 - 1)
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)


def _amp(cfg: Config, device: torch.device) -> bool:
    return bool(cfg.train.amp and device.type == "cuda")


def _autocast(cfg: Config, device: torch.device) -> Optional[torch.dtype]:
    """fp16 on CUDA with train.amp; bf16 on CPUs with native bf16 and train.cpu_amp (on CPUs
    without it bf16 is emulated and slower); else None (fp32)."""
    if _amp(cfg, device):
        return torch.float16
    if cfg.train.cpu_amp and device.type == "cpu" and distributed.cpu_has_bf16():
        return torch.bfloat16
    return None


def _warn_if_on_drive_mount(cfg: Config, info: distributed.DistInfo) -> None:
    """The recipe kept logs/ on the Drive mount; here that is slow and no safer."""
    from drivestage.localfs import drive_mount

    mount = drive_mount(cfg.train.out_dir)
    if mount is not None and info.is_main:
        logger.warning(
            "train.out_dir %s is inside the Google Drive mount %s: checkpoints written there go "
            "through the slow mount and may not reach Drive before the runtime dies. Keep "
            "train.out_dir on local disk and set drive.logs=drive:... to mirror it, verified",
            cfg.train.out_dir, mount)
