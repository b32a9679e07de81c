"""Where training stands: the one counting convention, and the bookkeeping every checkpoint holds.

Counting (the same in checkpoints, sidecars, callbacks, logs and the docs):

* ``epoch``: epochs **completed**. The epoch under way is number ``epoch + 1`` for people
  ("epoch 3/10" in the progress bar) and index ``epoch`` for code (``range(epochs)``, the
  sampler's and the dataset's ``set_epoch``).
* ``iteration``: optimizer steps completed since the start of training (over every epoch).
* ``epoch_iteration``: steps completed in the epoch under way; 0 at an epoch boundary. It can
  equal the epoch's length when the steps are done but the epoch's evaluation and save are not
  (a stop during evaluation).

A :class:`Position` is the state *between* two steps. Its :attr:`~Position.label` names the
last completed step the way logs, the progress bar and ``trainer status`` show it.
"""
from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Optional


#: Checkpoint names written at an epoch's end every save_period (``epoch_004.pt``); on equal
#: progress they rank above ``last.pt`` / ``best.pt`` (:func:`drivestage.sidecar.newest`).
EPOCH_NAME = re.compile(r"^epoch[_-]?\d+")
#: Time-based (and stop) checkpoints: ``autosave_<iteration:08d>.pt``.
AUTOSAVE_NAME = re.compile(r"^autosave_(?P<iteration>\d+)\.pt\Z")


def autosave_name(iteration: int) -> str:
    """``autosave_00004120.pt``: the name of a time-based or stop checkpoint."""
    return f"autosave_{iteration:08d}.pt"


@dataclass(frozen=True)
class Position:
    """How far training has come; comparable (``(epoch, epoch_iteration)`` orders progress)."""

    epoch: int = 0
    iteration: int = 0
    epoch_iteration: int = 0

    def stepped(self) -> "Position":
        """The position after one more optimizer step."""
        return Position(self.epoch, self.iteration + 1, self.epoch_iteration + 1)

    def epoch_done(self) -> "Position":
        """The position once the epoch under way is completed (evaluated and saved)."""
        return Position(self.epoch + 1, self.iteration, 0)

    @property
    def step_epoch(self) -> int:
        """1-based number of the epoch the last completed step belongs to (0 before any step)."""
        return self.epoch + 1 if self.epoch_iteration else self.epoch

    @property
    def label(self) -> str:
        """``"epoch 7, iteration 4120"``: the last completed step, as people count it."""
        return f"epoch {self.step_epoch}, iteration {self.iteration}"


def new_run_id() -> str:
    """A fresh run identity: ``20261201-151200-3f2a`` (start time, UTC, and 16 random bits)."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


def describe_run(run: Optional[str]) -> str:
    """How messages name a run (sidecars written before run ids have none)."""
    return f"run {run}" if run else "an unnamed run (written before run ids)"


@dataclass
class EpochMeter:
    """Running sums of the epoch under way (checkpointed, so a resumed epoch's means are exact)."""

    loss: float = 0.0
    box: float = 0.0
    obj: float = 0.0
    cls: float = 0.0
    steps: int = 0
    # The samples of the epoch's order trained on, by every process: where a resume on
    # another number of processes goes on from (trainer.data.dataset.set_loader_epoch).
    # None: not counted (a checkpoint of before train27).
    samples: Optional[int] = 0
    # Seconds spent training the epoch so far, over every resume of it (results.csv's
    # epoch_time_s counted only the part after a mid-epoch resume: trainlefts46). Saved as
    # the checkpoint's ``epoch_time_s``, beside this meter: an older trainer refuses a meter
    # key it does not know. None: unknown (resumed mid-epoch from a checkpoint without it).
    seconds: Optional[float] = 0.0

    def spent(self, seconds: float) -> None:
        """Count ``seconds`` more of the epoch's training time (if its start is known)."""
        if self.seconds is not None:
            self.seconds += seconds

    def add(self, loss: float, parts: dict, samples: int = 0) -> None:
        self.loss += loss
        for k in ("box", "obj", "cls"):
            setattr(self, k, getattr(self, k) + float(parts[k]))
        self.steps += 1
        if self.samples is not None:
            self.samples += samples

    def means(self) -> dict:
        n = max(self.steps, 1)
        return {"loss": self.loss / n, "box": self.box / n, "obj": self.obj / n, "cls": self.cls / n}

    def state_dict(self) -> dict:
        return {"loss": self.loss, "box": self.box, "obj": self.obj, "cls": self.cls,
                "steps": self.steps, "samples": self.samples}

    @classmethod
    def from_state(cls, state: Optional[dict]) -> "EpochMeter":
        return cls(**{"samples": None, **state}) if state else cls()


@dataclass
class TrainState:
    """Bookkeeping that lives in every checkpoint besides the tensors."""

    run: str = field(default_factory=new_run_id)
    pos: Position = field(default_factory=Position)
    best_map50: Optional[float] = None
    best_epoch: Optional[int] = None
    history: list = field(default_factory=list)     # one row per completed epoch (results.csv)
    meter: EpochMeter = field(default_factory=EpochMeter)
    resumed_from: Optional[str] = None               # the checkpoint's name, for retention
    samples: Optional[dict] = None                   # the training list's (trainer.sample_list)

    def state_dict(self) -> dict:
        p = self.pos
        return {"run": self.run, "epoch": p.epoch, "iteration": p.iteration,
                "epoch_iteration": p.epoch_iteration, "best_map50": self.best_map50,
                "best_epoch": self.best_epoch, "history": [dict(r) for r in self.history],
                "epoch_meter": self.meter.state_dict(), "resumed_from": self.resumed_from,
                "train_samples": self.samples, "epoch_time_s": self.meter.seconds}

    @classmethod
    def from_checkpoint(cls, state: dict) -> "TrainState":
        """Read the fields back (0.1.0 checkpoints: ``global_step``, no run, epoch boundaries)."""
        epoch = int(state["epoch"])
        iteration = int(state.get("iteration", state.get("global_step", 0)))
        out = cls(pos=Position(epoch, iteration, int(state.get("epoch_iteration") or 0)),
                  best_map50=state.get("best_map50"), best_epoch=state.get("best_epoch"),
                  history=list(state.get("history") or [])[:epoch],
                  meter=EpochMeter.from_state(state.get("epoch_meter")),
                  resumed_from=state.get("resumed_from"), samples=state.get("train_samples"))
        if state.get("run"):
            out.run = str(state["run"])
        # (A checkpoint of before trainlefts46 saved mid-epoch: the time before it unknown.)
        out.meter.seconds = state["epoch_time_s"] if "epoch_time_s" in state else (
            None if out.pos.epoch_iteration else 0.0)
        return out


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fraction(value: object) -> bool:
    """An mAP (``best_map50``): a finite number from 0 to 1. NaN, an infinity or 5.0 read back
    as the run's best, and no later epoch's mAP was ever above it: ``best.pt`` was never
    written again, without a word (attackb51). (A mean of APs of at most 1: a hair over 1
    from rounding is let through.)"""
    return _number(value) and -1e-9 <= value <= 1 + 1e-6   # type: ignore[operator]


#: More seconds than any epoch's training takes (ten years): a checkpoint's ``epoch_time_s``
#: beyond it (or infinite) is no trainer's, and made an ETA of a 300-digit number of hours,
#: or stopped the epoch's line in a traceback (inf: attackint46).
MAX_EPOCH_S = 10 * 365 * 24 * 3600.0


def _seconds(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and 0 <= value <= MAX_EPOCH_S   # (NaN, inf: outside)


def _meter_problem(meter: object) -> Optional[str]:
    if meter is None:
        return None
    if not isinstance(meter, dict):
        return f"epoch_meter = {_shown(meter)}"
    for key, value in meter.items():
        if key not in ("loss", "box", "obj", "cls", "steps", "samples"):
            return f"epoch_meter.{_shown(key)}"
        fits = (_count(value) or (key == "samples" and value is None)) \
            if key in ("steps", "samples") else _number(value)
        if not fits:
            return f"epoch_meter.{key} = {_shown(value)}"
    return None


def bookkeeping_problem(state: dict) -> Optional[str]:
    """What of a loaded checkpoint's bookkeeping (``state``: its required keys there) this
    trainer never writes, said as ``field = value``, else None. Read back as it was, a damaged
    or foreign file's stopped a resume in a traceback far from the file (``epoch_meter``'s
    ``samples`` at -50 in the sampler, a history of numbers in results.csv's writer, a format
    version as a string), or trained from a position that is none (attack28)."""
    if not _count(state["format_version"]):
        return f"format_version = {_shown(state['format_version'])}"
    for key in ("epoch", "iteration", "global_step", "epoch_iteration"):
        if state.get(key) is not None and not _count(state[key]):
            return f"{key} = {_shown(state[key])}"
    for key, fits in (("best_map50", _fraction), ("best_epoch", _count),
                      ("epoch_time_s", _seconds),
                      ("run", lambda v: isinstance(v, str)),
                      ("resumed_from", lambda v: isinstance(v, str))):
        if state.get(key) is not None and not fits(state[key]):
            return f"{key} = {_shown(state[key])}"
    history = state.get("history")
    if history is not None and (not isinstance(history, list)
                                or not all(isinstance(row, dict) for row in history)):
        return f"history = {_shown(history)}"
    return _meter_problem(state.get("epoch_meter")) or _listed_problem(state) or \
        _samples_problem(state) or _layout_problem(state)


def _listed_problem(state: dict) -> Optional[str]:
    """A ``train_samples`` (the training list's :func:`trainer.sample_list.fingerprint`;
    absent before trainfault36) that is no dict of a count and two digests: a ``count`` of
    ``"9"`` turned off both the check of the list on resume (another list in the middle of an
    epoch went on in another order) and the check of the samples trained against it, as for
    a checkpoint that holds none (sweep51)."""
    listed = state.get("train_samples")
    if listed is None:
        return None
    if not isinstance(listed, dict):
        return f"train_samples = {_shown(listed)}"
    if not _count(listed.get("count")):
        return f"train_samples.count = {_shown(listed.get('count'))}"
    for key in ("images", "boxes"):
        if key in listed and not isinstance(listed[key], str):
            return f"train_samples.{key} = {_shown(listed[key])}"
    return None


def _layout_problem(state: dict) -> Optional[str]:
    """A checkpoint's ``config`` that is no dict of sections, or a ``signature`` that is no
    dict: what the resume reads them as (the warning of changed keys, the model's shape),
    they stopped it in a traceback (``AttributeError: 'list' object has no attribute
    'get'``, ``TypeError: 'NoneType' object is not a mapping``: attackb51)."""
    config = state["config"]
    if not isinstance(config, dict):
        return f"config = {_shown(config)}"
    for section, values in config.items():
        if not isinstance(values, dict):
            named = section if isinstance(section, str) else _shown(section)
            return f"config.{named} = {_shown(values)}"
    if "signature" in state and not isinstance(state["signature"], dict):
        return f"signature = {_shown(state['signature'])}"
    return None


def _samples_problem(state: dict) -> Optional[str]:
    """Where a checkpoint saved in the middle of an epoch says it trained more of the epoch's
    order than its training list holds (with the padding of its processes' shares), or fewer
    samples than its steps: the resume skips that count of the order
    (:func:`trainer.data.dataset.set_loader_epoch`), so it silently left the rest of the
    epoch out (the sampler clamps it) or trained samples twice (attackb51)."""
    meter, listed = state.get("epoch_meter"), state.get("train_samples")
    seen = meter.get("samples") if isinstance(meter, dict) else None
    steps = state.get("epoch_iteration") or 0
    counted = meter.get("steps") if isinstance(meter, dict) else None
    if _count(counted) and _count(steps):
        # (the meter's own steps, each of which adds its samples: a state whose meter was
        # not counting where its position is, as a test's Run set by hand, is no damage)
        steps = min(steps, counted)
    if not _count(seen) or not _count(steps) or not steps:
        return None
    rng = state.get("rng")
    processes = len(rng) if isinstance(rng, list) and rng else 1
    count = listed.get("count") if isinstance(listed, dict) else None
    if _count(count) and seen > count + processes - 1:
        return (f"epoch_meter.samples = {seen}, more than its training list's {count} "
                f"samples")
    # (Every step trains a sample at least; but a resume with data.allow_change onto a list
    # shorter than the steps done counts only the list: then fewer is no damage.)
    if seen < steps and not (_count(count) and count < steps):
        return f"epoch_meter.samples = {seen}, fewer than its {steps} steps of the epoch"
    return None


def _shown(value: object) -> str:
    """``value`` for a one-line message (at most 60 characters, escaped)."""
    text = ascii(value)
    return text if len(text) <= 60 else text[:57] + "..."
