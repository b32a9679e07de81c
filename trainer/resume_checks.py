"""Checks of a checkpoint's contents before a run goes on from it (:func:`trainer.resume.restore`).

A checkpoint can be well formed (it loads with ``weights_only``, has every key, its sidecar
vouches for its bytes) and still be no state to train on: written by a run that had diverged
(NaN or infinite weights), or by another trainer or a hand-edited file whose EMA or
optimizer state belongs to another model. Before, a NaN model trained one step and stopped
with "the loss became nan ... resume from the last checkpoint" (the same one, again and
again); an infinite EMA trained silently (its evaluations and ``best.pt`` garbage); an EMA or
optimizer of another shape ended in torch's traceback, the last at the first optimizer step;
random states that do not restore (a checkpoint saved in the middle of an epoch) at its first
iteration (those checks: :mod:`trainer.resume_states`). Each is now one line naming the file
and what is wrong, before a step is trained; no file is deleted (the run folder and Drive are
left as they are).
"""
from __future__ import annotations

import os
import re
from typing import Any, Callable, Optional

import torch

from trainer.errors import CheckpointError, UnusableCheckpointError, fine_tune_advice

#: The end of every refusal here: what to do instead. (It said "trainer status and drivestage
#: ls list them": trainer status shows one checkpoint, the run's newest on Drive, often the
#: bad one; and --resume takes no drive: path.)
REMEDY = ("resume an earlier checkpoint of the run with --resume PATH (ls train.out_dir lists "
          "this machine's; drivestage ls <drive.logs> lists Drive's, and drivestage pull <one> "
          "./weights fetches it: --resume takes no drive: path), or start a new run in a new "
          "train.out_dir")


def _refuse(path: str, why: str) -> UnusableCheckpointError:
    return UnusableCheckpointError(f"cannot resume from {path}: {why}; {REMEDY}", path, why)


def _tensors(obj: Any, prefix: str = "") -> list[tuple[str, torch.Tensor]]:
    """Every tensor in a nested state structure, with its dotted key."""
    if isinstance(obj, torch.Tensor):
        return [(prefix, obj)]
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    else:
        return []
    out = []
    for k, v in items:
        out.extend(_tensors(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def check_finite(state: Any, what: str, path: str) -> None:
    """Refuse ``state`` (a model's, the EMA's, the optimizer's) when a floating-point tensor in
    it holds NaN or an infinity."""
    bad = [k for k, t in _tensors(state) if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise _refuse(path, f"its {what} hold NaN or infinite values ({len(bad)} tensor"
                            f"{'s' if len(bad) != 1 else ''}, e.g. {bad[0]}): the run had "
                            f"diverged when it was saved")


def describe_mismatch(own: dict, given: dict) -> Optional[str]:
    """Why the state dict ``given`` does not load into a module whose own is ``own``, on one
    line (torch's text lists every key, on many lines): how many tensors differ, and the
    first of each kind; None when it loads."""
    missing = [k for k in own if k not in given]
    unexpected = [k for k in given if k not in own]
    shaped = [k for k in own if k in given and getattr(given[k], "shape", None) is not None
              and tuple(given[k].shape) != tuple(own[k].shape)]
    parts = [f"{len(keys)} {what}, e.g. {keys[0]}" for keys, what in (
        (missing, "of the model's tensors missing"), (unexpected, "tensors the model lacks"),
        (shaped, "tensors of another shape")) if keys]
    return "; ".join(parts) or None


def check_ema(ema: Any, state: Any, path: str) -> None:
    """Refuse an EMA state ``ema`` cannot take (another model's) or holding NaN, without
    loading it."""
    check_finite(state, "EMA weights", path)
    given = state.get("model") if isinstance(state, dict) else None
    if not isinstance(given, dict) or "updates" not in state:
        raise _refuse(path, "the EMA does not match the model (it holds no model state, or no "
                            "update count)")
    updates = state["updates"]
    # (A count of steps: negative, it made the first step's decay exp(-updates / tau)
    # overflow in a traceback, or weigh the model above 1; infinite, int() raised
    # OverflowError, no refusal either: attackb51.)
    whole = isinstance(updates, int) or (isinstance(updates, float) and updates.is_integer())
    if not whole or isinstance(updates, bool) or updates < 0:
        raise _refuse(path, f"the EMA's update count is {ascii(updates)[:40]}, not a count of "
                            f"steps")
    detail = describe_mismatch(ema.ema.state_dict(), given)
    if detail is not None:
        raise _refuse(path, f"the EMA does not match the model ({detail})")


def load_ema(ema: Any, state: Any, path: str) -> None:
    """``ema.load_state_dict(state)``, an EMA of another model refused in one line (before a
    tensor is loaded: :func:`check_ema`)."""
    check_ema(ema, state, path)
    try:
        ema.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise _refuse(path, f"the EMA does not match the model "
                            f"({' '.join(str(exc).split())})") from None


def check_optimizer(optimizer: torch.optim.Optimizer, state: Any, path: str) -> None:
    """Refuse an optimizer state that belongs to another model, or holds NaN, without loading
    it: torch's own checks (as many groups, as many parameters in each) and the shapes of
    the per-parameter tensors, which torch does not check (a momentum of another shape
    failed at the first step, in a traceback)."""
    check_finite(state.get("state") if isinstance(state, dict) else None, "optimizer state", path)
    wrong = _optimizer_mismatch(optimizer, state)
    if wrong is not None:
        raise _refuse(path, f"the optimizer state does not match the model ({wrong})")
    odd = _optimizer_values(state)
    if odd is not None:
        raise _refuse(path, f"its optimizer state holds values no optimizer writes ({odd}): a "
                            f"damaged file, or another program's")


#: Per-parameter entries that are running means of squares (Adam's, AMSGrad's maximum):
#: never below 0. A negative one made the first step's square root NaN, the run stopped
#: with "the loss became nan ... resume from the last checkpoint", the same one (attackb51).
_SQUARES = ("exp_avg_sq", "max_exp_avg_sq")


def _optimizer_values(state: Any) -> Optional[str]:
    """The first per-parameter entry of the optimizer state ``state`` (its shapes checked)
    whose values no optimizer writes: a ``step`` that is no count (below 0, or a tensor of
    several values: the first step stopped in a traceback, ``result type ComplexFloat can't
    be cast ...``, ``a Tensor with 3 elements cannot be converted to Scalar``), a mean of
    squares below 0; None when there is none."""
    slots = state.get("state") if isinstance(state, dict) else None
    for pid, held in (slots or {}).items():
        if not isinstance(held, dict):
            continue
        step = held.get("step")
        if step is not None:
            value = step if not isinstance(step, torch.Tensor) else \
                (float(step) if step.numel() == 1 and step.dim() == 0 else None)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                shown = f"a tensor of shape {tuple(step.shape)}" if value is None and \
                    isinstance(step, torch.Tensor) else ascii(value)[:40]
                return f"parameter {pid}: step {shown}, not a count of steps"
        for name in _SQUARES:
            t = held.get(name)
            if isinstance(t, torch.Tensor) and t.is_floating_point() and bool((t < 0).any()):
                return f"parameter {pid}: {name} below 0, a mean of squares"
    return None


def load_optimizer(optimizer: torch.optim.Optimizer, state: Any, path: str,
                   trained_with: Any = None) -> None:
    """``optimizer.load_state_dict(state)``, refused in one line when it belongs to another
    model (:func:`check_optimizer`, before anything is loaded) or is another kind of
    optimizer's (:func:`check_optimizer_kind`; ``trained_with``: the checkpoint's
    ``train.optimizer``). The groups keep the settings ``optimizer`` was built with (the
    config's weight decay, momentum or betas): torch puts the saved ones back, and a resume
    with ``--set train.weight_decay=...`` trained on with the old value, silently."""
    check_optimizer_kind(optimizer_kind(optimizer), state, path, trained_with)
    check_optimizer(optimizer, state, path)
    own = [{k: v for k, v in g.items() if k not in _SCHEDULED} for g in optimizer.param_groups]
    try:
        optimizer.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise _refuse(path, f"the optimizer state does not match the model "
                            f"({' '.join(str(exc).split())})") from None
    for group, settings in zip(optimizer.param_groups, own):
        group.update(settings)


#: What of a parameter group is not the config's setting: its tensors, and the learning
#: rate the schedule sets at every iteration (trainer.optim.LRSchedule).
_SCHEDULED = ("params", "lr", "initial_lr")


def optimizer_kind(optimizer: torch.optim.Optimizer) -> str:
    """The ``train.optimizer`` that builds ``optimizer`` (``sgd``, ``adam``, ``adamw``)."""
    return type(optimizer).__name__.lower()


def saved_kind(state: Any, trained_with: Any = None) -> Optional[str]:
    """The ``train.optimizer`` an optimizer state was saved by: what its groups hold (SGD's a
    momentum and no betas; Adam's betas, AdamW's decoupled weight decay too; what loads
    depends on them), named as ``trained_with`` (the checkpoint's config) names it where
    that is of the same family (AdamW of an older torch, whose groups do not say); None
    when neither says."""
    groups = state.get("param_groups") if isinstance(state, dict) else None
    group = groups[0] if isinstance(groups, list) and groups and isinstance(groups[0], dict) \
        else {}
    told = ("adamw" if group.get("decoupled_weight_decay") else "adam") if "betas" in group \
        else "sgd" if "momentum" in group else None
    named = trained_with.lower() if isinstance(trained_with, str) and trained_with else None
    if named is not None and (told is None or _family(named) == _family(told)):
        return named
    return told


def trained_optimizer(state: Any) -> Any:
    """The ``train.optimizer`` a checkpoint's config names (None: it names none)."""
    config = state.get("config") if isinstance(state, dict) else None
    train = config.get("train") if isinstance(config, dict) else None
    return train.get("optimizer") if isinstance(train, dict) else None


def _family(kind: Optional[str]) -> Optional[str]:
    """Kinds whose state carries over to each other: Adam's and AdamW's are the same
    moments (only the weight decay differs, a setting of the group)."""
    return "adam" if kind in ("adam", "adamw") else kind


def check_optimizer_kind(now: str, state: Any, path: str, trained_with: Any = None) -> None:
    """Refuse an optimizer state of another kind than ``now`` (the config's
    ``train.optimizer``; SGD's momentum for Adam; ``trainer status`` asks the same):
    a change of the config, no fault of the file (every checkpoint of the run is so),
    so a :class:`CheckpointError` that ``--resume auto`` does not pass over. Before, torch's
    ``load_state_dict`` failed on a missing key ("does not match the model ('step')", with
    the advice to go back to an earlier checkpoint), or took Adam's groups into SGD, whose
    first step ended in a ``KeyError: 'momentum'`` traceback."""
    saved, now = saved_kind(state, trained_with), now.lower()
    if saved is None or _family(saved) == _family(now):
        return
    raise CheckpointError(
        f"cannot resume from {path}: it was trained with train.optimizer {saved} and the "
        f"config says {now} (an optimizer's state does not carry over to another kind). Resume "
        f"with --set train.optimizer={saved}, or start a new run that fine-tunes from it: "
        f"{fine_tune_advice(path)}")


def _optimizer_mismatch(optimizer: torch.optim.Optimizer, state: Any) -> Optional[str]:
    saved = state.get("param_groups") if isinstance(state, dict) else None
    slots = state.get("state") if isinstance(state, dict) else None
    if not isinstance(saved, list) or not isinstance(slots, dict) or \
            not all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in saved):
        return "it is not an optimizer's state"
    groups = optimizer.param_groups
    if len(saved) != len(groups):
        return f"{len(saved)} parameter groups, the model's optimizer has {len(groups)}"
    for g, (theirs, mine) in enumerate(zip(saved, groups)):
        if len(theirs["params"]) != len(mine["params"]):
            return (f"group {g} holds {len(theirs['params'])} parameters, the model's "
                    f"{len(mine['params'])}")
    # As torch maps them: the saved ids, group by group, onto the model's parameters.
    index = {pid: (g, i, p) for g, (theirs, mine) in enumerate(zip(saved, groups))
             for i, (pid, p) in enumerate(zip(theirs["params"], mine["params"]))}
    wrong, untensored = [], []
    for pid, held in slots.items():
        if pid not in index or not isinstance(held, dict):
            continue
        g, i, p = index[pid]
        for name, t in held.items():
            if name == "step" or t is None:   # (a count, :func:`_optimizer_values`; None: SGD
                continue                       # without momentum)
            # Any other entry (a momentum, Adam's moments) is added to the gradient in place:
            # a number, or a 0-dim tensor, passed and failed at the first step, in a
            # traceback (attackb51).
            if not isinstance(t, torch.Tensor):
                untensored.append(f"group {g} parameter {i}: {name} is {_kind(t)}")
            elif t.shape != p.shape:
                wrong.append(f"group {g} parameter {i}: {name} {tuple(t.shape)} for "
                             f"{tuple(p.shape)}")
    if untensored:
        return (f"{len(untensored)} entr{'ies' if len(untensored) != 1 else 'y'} of its state "
                f"that should be tensors, e.g. {untensored[0]}")
    if not wrong:
        return None
    return f"{len(wrong)} tensor{'s' if len(wrong) != 1 else ''} of another shape, e.g. {wrong[0]}"


def _kind(value: Any) -> str:
    """``value``'s kind for a message (``a str``)."""
    name = type(value).__name__
    return f"an {name}" if name[:1] in "aeiou" else f"a {name}"


def check_contents(state: dict, path: str) -> None:
    """The checks of a checkpoint's contents that need no model: NaN or infinite values in its
    model weights, EMA weights or optimizer state; random states that do not restore, a
    gradient scaler that would skip every step. What ``trainer status`` asks of the
    checkpoints ``--resume auto`` would take (:mod:`trainer.status`); :func:`vetter` makes
    the same ones (the EMA's only where the run keeps one) and those needing the model."""
    check_finite(state.get("model"), "model weights", path)
    ema = state.get("ema")
    if isinstance(ema, dict):
        check_finite(ema, "EMA weights", path)
    optimizer = state.get("optimizer")
    check_finite(optimizer.get("state") if isinstance(optimizer, dict) else None,
                 "optimizer state", path)
    from trainer.resume_states import check_rng, check_scaler

    check_rng(state, path)
    check_scaler(state, path)


def check_layout(own: dict, state: dict, path: str, signature: Optional[dict]) -> bool:
    """Whether the model weights of ``state`` fit the network whose state dict is ``own``
    (the shapes are all that is compared: ``own`` may be a network on the meta device, as
    ``trainer status`` builds it). A misfit under the run's ``signature`` (given) is a damaged
    or foreign file: refused (:class:`~trainer.errors.UnusableCheckpointError`, passed over
    by ``--resume auto``); under another signature, or none given, the config changed: False
    (restore names the change)."""
    weights = state.get("model")
    detail = describe_mismatch(own, weights) if isinstance(weights, dict) \
        else "it holds no model state"
    if detail is None:
        return True
    if signature is None or state.get("signature") != signature:
        return False
    raise _refuse(path, f"its model weights do not fit the network of this config "
                        f"({detail}): a damaged file, or another trainer's")


def vetter(model: torch.nn.Module, ema: Any, optimizer: torch.optim.Optimizer,
           signature: Optional[dict] = None) -> Callable[[dict, str], None]:
    """``vet(state, path)``: every check :func:`trainer.resume.restore` makes of a checkpoint's
    contents (NaN anywhere, an EMA or optimizer state of another model, random states that
    do not restore), nothing loaded into
    the run; raises :class:`~trainer.errors.UnusableCheckpointError`. What ``--resume auto``
    asks of a candidate before choosing it (:mod:`trainer.resume_fallback`).

    A checkpoint whose model weights do not fit the network: when its ``signature`` (what the
    config fixes of the layout: class count, anchors, attention) is not the run's, the config
    changed, no fault of the file, and every checkpoint of the run is so: it passes, and
    restore refuses it naming the change (falling back would only try the older ones in
    vain and hide that). When it is the run's (``signature`` given), the file is damaged or
    another trainer's: unusable, passed over like a NaN one (before, it read as a config
    change and blocked ``--resume auto`` for good). Without ``signature``: as a config
    change."""
    from trainer.resume_states import check_rng, check_scaler

    def vet(state: dict, path: str) -> None:
        if not check_layout(model.state_dict(), state, path, signature):
            return   # another config: restore names what changed
        check_finite(state.get("model"), "model weights", path)
        if ema is not None and state.get("ema"):
            check_ema(ema, state["ema"], path)
        if _family(saved_kind(state.get("optimizer"), trained_optimizer(state))) not in (
                None, _family(optimizer_kind(optimizer))):
            return   # another train.optimizer: restore names the change (no file's fault)
        check_optimizer(optimizer, state.get("optimizer"), path)
        check_rng(state, path)
        check_scaler(state, path)
    return vet


def refuse_two_runs(out_dir: str, local: Any, run: Optional[str]) -> None:
    """The run folder holds checkpoints of another run besides ``run`` (the one written last,
    which ``--resume auto`` would continue): refuse in one line naming both. Before, the run
    written last went on without a word (another run's ``best.pt`` copied in to fine-tune
    from, a backup restored), and its saves replaced the other run's files of the same
    names (``last.pt``, ``epoch_NNN.pt``). The trainer never puts two runs in one folder
    (``--resume none`` and ``--resume PATH`` refuse to); checkpoints without a run (trainer
    0.1.0) are let through, as before."""
    from trainer import checkpoint as ckpt
    from trainer.state import Position, describe_run

    others = sorted({c.sidecar.run for c in local if c.sidecar.run not in (None, run)})
    if run is None or not others:
        return

    def named(r: str) -> str:
        c = ckpt.newest(local, run=r) or next(c for c in local if c.sidecar.run == r)
        s = c.sidecar
        return (f"{describe_run(r)} ({c.described.name}, "
                f"{Position(s.epoch or 0, s.iteration or 0, s.epoch_iteration).label})")

    raise CheckpointError(
        f"{out_dir} holds checkpoints of two runs: {named(run)}, written last, and "
        f"{named(others[0])}; going on with either would overwrite the other's files of the "
        f"same names. Move one run's checkpoints (with their .json sidecars) to a folder of "
        f"their own, then run the same command")


#: The names the run's saves write in ``train.out_dir`` (trainer.saving): a file there of
#: such a name is replaced by the save of that name.
SAVED_NAMES = re.compile(r"^(last|best|epoch_\d{3,}|autosave_\d{8,})\.pt\Z")

#: The same names with the sidecar's ``.json`` besides: a folder of either blocks the save.
WRITTEN_NAMES = re.compile(r"^(last|best|epoch_\d{3,}|autosave_\d{8,})\.(pt|json)\Z")


def refuse_folders(out_dir: str) -> None:
    """Refuse a run whose ``out_dir`` holds a *folder* under a name its saves write
    (``last.pt``, ``best.pt``, ``epoch_NNN.pt``, an autosave's, or their ``.json``
    sidecars'): every save of that name failed at its first file, and the whole run trained
    anyway (``best.pt`` never written, trainatk47). Cheap (one listing), so said before the
    data is pulled (trainer.cli.train) as well as where the resume looks at the folder."""
    try:
        names = sorted(os.listdir(out_dir))
    except OSError:   # (no folder yet: nothing in the way; one that cannot be read: said later)
        return
    for name in names:
        path = os.path.join(out_dir, name)
        if WRITTEN_NAMES.match(name) and os.path.isdir(path):
            raise CheckpointError(
                f"{path} is a folder, and this run saves its {name} there: every save of that "
                f"name would fail while the run trains on; nothing was changed. Move or rename "
                f"that folder out of {out_dir}, then run the same command")


def refuse_foreign(out_dir: str) -> None:
    """Refuse a run in ``out_dir`` where a file under a name its saves write (``last.pt``,
    ``best.pt``, ``epoch_NNN.pt``, ``autosave_*.pt``) is no checkpoint of this trainer and
    has no sidecar: another program's weights put there to go on from (the port's state
    dict, an Ultralytics ``.pt``). Before, ``--resume auto`` said "no checkpoint ...:
    starting fresh" (or went on from the run's own checkpoints beside it) and the run's save
    of that name replaced the file, its weights lost without a word (attacktrain45). Files
    torch cannot read at all (damaged, cut short) are left to the checks that pass them over.
    A checkpoint of another run than the folder's is refused too: a killed save's repair
    leaves it undescribed, and the run's save of its name replaced it as well."""
    from trainer import checkpoint as ckpt

    refuse_folders(out_dir)   # (a folder of such a name: no save of it would ever be written)
    described = [c.described for c in ckpt.list_checkpoints(out_dir)]
    run = ckpt.current_run(described)[1]
    for path in sorted(ckpt.undescribed(out_dir)):
        if not SAVED_NAMES.match(os.path.basename(path)):
            continue
        what = _foreign_contents(path, run)
        if what is None:
            continue
        contents, then = what
        raise CheckpointError(
            f"{path} is {contents}, and this run's saves would replace it "
            f"({os.path.basename(path)} is a name they write); nothing was changed. Move it "
            f"out of {out_dir}{then}, then run the same command")


def _foreign_contents(path: str, run: Optional[str]) -> Optional[tuple[str, str]]:
    """``(what the file at path holds, what to do with it)`` when it is another program's
    file (torch loads it, or finds it a pickled object) or a checkpoint of another run than
    ``run`` (the folder's, when it has one), None when it is a checkpoint of this trainer
    the run may take or replace, or cannot be read at all."""
    from trainer import torch_files
    from trainer.checkpoint_load import REQUIRED_KEYS

    try:
        state = torch_files.load(path)
    except torch_files.PickledObject as exc:
        return (f"no checkpoint of this trainer (a pickled Python object, {exc.name}: another "
                f"program's model)",
                "; to start from its weights, save them as a state dict (torch.save(model."
                "state_dict(), PATH)) and give that as model.weights to a new run")
    except (torch_files.Refused, OSError):
        return None
    if isinstance(state, dict) and all(k in state for k in REQUIRED_KEYS):
        theirs = state.get("run")
        if run is None or not isinstance(theirs, str) or theirs == run:
            return None
        return (f"a checkpoint of another run (run {theirs}; the folder's is run {run})",
                "; to go on with that run, give it a train.out_dir of its own and --resume it")
    weights = isinstance(state, dict) and state and all(
        isinstance(v, torch.Tensor) for v in state.values())
    held = "a state dict of weights alone" if weights else "not a trainer checkpoint's contents"
    return (f"no checkpoint of this trainer ({held})",
            "; to start from its weights, give its new path as model.weights to a new run "
            "(--resume none --set model.weights=<its new path>)")
