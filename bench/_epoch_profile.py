"""Where a training epoch's time goes: :class:`EpochProfile`, a callback for ``trainer.engine.fit``.

A stopwatch over the run's events: every boundary charges the time since the previous one to
the phase then under way (waiting for data, the step, validation, ...) or to the timed call
that just ran (another callback, the EMA update, a Drive status call). Instruments only the
run it is given: the callbacks are wrapped in timing proxies, the EMA's ``update`` and the
writer's Drive calls in timing functions, the loss gets a forward hook. Used by
``bench/epoch.py``.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from typing import Any, Callable, Optional

import torch

from trainer.callbacks import Callback, CSVLogger, PlotCallback, TensorBoardLogger
from trainer.saving import Checkpointer

#: The training thread's phases, in the report's order (their shares add up to 1).
PHASES = ("data", "step", "ema", "val_loss", "map", "ckpt", "logs", "drive", "other")
#: The background writer's work, reported beside them (it overlaps the training thread).
BACKGROUND = ("write", "push")
EVENTS = tuple(n for n in vars(Callback) if n.startswith("on_"))


def _category(cb: Callback) -> str:
    if isinstance(cb, Checkpointer):
        return "ckpt"
    if isinstance(cb, (CSVLogger, PlotCallback, TensorBoardLogger)):
        return "logs"
    return "other"


class _Timed(Callback):
    """Forwards every event to ``inner`` and charges its time to ``category``."""

    def __init__(self, inner: Callback, category: str, profile: "EpochProfile"):
        self.inner, self.category, self.profile = inner, category, profile


def _forward(event: str) -> Callable:
    def method(self: _Timed, *args: Any) -> None:
        self.profile.charge()                       # what ran before this callback
        try:
            getattr(self.inner, event)(*args)
        finally:
            self.profile.charge(self.category, event)
    return method


for _event in EVENTS:
    setattr(_Timed, _event, _forward(_event))


class _WriterLog(logging.Handler):
    """The background writer's "wrote NAMES in S s" lines, as busy intervals."""

    def __init__(self, profile: "EpochProfile"):
        super().__init__(logging.DEBUG)
        self.profile = profile

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "wrote %s in %.2f s" and isinstance(record.args, tuple):
            end = time.perf_counter()
            self.profile.background("write", end - float(record.args[1]), end)


class EpochProfile(Callback):
    """Splits each epoch's wall time into :data:`PHASES`; one dict per epoch in ``epochs``.

    ``sync`` runs before every clock reading (``torch.cuda.synchronize`` on a GPU, so each
    phase is charged its own GPU work). The writer thread's busy intervals are kept apart
    (:meth:`background_in`)."""

    def __init__(self, sync: Callable[[], None] = lambda: None):
        self.sync = sync
        self.epochs: list[dict] = []
        self.outside: dict = defaultdict(float)      # timed calls outside any epoch, by event
        self.run: Any = None
        self.autocast: Optional[torch.dtype] = None  # what the loop's loss ran under
        self._bg: list = []                           # (kind, start, end) of the writer thread
        self._lock = threading.Lock()
        self._cur: Optional[dict] = None
        self._ambient = "other"
        self._mark = 0.0
        self._last_val = None
        self._steps = 0
        self._step_before = 0.0
        self._undo: list = []
        self._thread = threading.get_ident()

    # -- the stopwatch
    def _now(self) -> float:
        self.sync()
        return time.perf_counter()

    def charge(self, phase: Optional[str] = None, event: str = "") -> None:
        """Charge the time since the last boundary to ``phase`` (None: the ambient phase)."""
        now = self._now()
        if self._cur is None:
            if phase is not None:
                self.outside[f"{phase}:{event}"] += now - self._mark
            self._mark = now
            return
        if phase is None and self._ambient == "val":
            # Validation: the loss is computed first (the last loss call ends it), then mAP.
            split = self._last_val if self._last_val is not None and self._last_val > self._mark else self._mark
            self._cur["val_loss"] += split - self._mark
            self._cur["map"] += now - split
        else:
            self._cur[phase or self._ambient] += now - self._mark
        self._mark = now

    def background(self, kind: str, start: float, end: float) -> None:
        with self._lock:
            self._bg.append((kind, start, end))

    # -- events
    def on_fit_start(self, run: Any) -> None:
        self.run, self._thread = run, threading.get_ident()
        # Every other callback timed, and this one last: it closes an epoch after all of them.
        others = [cb for cb in run.callbacks.callbacks if cb is not self]
        run.callbacks.callbacks = [*(_Timed(cb, _category(cb), self) for cb in others), self]
        if run.ema is not None:
            self._wrap(run.ema, "update", "ema")
        handle = run.criterion.register_forward_hook(self._loss_called)
        self._undo.append(handle.remove)
        if run.writer is not None:
            log = logging.getLogger("trainer.writer")
            handler, level = _WriterLog(self), log.level
            log.addHandler(handler)
            log.setLevel(logging.DEBUG)
            self._undo.append(lambda: (log.removeHandler(handler), log.setLevel(level)))
            if run.writer.drive is not None:
                self._wrap(run.writer, "safe_text", "drive")
                self._wrap_background(run.writer.drive, "push")
        self._mark = self._now()

    def on_train_epoch_start(self, run: Any, epoch: int) -> None:
        self._cur = dict.fromkeys(PHASES, 0.0)
        self._cur.update(epoch=epoch + 1, start=self._now(), steps=0, step_times=[])
        self._mark, self._ambient = self._cur["start"], "data"
        self._steps = len(run.train_loader)

    def on_train_batch_start(self, run: Any, pos: Any) -> None:
        self.charge("data")
        self._ambient, self._step_before = "step", self._cur["step"]

    def on_train_batch_end(self, run: Any, pos: Any, logs: dict) -> None:
        self.charge()
        self._cur["steps"] += 1
        self._cur["step_times"].append(self._cur["step"] - self._step_before)   # EMA, callbacks apart
        self._ambient = "val" if pos.epoch_iteration >= self._steps else "data"
        if self._ambient == "val":
            self._last_val = None

    def on_validation_end(self, run: Any, pos: Any, row: dict) -> None:
        self.charge()
        self._ambient = "other"

    def on_fit_epoch_end(self, run: Any, pos: Any, row: dict) -> None:
        self.charge()
        cur, self._cur = self._cur, None
        cur["end"] = self._mark
        cur["wall_s"] = cur["end"] - cur["start"]
        cur["images"] = cur["steps"] * run.batch_size * run.info.world_size
        cur["engine_loop_s"] = row.get("epoch_time_s")     # the loop's own clock, to cross-check
        cur["val_loss_value"], cur["map50_value"] = row.get("val_loss"), row.get("map50")
        self.epochs.append(cur)

    def on_fit_end(self, run: Any) -> None:
        self.close()

    def on_interrupt(self, run: Any, exc: BaseException) -> None:
        self.close()

    # -- the hooks
    def _loss_called(self, module: Any, args: Any, output: Any) -> None:
        if self._ambient == "step" and self.autocast is None:
            dev = self.run.device.type
            self.autocast = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else False
        elif self._ambient == "val":
            self._last_val = self._now()

    def _wrap(self, obj: Any, name: str, phase: str) -> None:
        inner = getattr(obj, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != self._thread:     # not the training thread's time
                return inner(*args, **kwargs)
            self.charge()
            try:
                return inner(*args, **kwargs)
            finally:
                self.charge(phase)
        setattr(obj, name, timed)
        self._undo.append(lambda: delattr(obj, name))

    def _wrap_background(self, obj: Any, name: str) -> None:
        inner = getattr(obj, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.background(name, start, time.perf_counter())
        setattr(obj, name, timed)
        self._undo.append(lambda: delattr(obj, name))

    def close(self) -> None:
        """Undo the hooks (the final flush has run: the writer is done)."""
        while self._undo:
            self._undo.pop()()

    # -- results
    def background_in(self, start: float, end: float) -> dict:
        """Seconds the writer was busy between ``start`` and ``end``, by kind."""
        out = dict.fromkeys(BACKGROUND, 0.0)
        with self._lock:
            for kind, a, b in self._bg:
                out[kind] += max(0.0, min(b, end) - max(a, start))
        return out
