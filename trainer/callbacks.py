"""Training events and what hangs off them: results.csv, plots, TensorBoard.

The engine calls every callback's method for each event; a callback overrides the events it
cares about. These callbacks run on rank 0 only; the save policy
(:class:`trainer.saving.Checkpointer`) runs on every rank. Events, in order, with the
counting of :mod:`trainer.state` (``epoch`` = epochs completed, so at an epoch's start it is
also the 0-based index of the epoch beginning; ``pos`` is a :class:`~trainer.state.Position`):

* ``on_fit_start(run)``
* ``on_train_epoch_start(run, epoch)``
* ``on_train_batch_start(run, pos)``: a batch has arrived from the loader (the time since the
  previous step is the wait for data); ``pos`` names the last completed step
* ``on_train_batch_end(run, pos, logs)``: after every optimizer step (``logs``: loss, lr, img_s)
* ``on_validation_end(run, pos, row)``: the epoch's evaluation is done (or was cut short)
* ``on_fit_epoch_end(run, pos, row)``: ``pos.epoch`` counts this epoch; ``row`` is its
  results.csv row
* ``on_fit_end(run)`` or ``on_interrupt(run, exc)``
"""
from __future__ import annotations

import csv
import io
import logging
import math
import os
import threading
import time
from typing import Any, Callable, Iterable

logger = logging.getLogger(__name__)

#: Columns of results.csv, in order.
CSV_COLUMNS = ("epoch", "phase", "lr", "train_loss", "box", "obj", "cls", "val_loss", "map50",
               "map", "images_per_s", "epoch_time_s")


class Callback:
    """Base class: every event is a no-op."""

    def on_fit_start(self, run: Any) -> None: ...
    def on_train_epoch_start(self, run: Any, epoch: int) -> None: ...
    def on_train_batch_start(self, run: Any, pos: Any) -> None: ...
    def on_train_batch_end(self, run: Any, pos: Any, logs: dict) -> None: ...
    def on_validation_end(self, run: Any, pos: Any, row: dict) -> None: ...
    def on_fit_epoch_end(self, run: Any, pos: Any, row: dict) -> None: ...
    def on_fit_end(self, run: Any) -> None: ...
    def on_interrupt(self, run: Any, exc: BaseException) -> None: ...


class CallbackList:
    """Fires each event on every callback, in order."""

    def __init__(self, callbacks: Iterable[Callback] = ()):
        self.callbacks = list(callbacks)

    def fire(self, event: str, *args: Any) -> None:
        """Call ``event`` (e.g. ``"on_model_save"``) on each callback."""
        for cb in self.callbacks:
            getattr(cb, event)(*args)


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


#: Seconds the training thread waits for results.csv or the curves to be written: on a disk
#: that stopped answering (a hung network or FUSE mount) that write waited for good, at the
#: epoch's end, before its checkpoint, with no word, and a SIGTERM was never seen (train28).
WRITE_WITHIN_S = 30.0
#: ... and this long once a stop was asked: the save policy comes after these writes, and
#: three of them (results.csv, the curves, TensorBoard) took 90 s of a grace of 25 (attacktr29).
STOPPING_WITHIN_S = 1.0


class Bounded:
    """One small file written on a thread of its own, waited for ``within`` seconds at most;
    while one has not ended (the disk does not answer), the next is not begun."""

    def __init__(self, within: float = WRITE_WITHIN_S):
        self.within = within
        self._under_way: Any = None   # a BackgroundThread's "ended" Flag

    def run(self, write: Any, path: str, what: str = "", run: Any = None) -> bool:
        """``write()`` (it writes ``path``; ``what`` it does, said when it waits: ``writing
        <path>``), bounded; OSError as ``write`` raised it. Whether it ended (False: still
        waiting on the disk, said). Once ``run``'s stop was asked, :data:`STOPPING_WITHIN_S`
        at most: the save policy, the last callback, sees the stop only after this."""
        from drivestage.interrupts import BackgroundThread

        if self._under_way is not None and not self._under_way.is_set():
            return False   # (the one before still waits on the disk: said already)
        out: list[BaseException] = []

        def body() -> None:
            try:
                write()
            except BaseException as exc:   # (raised in the caller's thread below)
                out.append(exc)

        self._under_way = BackgroundThread(body, "trainer-small-write").start().ended
        stop, began = getattr(run, "stop", None), time.monotonic()
        while not self._under_way.wait(min(0.1, self.within)):
            waited = time.monotonic() - began
            cut = stop is not None and stop.is_set() and waited >= STOPPING_WITHIN_S
            if waited >= self.within or cut:
                logger.warning("%s has not ended for %.0f s: the disk does not answer (a hung "
                               "network or FUSE mount?); training goes on without it",
                               what or f"writing {path}", waited if cut else self.within)
                return False
        if out:
            raise out[0]
        return True


class CSVLogger(Callback):
    """``results.csv``: one row per epoch, rewritten from the run's history (so a resumed run
    has the rows of the epochs trained before the disconnect, and none twice)."""

    def __init__(self, out_dir: str, name: str = "results.csv", within: float = WRITE_WITHIN_S):
        self.path = os.path.join(out_dir, name)
        self.bounded = Bounded(within)

    def on_fit_epoch_end(self, run: Any, pos: Any, row: dict) -> None:
        history = list(run.state.history)
        try:
            self.bounded.run(lambda: write_results_csv(self.path, history), self.path, run=run)
        except OSError as exc:
            # A full disk must not end the run here, before the epoch's checkpoint is even
            # tried (the save policy comes last); the whole history is in every checkpoint and
            # the file is written again, whole, after the next epoch.
            logger.warning("could not write %s: %s; it is written again after the next epoch",
                           self.path, exc)


def _replaced(path: str):
    """:func:`drivestage.localfs.atomic_file` with the umask's mode: a fresh hidden name
    (``O_EXCL``, never followed: the fixed ``.results.csv.tmp`` was opened as it was, so a
    link planted there in a copied or shared run folder had its target overwritten), renamed
    over ``path`` (the Drive mirror skips hidden temporary files; a full disk leaves none)."""
    from drivestage.localfs import atomic_file, umask

    return atomic_file(path, mode=0o666 & ~umask())


def write_results_csv(path: str, history: list[dict]) -> None:
    """Write the history rows to ``path`` atomically."""
    text = io.StringIO(newline="")
    w = csv.writer(text)
    w.writerow(CSV_COLUMNS)
    for row in history:
        w.writerow([_fmt(row.get(c)) for c in CSV_COLUMNS])
    with _replaced(path) as fh:
        fh.write(text.getvalue().encode("utf-8"))


def _save_figure(fig, path: str) -> None:
    """Save atomically: the Drive mirror never uploads a half-written picture."""
    with _replaced(path) as fh:
        fig.savefig(fh, dpi=100, format="png")


#: The curves are drawn again after an epoch once this many seconds have passed since the
#: fit started or they were last drawn, and always when the fit ends.
PLOT_EVERY_S = 30.0


class PlotCallback(Callback):
    """``loss.png`` (train and val loss) and ``map.png`` (mAP@0.5 and @0.5:0.95), redrawn
    after an epoch at most every ``every_s`` seconds (drawing both takes about 0.2 s: after
    every epoch of seconds-long epochs, a fifth of the run), and at the end."""

    def __init__(self, out_dir: str, every_s: float = PLOT_EVERY_S,
                 within: float = WRITE_WITHIN_S):
        self.out_dir, self.every_s, self.bounded = out_dir, every_s, Bounded(within)
        self.drawn_at = time.monotonic()
        self.pending = False

    def on_fit_start(self, run: Any) -> None:
        self.drawn_at, self.pending = time.monotonic(), False

    def on_fit_epoch_end(self, run: Any, pos: Any, row: dict) -> None:
        self.pending = True
        if time.monotonic() - self.drawn_at >= self.every_s:
            self._draw(run)

    def on_fit_end(self, run: Any) -> None:
        self._draw(run)

    # Not on an interrupt: the stop's checkpoint comes after this callback, and its grace
    # period is better spent on it (the curves lag at most every_s behind).

    def _draw(self, run: Any) -> None:
        if not self.pending:
            return
        self.pending, self.drawn_at = False, time.monotonic()
        history = list(run.state.history)
        try:
            self.bounded.run(lambda: plot_history(history, self.out_dir),
                             os.path.join(self.out_dir, "loss.png"), run=run)
        except Exception as exc:  # a plot must never stop training
            logger.warning("could not draw the curves: %s", exc)


def plot_history(history: list[dict], out_dir: str) -> list[str]:
    """Draw the loss and mAP curves; returns the files written."""
    # A Figure of its own, not pyplot's: ``matplotlib.use("Agg")`` switched the backend of
    # the whole process (a fit in a notebook left the user's next plots undrawn), and pyplot
    # imports more than a Figure needs. savefig renders the PNG with Agg either way.
    from matplotlib.figure import Figure

    written = []
    epochs = [r["epoch"] for r in history]
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.plot(epochs, [r.get("train_loss") for r in history], "r-", label="train loss")
    val = [(r["epoch"], r["val_loss"]) for r in history if r.get("val_loss") is not None]
    if val:
        ax.plot(*zip(*val), "b-", label="val loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(True)
    ax.legend()
    path = os.path.join(out_dir, "loss.png")
    _save_figure(fig, path)
    written.append(path)
    maps = [r for r in history if r.get("map50") is not None]
    if maps:
        fig = Figure(figsize=(6, 4))
        ax = fig.subplots()
        ax.plot([r["epoch"] for r in maps], [r["map50"] for r in maps], "r-o", label="mAP@0.5")
        ax.plot([r["epoch"] for r in maps], [r.get("map") for r in maps], "g-o", label="mAP@0.5:0.95")
        ax.set_xlabel("epoch")
        ax.set_ylabel("mAP")
        ax.grid(True)
        ax.legend()
        path = os.path.join(out_dir, "map.png")
        _save_figure(fig, path)
        written.append(path)
    return written


class ProgressLines(Callback):
    """``train.log_period``: an INFO line every that many iterations, for logs where the
    progress bar is unreadable (a file, a notebook that keeps only the last lines)."""

    def __init__(self, every: int):
        self.every = every

    def on_train_batch_end(self, run: Any, pos: Any, logs: dict) -> None:
        if self.every > 0 and pos.iteration % self.every == 0:
            loss = run.state.meter.means()["loss"]   # the epoch's mean so far, as the bar shows
            logger.info("epoch %d/%d iteration %d (%d in the epoch): loss %.4f, lr %.3g, %.1f img/s",
                        pos.epoch + 1, run.cfg.train.epochs, pos.iteration, pos.epoch_iteration,
                        loss, logs["lr"], logs["img_s"])


def _nothing() -> None:
    pass


def _quiet_writer_threads() -> Callable[[], None]:
    """Keep the traceback of TensorBoard's writer thread that a disk error ended (a disk
    that filled, or was remounted read-only, in the middle of a run) off standard error,
    until the returned function is called (at the fit's end): the run's next write of
    scalars meets the same error and says it in one line (``TensorBoard logging off: could
    not write …``), and the thread's traceback, 15 lines of tensorboard's internals, came
    beside it (attackstream40). Any other thread's exception goes to the hook that was
    there before."""
    before = threading.excepthook

    def hook(args: Any) -> None:
        if (isinstance(args.exc_value, OSError)
                and type(args.thread).__module__.startswith("tensorboard.")):
            return
        before(args)

    def restore() -> None:
        if threading.excepthook is hook:   # (else replaced since: left to whoever did)
            threading.excepthook = before

    threading.excepthook = hook
    return restore


class TensorBoardLogger(Callback):
    """Scalars under ``<out_dir>/tensorboard``: per-iteration loss and lr, per-epoch metrics."""

    def __init__(self, out_dir: str, every: int = 10, within: float = WRITE_WITHIN_S):
        self.log_dir = os.path.join(out_dir, "tensorboard")
        self.every = max(1, every)
        self.writer = None
        self.bounded = Bounded(within)   # its flush on a hung disk: TensorBoard is dropped
        self._restore_hook: Callable[[], None] = _nothing   # (see _quiet_writer_threads)

    def on_fit_start(self, run: Any) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except Exception as exc:  # tensorboard is optional at run time
            logger.warning("TensorBoard logging off: %s", exc)
            return
        # Bounded too: on a disk that stopped answering the writer's folder and event file
        # are made in the training thread, which waited there for good, before the first
        # iteration (a SIGTERM never seen; stop29). A writer made after it was given up on
        # is closed at once (its event file would hold the mount).
        self._restore_hook = _quiet_writer_threads()
        purge = run.state.pos.iteration or None
        made: list[Any] = []
        lock = threading.Lock()

        def start() -> None:
            writer = SummaryWriter(self.log_dir, purge_step=purge)
            with lock:
                if not made:   # (else given up on: closed)
                    made.append(writer)
                    return
            writer.close()

        try:
            ended = self.bounded.run(start, self.log_dir, what=f"starting TensorBoard in "
                                     f"{self.log_dir}", run=run)
        except OSError as exc:   # (its first write: a full disk, a Drive mount that stopped)
            logger.warning("TensorBoard logging off: could not write %s: %s", self.log_dir,
                           exc.strerror or exc)
            self._put_hook_back()
            return
        with lock:
            late = made[0] if made else None
            if not made:
                made.append(None)   # (given up on: a writer made later closes itself)
        if ended:
            self.writer = late
        elif late is not None:
            late.close()   # (made just as the wait ended: TensorBoard is off all the same)
        if self.writer is None:
            self._put_hook_back()

    def _put_hook_back(self) -> None:
        self._restore_hook()
        self._restore_hook = _nothing

    def on_train_batch_end(self, run: Any, pos: Any, logs: dict) -> None:
        # Bounded too: on a hung disk its queue filled mid-epoch, and the next add_scalar
        # waited for good before any flush found the disk stuck (attacktr29).
        if self.writer is not None and pos.iteration % self.every == 0:
            self._bounded(run, [(f"train/{k}", logs[k], pos.iteration)
                                for k in ("loss", "lr")], flush=False)

    def on_fit_epoch_end(self, run: Any, pos: Any, row: dict) -> None:
        if self.writer is None:
            return
        self._bounded(run, [(f"epoch/{k}", row[k], row["epoch"]) for k in (
            "train_loss", "val_loss", "map50", "map", "lr", "images_per_s")
            if row.get(k) is not None], flush=True)

    def _bounded(self, run: Any, scalars: list, flush: bool) -> None:
        """``scalars`` added (then flushed), on a thread of its own: once that waits on the
        disk, TensorBoard is dropped for the run (its queue would fill, and the next scalar
        wait for good)."""
        writer = self.writer

        def write() -> None:
            for tag, value, step in scalars:
                writer.add_scalar(tag, value, step)
            if flush:
                writer.flush()

        try:
            if not self.bounded.run(write, self.log_dir, run=run):
                self.writer = None
        except OSError as exc:
            # As results.csv's: a full disk, or a Drive mount that stopped, must not end the
            # run here, before the epoch's checkpoint is even tried (the save policy comes
            # last). The writer's thread is dead: TensorBoard is off for the run.
            logger.warning("TensorBoard logging off: could not write %s: %s", self.log_dir,
                           exc.strerror or exc)
            self.writer = None

    def on_fit_end(self, run: Any) -> None:
        self._close(run)

    def on_interrupt(self, run: Any, exc: BaseException) -> None:
        self._close(run)   # (at a stop 1 s at most: the stop's line comes after it)

    def _close(self, run: Any) -> None:
        if self.writer is not None:
            self.bounded.run(self.writer.close, self.log_dir, run=run)
            self.writer = None
        self._put_hook_back()
