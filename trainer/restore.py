"""Loading a checkpoint's state into a run (:func:`restore`), and what a resume repairs there.

Every piece of state goes back (model, EMA and its counter, optimizer, scaler, position,
history, the save policy's bookkeeping, each rank's RNG), after the checks of
:mod:`trainer.resume_checks`; a checkpoint of another network or class list is refused in
one line. On rank 0 a resume then rebuilds what the run folder would hold (a sidecar for a
checkpoint given without one, ``best.pt`` and ``epoch_NNN.pt`` a killed save never made,
sidecars of copies left undescribed), and warns of watched config keys that changed.
"""
from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any, Optional, Sequence

from trainer import checkpoint as ckpt
from trainer import resume_checks as checks, resume_states, sample_list
from trainer.errors import CheckpointError, fine_tune_advice
from trainer.state import TrainState

if TYPE_CHECKING:
    from trainer.resume import Start

logger = logging.getLogger(__name__)


def restore(run: Any, start: Start) -> Optional[dict]:
    """Load every piece of state of ``start.path`` into ``run``; returns this rank's RNG state
    (restored by the loop once the resumed epoch is seeded). Refuses another model shape."""
    path = start.path
    state = ckpt.load_checkpoint(path, map_location="cpu")
    ckpt.check_signature(state.get("signature", {}), run.signature, path)
    saved = saved_classes(state)
    check_classes(saved, list(run.class_names), path)
    if saved is None and run.info.is_main:
        _unchecked_classes(state, list(run.class_names), path)
    # Well formed is not enough: NaN weights, or an EMA/optimizer of another model, are
    # refused here in one line (trainer.resume_checks), before a step is trained.
    checks.check_finite(state["model"], "model weights", path)
    resume_states.check_rng(state, path)   # (a traceback at the first iteration before)
    resume_states.check_scaler(state, path)   # (NaN or 0: every step skipped, silently)
    try:
        run.bare_model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"cannot resume from {path}: the model does not match "
                              f"({_mismatch(run.bare_model, state['model'], exc)})") from None
    if run.ema is not None and state.get("ema"):
        checks.load_ema(run.ema, state["ema"], path)
    checks.load_optimizer(run.optimizer, state["optimizer"], path,
                          trained_with=checks.trained_optimizer(state))
    if state.get("scaler") and run.scaler.is_enabled():
        run.scaler.load_state_dict(state["scaler"])
    fresh_run, listed = run.state.run, run.state.samples
    run.state = TrainState.from_checkpoint(state)
    # Another training list than it was saved from: refused in the middle of an epoch.
    sample_list.check(run.state.samples, listed, run.state.pos, path, run.cfg.data.allow_change,
                      run.state.meter, run.info.is_main)
    sample_list.check_seed(state.get("config"), run.cfg.train.seed, run.state.pos, path,
                           run.cfg.data.allow_change, run.info.is_main)
    run.state.samples = listed
    if not state.get("run"):
        run.state.run = fresh_run
        if run.info.is_main:
            logger.info("%s has no run identity (trainer 0.1.0); it continues as run %s", path,
                        fresh_run)
    run.state.resumed_from = os.path.basename(path)
    run.checkpointer.load_state_dict(state)
    run.resumed_from = start.where
    if run.info.is_main:
        _warn_changed(state.get("config"), run.cfg.to_dict(), path)
        _say_epochs(state.get("config"), run.cfg.train.epochs, path, run.state.pos)
        _repair_run_folder(run, path)
        best = run.checkpointer.best_map50
        logger.info("resumed from %s at %s (run %s; best mAP@0.5 %s)", start.where,
                    run.state.pos.label, run.state.run,
                    "none yet" if best is None else f"{best:.4f}")
    rng = state.get("rng") or []
    return rng[run.info.rank] if run.info.rank < len(rng) else None


#: Config keys a run may change on resume, but not silently: what the network sees and learns
#: from (the class list and the shapes are refused instead), what orders an epoch's
#: samples (a resume in the middle of an epoch skips the batches done at the new size),
#: the optimizer's settings (kept from the config over the checkpoint's: another kind of
#: optimizer is refused, trainer.resume_checks.check_optimizer_kind), and what the learning
#: rate and the weights evaluated are a function of (the schedule is one of the fractional
#: epoch and these: a changed train.lr or lr_schedule, or train.ema false dropping the EMA, went
#: on without a word; attacktrain45). ``train.epochs`` too, but a run extended is what "train
#: more" is: said in a line of its own (:func:`_say_epochs`), not warned of. And what the
#: mAP that picks ``best.pt`` is measured with (the validation images evaluated, the
#: thresholds): the run's best so far is compared with another measure from then on. And the
#: augmentation and the loss's settings (what the rest of the run learns from, and in the
#: middle of an epoch the draws of the samples still to come): they went on without a word
#: (trainres48).
WATCHED_KEYS = ("data.drive_zip", "data.voc_root", "data.year", "data.train", "data.val",
                "data.max_val_images", "model.input_size", "model.anchors",
                "train.freeze_epochs", "train.batch_size", "train.freeze_batch_size", "train.lr",
                "train.min_lr_ratio", "train.lr_schedule", "train.nbs", "train.ema",
                "train.ema_decay", "train.conf_thresh", "train.nms_thresh", "train.seed",
                "train.optimizer", "train.momentum", "train.weight_decay", "train.mosaic",
                "train.mosaic_prob", "train.mixup", "train.mixup_prob", "train.special_aug_ratio",
                "train.label_smoothing", "train.focal_loss", "train.grad_clip")


def _warn_changed(saved: Any, current: dict[str, Any], path: Optional[str]) -> None:
    """One warning naming the :data:`WATCHED_KEYS` whose value differs from the checkpoint's."""
    if not isinstance(saved, dict):
        return
    diffs = []
    for key in WATCHED_KEYS:
        section, name = key.split(".")
        before, now = (saved.get(section) or {}).get(name), current[section][name]
        if name in (saved.get(section) or {}) and before != now:
            diffs.append(f"{key} ({before}, now {now})")
    if diffs:
        logger.warning("%s was trained with another %s; training goes on with the config's",
                       path, ", ".join(diffs))


def _say_epochs(saved: Any, epochs: int, path: str, pos: Any) -> None:
    """One line when ``train.epochs`` differs from the checkpoint's: the learning rate is a
    function of the fractional epoch and the epochs (trainer.optim.LRSchedule), so a run
    extended from 100 to 150 epochs goes on in the middle of a longer curve, far above the
    rate it had ended at, and mosaic stops at another epoch; before, nothing said so."""
    train = saved.get("train") if isinstance(saved, dict) else None
    before = train.get("epochs") if isinstance(train, dict) else None
    # (None left to train: trainer.engine says so instead.)
    if isinstance(before, int) and not isinstance(before, bool) and before != epochs and \
            epochs > pos.epoch:
        logger.info("%s was trained with train.epochs %d, the config says %d: the learning rate "
                    "and the augmentation follow the schedule of %d epoch%s from here (%s)",
                    path, before, epochs, epochs, "s" if epochs != 1 else "", pos.label)


def check_classes(saved: Any, names: list[str], path: Optional[str]) -> None:
    """Refuse a checkpoint trained on other class names, or in another order, than the config
    gives (the signature compares their count only): each output would go on learning
    another class. ``saved`` None (:func:`saved_classes`: a checkpoint of trainer 0.1.0
    whose config names a file) is let through; :func:`restore` warns of it. ``trainer
    status`` asks the same of Drive's candidates (:func:`trainer.status.layout_check`)."""
    if not isinstance(saved, list) or [str(n) for n in saved] == [str(n) for n in names]:
        return

    def listed(items: Sequence[Any]) -> str:
        return "[" + ", ".join(str(n) for n in items) + "]"

    raise CheckpointError(
        f"cannot resume from {path}: it was trained on the classes {listed(saved)} and the "
        f"config names {listed(names)} (data.classes; a class is its place in the list). "
        f"Resume with the classes it was trained on, or start a new run that fine-tunes from "
        f"it: {fine_tune_advice(path)}")


def saved_classes(state: dict) -> Any:
    """The class names ``state`` was trained on: its ``class_names``, else (trainer 0.1.0
    wrote none) the names its config gave inline (``data.classes: [cat, dog]``); None where
    it says only the file they were read from."""
    if "class_names" in state:
        return state["class_names"]
    given = _config_classes(state)
    return given if isinstance(given, list) else None


def _config_classes(state: dict) -> Any:
    """``data.classes`` of the config saved in ``state`` (a path, or the names), else None."""
    config = state.get("config")
    data = config.get("data") if isinstance(config, dict) else None
    return data.get("classes") if isinstance(data, dict) else None


def _unchecked_classes(state: dict, names: list[str], path: Optional[str]) -> None:
    """Warn that ``path`` (no class names in it: trainer 0.1.0) cannot be checked against the
    config's classes: resumed with them reordered, it went on silently (trainlefts46).
    Warned, not refused: most such resumes give the same file, and no one could say so."""
    given = _config_classes(state)
    read = f"; its config read them from {given}" if isinstance(given, str) else ""
    logger.warning(
        "%s does not record the classes it was trained on (a checkpoint of trainer 0.1.0%s): "
        "that the config's [%s] are those, in that order, cannot be checked (a class is its "
        "place in the list; reordered, each output goes on learning another class): if it "
        "is not the list it was trained on, stop and resume with that one", path,
        read, ", ".join(str(n) for n in names))


def _mismatch(model: Any, given: dict, exc: RuntimeError) -> str:
    """Why ``given`` does not load into ``model``, on one line (torch's own text lists every
    key, on many lines)."""
    return checks.describe_mismatch(model.state_dict(), given) or " ".join(str(exc).split())


#: The temporary folders (trainer.stop_save) a stop or a hung run folder kept a state in.
KEPT_PREFIXES = ("trainer-rescued-", "trainer-stop-")


def _repair_run_folder(run: Any, path: str) -> None:
    """After fetching a checkpoint from Drive, rebuild what the local folder would hold."""
    s, best = run.state, run.checkpointer.best_epoch
    if ckpt.read_sidecar(path) is None:
        # A checkpoint given by path without its sidecar: write one, so the mirror has it.
        from drivestage import sidecar as sidecars

        md5, size = _file_md5(path)
        row = s.history[-1] if s.history and not s.pos.epoch_iteration else {}
        sidecars.write(path, sidecars.Sidecar(
            epoch=s.pos.epoch, iteration=s.pos.iteration, epoch_iteration=s.pos.epoch_iteration,
            metrics={k: row[k] for k in ("val_loss", "map50", "map") if row.get(k) is not None},
            run=s.run, md5=md5, size=size))
    _describe_copies(path)
    t = run.cfg.train
    # (Or a stop's copy of its state kept in /tmp (trainer.stop_save): the run folder and Drive
    # never got that epoch, and a resume of the last one trains nothing that would make it.)
    in_run_folder = os.path.dirname(os.path.abspath(path)) == os.path.abspath(t.out_dir) or \
        os.path.basename(os.path.dirname(os.path.abspath(path))).startswith(KEPT_PREFIXES)
    target = os.path.join(t.out_dir, "best.pt")
    if best == s.pos.epoch and not s.pos.epoch_iteration and ckpt.read_sidecar(target) is None \
            and in_run_folder:
        # The run died before best.pt reached Drive, or before its sidecar (then best.pt may
        # still hold the previous best, undescribed); this checkpoint is that state.
        _copy_for_repair(path, target)
    target = os.path.join(t.out_dir, f"epoch_{s.pos.epoch:03d}.pt")
    if s.pos.epoch and not s.pos.epoch_iteration and in_run_folder and \
            (s.pos.epoch % t.save_period == 0 or s.pos.epoch == t.epochs) and \
            ckpt.read_sidecar(target) is None:
        # Its epoch copy could not be written (a full disk, something in the way) or the run
        # died first: last.pt holds the epoch but never goes to Drive, so without the copy
        # Drive would never get this epoch, however often the run is started again.
        _copy_for_repair(path, target)


def _copy_for_repair(path: str, target: str) -> None:
    """Make ``target`` a copy of ``path``; a failure (a full disk) is a warning: training
    goes on from ``path`` all the same, and the next resume tries again."""
    try:
        ckpt.copy_checkpoint(path, target)
    except (OSError, CheckpointError) as exc:
        logger.warning("could not make %s from %s (%s); the next resume tries again",
                       os.path.basename(target), os.path.basename(path), exc)


def _describe_copies(path: str) -> None:
    """Give a copy of ``path`` in its folder that has no sidecar the sidecar of ``path``.

    A run killed between a copy (``epoch_002.pt``, ``best.pt``) and its sidecar left the copy
    complete but undescribed: never a checkpoint to resume from, and on Drive never verified,
    for ever. Only files of the same size are hashed (few: the others are other files)."""
    folder = os.path.dirname(os.path.abspath(path))
    size, md5 = os.path.getsize(path), None
    for other in ckpt.undescribed(folder):
        if os.path.abspath(other) == os.path.abspath(path):
            continue
        try:
            if os.path.getsize(other) != size:
                continue
            md5 = md5 or _file_md5(path)[0]
            side = ckpt.read_sidecar(path)
            if side is None or side.md5 != md5 or _file_md5(other)[0] != md5:
                continue  # (a sidecar that does not describe its own file describes no copy)
            ckpt.copy_sidecar(path, other)
        except OSError:
            continue  # gone meanwhile
        logger.info("%s had no sidecar (a run stopped between it and its sidecar); it is %s's "
                    "copy and now has its sidecar", os.path.basename(other), os.path.basename(path))


def _file_md5(path: str) -> tuple[str, int]:
    from drivestage.localfs import file_md5

    return file_md5(path), os.path.getsize(path)
