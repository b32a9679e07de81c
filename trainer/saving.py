"""The save policy: one callback that decides what to save when, and owns its bookkeeping.

What it saves (names in the run folder, ``train.out_dir``):

* every epoch: ``last.pt`` (local only); ``epoch_NNN.pt`` every ``train.save_period`` epochs
  and at the last one; ``best.pt`` when mAP@0.5 improved (``best_map50`` / ``best_epoch``
  are this callback's state, kept in every checkpoint);
* every ``train.save_minutes`` of training: ``autosave_<iteration>.pt``, in the middle of an
  epoch too. The clock restarts with every checkpoint that goes to Drive;
* on SIGTERM/SIGINT/SIGHUP (:mod:`trainer.stopping`): ``autosave_<iteration>.pt`` at the next
  iteration boundary, waited for until it is verified on Drive or ``train.grace_seconds``
  have passed since the signal; then the run stops (exit 143, or 130 for SIGINT, 129 for SIGHUP).

Taking the state is collective under DDP (every rank's RNG is gathered, and every rank agrees
at each iteration whether to stop or save); rank 0 alone copies the state to CPU and hands it
to :class:`trainer.writer.BackgroundWriter`, which writes and uploads it while training goes on.
The end of the saving (the writer closed within its bounds, the last save checked) is in
:mod:`trainer.closing_saves`.
"""
from __future__ import annotations

import contextlib

import errno
import logging
import os
import time
from typing import Any, Callable, Optional, Sequence

from trainer import checkpoint as ckpt
from trainer import distributed, kept_state, peer_loss, stop_lines, stop_save, stopping, \
    worker_deaths
from trainer.passed_over import BAD_SUFFIX  # noqa: F401 (here before)
from trainer.passed_over import move_aside as _move_aside
from trainer.pushed import NAMED_UNSENT, unsent_text  # noqa: F401 (here before)
from drivestage.lost_mounts import lost_mount
from trainer.callbacks import WRITE_WITHIN_S, Bounded, Callback
from trainer.closing_saves import ClosingSaves
from trainer import failed_saves
from trainer.errors import SaveError, TrainingInterrupted
from trainer.final_wait import FinalWait
from trainer.state import Position, autosave_name
from trainer.stopping import StopFlag
from trainer.write_order import WriteStuck  # noqa: F401 (here before)
from trainer.writer import BackgroundWriter, SaveJob

logger = logging.getLogger(__name__)

#: A stop's save the run folder's disk refused for these goes to Drive from another folder
#: (trainer.stop_save), as does one whose write there has not ended halfway through the grace.
FULL = (errno.ENOSPC, errno.EDQUOT)

#: Seconds of training between two looks at whether the run folder's mount stopped (one
#: read of /proc/mounts; under a FUSE mount, one bounded stat).
LOOK_S = 60.0

#: How long a second Ctrl-C's line ("stopped at once") may look for the newest checkpoint in
#: the run folder: on a disk that does not answer it waited there for good (attacktr29). The
#: other lines that look there wait :data:`~trainer.callbacks.WRITE_WITHIN_S` at most.
NEWEST_WITHIN_S = 2.0


def snapshot(run: Any) -> Optional[dict]:
    """The full training state, copied to CPU memory; None on ranks other than 0.

    Collective: every rank must call it at the same point (their RNG states are gathered)."""
    rng = distributed.all_gather_object(ckpt.capture_rng())  # every rank's RNG, in rank order
    if not run.info.is_main:
        return None
    return ckpt.to_cpu({
        "format_version": ckpt.FORMAT_VERSION,
        "trainer_version": ckpt.trainer_version(),
        "model": run.bare_model.state_dict(),
        "ema": run.ema.state_dict() if run.ema is not None else None,
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.schedule.state_dict(),
        "scaler": run.scaler.state_dict(),
        **run.state.state_dict(),
        **run.checkpointer.state_dict(),
        "rng": rng,
        "config": run.cfg.to_dict(),
        "signature": run.signature,
        "class_names": list(run.class_names),
    })


class Checkpointer(Callback, ClosingSaves):
    """Saves at epoch ends, every ``save_minutes`` and on a stop request (on every rank)."""

    def __init__(self, cfg: Any, info: distributed.DistInfo, writer: Optional[BackgroundWriter],
                 stop: StopFlag, *, clock: Callable[[], float] = time.monotonic,
                 passed_over: Sequence[tuple[str, str]] = ()):
        t = cfg.train
        self.out_dir, self.info, self.writer, self.stop = t.out_dir, info, writer, stop
        self.save_period, self.epochs = t.save_period, t.epochs
        self.interval_s = t.save_minutes * 60.0
        self.drive_spec = cfg.drive.logs
        self.best_map50: Optional[float] = None
        self.best_epoch: Optional[int] = None
        self._clock = clock
        self._since = clock()          # the last checkpoint that goes to Drive
        self._looked = self._since     # the last look at the run folder's mount (_due)
        self.began = 0                 # the iteration this process's training began at
        self.blocked_s: list[float] = []
        self._epoch_job: Optional[SaveJob] = None   # the newest epoch's save (rank 0)
        self._jobs: list[SaveJob] = []   # saves not yet done, and those that failed (the end's line)
        self._said_unfinished = False                # the grace's end is logged once
        # The final push failed after every file was verified on Drive: the run's last line.
        self.drive_note: Optional[str] = None
        # This folder's files --resume auto passed over, (path, md5): moved aside at the first
        # save (:meth:`keep_aside`).
        self.passed_over = list(passed_over)
        self.final_wait = FinalWait(t.out_dir, cfg.drive.logs)   # (a hung mount ends the close)
        # train.keep_local: rank 0 alone deletes (under DDP the other ranks hold no writer;
        # one handed one anyway deletes nothing).
        if writer is not None and info.is_main:
            writer.keep_local(t.keep_local)

    # -- bookkeeping kept in every checkpoint
    def state_dict(self) -> dict:
        return {"best_map50": self.best_map50, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict) -> None:
        self.best_map50, self.best_epoch = state.get("best_map50"), state.get("best_epoch")

    # -- events
    def on_fit_start(self, run: Any) -> None:
        self.began = run.state.pos.iteration   # (a resume's: worker_deaths saves nothing new)
        # What an earlier process left here goes to Drive now, before the first save prunes
        # an autosave of it: one killed between an autosave's file and its sidecar on Drive
        # left that file there alone, and no push sent the sidecar or retired it (attacktrain26).
        if self.writer is not None and self.info.is_main:
            self.writer.push_soon()
            self.swept = stop_save.sweep(self.out_dir, self.writer.drive, run.state.run,
                                         run.state.pos, keep=run.resumed_from)   # (in /tmp)

    def on_train_batch_end(self, run: Any, pos: Position, logs: dict) -> None:
        # One collective per iteration: stop (any rank got a signal) and save (rank 0's clock).
        signum, due = distributed.agree(self.stop.signum or 0, self._due())
        if signum:
            self.stop.request(signum)            # a rank that got no signal stops as the others do
            self._save_and_stop(run, pos)
        if due:
            if self._lost():   # (its write there failed, quietly, until the epoch's end)
                self._rescue(run, pos, {}, f"cannot save {pos.label} in {self.out_dir}, so "
                                           "training stopped there")
            self._save(run, [autosave_name(pos.iteration)], pos, droppable=True)
            self._since = self._clock()

    def on_validation_end(self, run: Any, pos: Position, row: dict) -> None:
        # A signal during evaluation cut it short: save the trained epoch and stop.
        signum, _ = distributed.agree(self.stop.signum or 0, False)
        if signum:
            self.stop.request(signum)
            self._save_and_stop(run, pos)

    def on_fit_epoch_end(self, run: Any, pos: Position, row: dict) -> None:
        metrics = {k: row[k] for k in ("val_loss", "map50", "map") if row.get(k) is not None}
        map50 = metrics.get("map50")
        improved = map50 is not None and (self.best_map50 is None or map50 > self.best_map50)
        if improved:
            self.best_map50, self.best_epoch = map50, pos.epoch
            logger.info("new best mAP@0.5 %.4f at epoch %d", map50, pos.epoch)
        periodic = pos.epoch % self.save_period == 0 or pos.epoch == self.epochs
        names = ["last.pt"] + ([f"epoch_{pos.epoch:03d}.pt"] if periodic else []) + \
            (["best.pt"] if improved else [])
        # (One collective: every rank stops, as rank 0 saw the mount gone.)
        if self._lost():
            self._rescue(run, pos, metrics, f"cannot save epoch {pos.epoch} in {self.out_dir}, "
                                            "so training stopped there")
        self._epoch_job = self._save(run, names, pos, metrics=metrics)
        if periodic or improved:
            self._since = self._clock()

    def on_fit_end(self, run: Any) -> None:
        try:
            finished = self._close(push_error=True)
        except Exception:
            self._check_final_save(run)   # the cause first: nothing new could be mirrored
            raise
        self._check_final_save(run)
        unwritten = self._unwritten_epoch()
        if not finished and self.stop.is_set() and unwritten is not None:
            # The writer had not even written the last epoch's files (a slow upload before
            # them held it, a hung disk): its state, in memory, is kept in /tmp (stop_save).
            head, kept = kept_state.epoch_kept(unwritten, self.stop.name,
                                              stop_lines.send_to(self))
            raise TrainingInterrupted(kept or f"{head}; {self._newest_text(run, 'in')}",
                                      exit_code=self.stop.exit_code)
        if not finished and self.stop.is_set():
            # (drive.logs in a Drive mount: the same command pushed into it again; hungend30.)
            then = self.final_wait.push_text() or \
                "run the same command again to upload them (it trains nothing more)"
            raise TrainingInterrupted(
                f"stopped by {self.stop.name} while the last checkpoints were uploaded; they are "
                f"complete in {self.out_dir}: {then}", exit_code=self.stop.exit_code)
        if finished and self.writer is not None and self.info.is_main and \
                stop_save.is_leftover(run.resumed_from):
            # Resumed from an earlier stop's copy (--resume <path>): its md5 is nowhere else,
            # and the start's sweep kept it; this run went on past it on Drive (stopleft31).
            self.swept = stop_save.sweep(self.out_dir, self.writer.drive, run.state.run,
                                         warn=False)
            self.swept.join(WRITE_WITHIN_S)
        line = failed_saves.warning_line(self._jobs, self._epoch_job, self.out_dir, self.writer)
        if line is not None:   # (the final save verified: 0, but not as a clean success)
            logger.warning("%s", line)
        refused = failed_saves.refused_line(self.writer, self.out_dir)   # (Drive's, retried)
        if refused is not None:
            logger.log(logging.WARNING if refused[0] else logging.INFO, "%s", refused[1])
        if self.blocked_s:
            logger.info("%d checkpoints saved; training waited %.2f s for them in all (at most "
                        "%.2f s for one)", len(self.blocked_s), sum(self.blocked_s), max(self.blocked_s))

    def on_interrupt(self, run: Any, exc: BaseException) -> None:
        if isinstance(exc, KeyboardInterrupt) and self.stop.is_set():
            # A second Ctrl-C (the first asked for the stop): stop at once, as a second SIGTERM
            # does (trainer.stopping). Flushing the mirror here kept the run up to
            # train.grace_seconds more. The writer ends what it is doing in the background
            # while the process lasts (a notebook's kernel), with no further push.
            if self.writer is not None:
                self.writer.close(time.monotonic, push=False)
            if self.info.is_main:
                # "Interrupted." alone said nothing of what was saved, nor what to run.
                logger.warning("a second Ctrl-C: stopped at once, without waiting for the "
                               "uploads; %s", self._newest_text(run, "in", within=NEWEST_WITHIN_S))
            return
        stopped = isinstance(exc, TrainingInterrupted)
        if self.writer is not None and not stopped and self.drive_spec:
            logger.info("flushing the Drive mirror before stopping ...")
        # A stop already waited for its checkpoint's upload: no second push within the grace.
        # Its signals are still its own (the training's handlers are gone): a stop without one
        # may wait here up to 15 min (a slow or hung disk's write), and a Ctrl-C or SIGTERM
        # then killed it, its line never said; now that cuts the wait to the grace (attacktr32).
        with self.stop.installed() if self.stop.is_set() else contextlib.nullcontext():
            self._close(push_error=False, push=not stopped)

    # -- internals
    def _lost(self) -> bool:
        """Whether rank 0 finds the run folder's mount stopped (a collective)."""
        return distributed.agree(0, self.info.is_main and lost_mount(self.out_dir) is not None)[1]

    def _rescue(self, run: Any, pos: Position, metrics: dict, head: str) -> None:
        """The run folder's mount stopped (Colab's Drive mount, until a remount no cell can
        run meanwhile): every later save failed, the run trained for nothing (colabtools
        issue 3940). The state goes to this machine's disk (and ``drive.logs``); it stops."""
        state = snapshot(run)   # (collective)
        if state is None:   # (another rank: rank 0 says it)
            raise SaveError(f"{self.out_dir} no longer answers; stopped")
        raise SaveError(kept_state.rescue_text(
            state, autosave_name(pos.iteration), metrics, head=head, out_dir=self.out_dir,
            drive=self.writer.drive if self.writer is not None else None, spec=self.drive_spec,
            saved=self._taken()))

    def _taken(self) -> float:
        """The save time of a state taken now (the writer's: never before the run's last)."""
        return self.writer.taken() if self.writer is not None else time.time()

    def _newest_text(self, run: Any, where: str, remedy: str = "",
                     within: float = WRITE_WITHIN_S) -> str:
        """:func:`trainer.stop_lines.newest_text` of this run folder."""
        return stop_lines.newest_text(self, run, where, remedy, within)

    def _due(self) -> bool:
        """Rank 0: an autosave is due, or (every :data:`LOOK_S`) the run folder's mount
        stopped: the save then rescues the state (with train.save_minutes 0 or long, the
        rest of the epoch trained for nothing before the epoch's end found it)."""
        if not self.info.is_main:
            return False
        now = self._clock()
        if self.interval_s > 0 and now - self._since >= self.interval_s:
            return True
        if now - self._looked < LOOK_S:
            return False
        self._looked = now
        return lost_mount(self.out_dir) is not None

    def _save(self, run: Any, names: list, pos: Position, *, metrics: Optional[dict] = None,
              droppable: bool = False) -> Optional[SaveJob]:
        began = time.perf_counter()
        state = snapshot(run)
        if state is None or self.writer is None:
            return None
        self.keep_aside()
        job = SaveJob(state, names, pos, dict(metrics or {}), droppable=droppable,
                      taken=self.writer.taken(), keep_failed=pos.epoch == self.epochs and
                      not droppable)   # (the last epoch's: kept in /tmp if it fails)
        # A stop while an epoch's save waits behind a slow upload writes both at once (the
        # wait would otherwise outlast train.grace_seconds and the notice).
        self.writer.submit(job, stopping=self.stop.is_set, deadline=lambda: self.stop.deadline)
        self._jobs = [*failed_saves.keep_watching(self._jobs), job]
        blocked = time.perf_counter() - began
        self.blocked_s.append(blocked)
        logger.debug("checkpoint %s at %s: training blocked %.3f s", job.name, pos.label, blocked)
        return job

    def keep_aside(self, within: float = WRITE_WITHIN_S) -> None:
        """:meth:`move_aside`, waited for ``within`` seconds at most: on a disk that does not
        answer it held the training thread for good, and a stop's save behind it went nowhere,
        not even to Drive (attacktr29). Then it is said, and left to end when it may."""
        items, self.passed_over = self.passed_over, []
        if items:
            paths = ", ".join(p for p, _ in items)
            Bounded(within).run(lambda: self.move_aside(items), self.out_dir, what=(
                f"moving {paths} aside (passed over at the start as no state to train on)"),
                run=self)   # (its stop cuts the wait short too)

    def move_aside(self, items: Sequence[tuple[str, str]]) -> None:
        """:func:`trainer.passed_over.move_aside` (the files ``--resume auto`` passed over)."""
        _move_aside(items)

    def stop_at(self, run: Any, pos: Position) -> None:
        """Save the state of ``pos`` (the last step done) and stop, as a stop asked for now
        would (a DataLoader worker's death found between two steps: trainer.worker_deaths)."""
        self._save_and_stop(run, pos)

    def stop_saved(self, run: Any, pos: Position) -> None:
        """Stop without a second save where this epoch's files hold ``pos`` (a rank lost at
        the epoch's end, once they were queued: trainer.peer_loss), once written and pushed:
        an autosave of the same state was written and uploaded beside them. Returns where
        they do not hold it or were not written within half the grace (then stop_at)."""
        job = self._epoch_job
        if job is None or job.position != pos or self.writer is None:
            return
        job.done.wait(max(0.0, (self.stop.deadline or 0.0) - time.monotonic()) / 2)
        if not job.written:
            return
        self.writer.wait_pushed(self.writer.push_soon(), self.drive_until)
        raise TrainingInterrupted(stop_lines.stop_message(self, job, pos),
                                  exit_code=self.stop.exit_code)

    def _save_and_stop(self, run: Any, pos: Position) -> None:
        if self.stop.worker_died:
            worker_deaths.release()   # (their memory, before the state is copied)
        state = snapshot(run)
        message = None
        if state is not None and lost_mount(self.out_dir) is not None:
            # Its write there fails at once, and the state was lost with it ("the newest
            # earlier checkpoint is where --resume auto continues"): rescued.
            name = autosave_name(pos.iteration)
            message = kept_state.rescue_text(
                state, name, {}, head=f"stopped by {self.stop.name} at {pos.label}: {name} "
                f"cannot be written in {self.out_dir}", out_dir=self.out_dir,
                drive=self.writer.drive if self.writer is not None else None,
                spec=self.drive_spec, saved=self._taken(), deadline=self.drive_until)
        elif state is not None and self.writer is not None:
            # (A quarter of the grace at most: the save's own write has half of what is left.)
            self.keep_aside(max(0.0, (self.stop.deadline or 0.0) - time.monotonic()) / 4)
            # Written here and now, even while a slow upload runs; then uploaded and verified.
            job = SaveJob(state, [autosave_name(pos.iteration)], pos, taken=self.writer.taken())
            # One listing of the run folder, begun now, words both the writer's warning and
            # the line: the disk answers (slowly) or not (stopleft31).
            listed = stop_save.listing(self.out_dir)
            # On a thread of its own: half the grace, then elsewhere too (trainer.stop_save).
            ticket = self.writer.write_now(job, self.stop.deadline, patience=0.5, listed=listed)
            if self._elsewhere_due(job):
                message = stop_lines.saved_elsewhere(self, job, state, pos, listed)
            if message is None:
                if job.ended is not None and not job.ended.is_set():
                    # A disk merely slow and no Drive to send it from elsewhere: the rest of
                    # the grace. Half of it said "could not be written (None)", and the exit
                    # cut the write off, a temporary file left (stop29). (No signal: longer.)
                    stopping.wait_for(job.ended, self.drive_until)
                if job.ended is not None:   # (written late: the push asked for missed it)
                    ticket = self.writer.push_soon()
                if self.stop.unsignalled and self.drive_spec and not job.error and \
                        self.stop.signum != stopping.LEASE_LOST:   # (taken over: none goes)
                    logger.info("waiting for %s to reach %s (no signal asked for this stop; a "
                                "SIGTERM or Ctrl-C ends the wait sooner)", job.name,
                                self.drive_spec)
                self.writer.wait_pushed(ticket, self.drive_until)
                message = stop_lines.stop_message(self, job, pos, state)
        try:
            distributed.barrier()  # the other ranks leave with rank 0 (torchrun stops stragglers)
        except RuntimeError as exc:
            # A rank killed as it waited here (torchrun's or Slurm's SIGKILL after their 30 s):
            # rank 0's save is done and said; taken for a loss in training, it saved again.
            # (Another rank that lost rank 0 here ends as peer_loss words it: nothing saved.)
            if peer_loss.lost_peer(exc) is None or not self.info.is_main:
                raise
            distributed.lose()
        message = message or f"stopped by {self.stop.name} at {pos.label}"
        message += worker_deaths.advice(self.stop)   # (on every rank: one collective)
        raise TrainingInterrupted(message, exit_code=self.stop.exit_code)

    def _elsewhere_due(self, job: SaveJob) -> bool:
        """Whether a stop's save also goes to Drive from elsewhere: its write here has not ended
        halfway through the grace (a slow disk too: stop30) or found a full disk."""
        if self.writer is None or self.writer.drive is None or job.ended is None:
            return False
        return not job.ended.is_set() or getattr(job.error, "errno", None) in FULL
