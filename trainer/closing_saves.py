"""The end of a run's saving (:class:`ClosingSaves`, a mixin of
:class:`~trainer.saving.Checkpointer`; split from saving.py at its line cap): the writer
closed within the bounds of a stop's or the final flush's waits (:meth:`drive_until`,
:meth:`flush_until`), what the end says when it could not finish or Drive refused the last
push, and the last epoch's save checked (a run must not end 0 with ``last.pt`` behind the
training it reports). Its state is made in ``Checkpointer.__init__``.
"""
from __future__ import annotations

import errno
import logging
from typing import Any, Optional

from trainer import kept_state, pushed, stop_lines
from trainer.errors import LeaseLostError, SaveError
from trainer.final_wait import FinalWait
from trainer.save_job import SaveJob
from trainer.stopping import StopFlag
from trainer.writer import BackgroundWriter

# (The save policy's name: its records are named as they were before the split.)
logger = logging.getLogger("trainer.saving")


class ClosingSaves:
    """The end of :class:`~trainer.saving.Checkpointer`'s saving."""

    out_dir: str
    drive_spec: Optional[str]
    writer: Optional[BackgroundWriter]
    stop: StopFlag
    final_wait: FinalWait
    drive_note: Optional[str]
    _epoch_job: Optional[SaveJob]
    _said_unfinished: bool

    def _check_final_save(self, run: Any) -> None:
        """The last epoch's checkpoint could not be written (a full disk): the run must not end
        0 with last.pt behind the training it reports, and the writer's error line long gone
        up the log. Raises :class:`SaveError` naming what the folder still holds."""
        job = self._epoch_job
        if job is None or job.error is None:
            return
        full = getattr(job.error, "errno", None) in (errno.ENOSPC, errno.EDQUOT)
        remedy = "free some space and " if full else "fix that and "
        epoch = job.position.epoch
        if job.missing and job.missing != job.names:
            # The state is in the first file; only its copies (epoch_NNN.pt, best.pt: what
            # goes to Drive) are missing, and a resume from it makes them again. last.pt never
            # goes to Drive: with drive.logs it is sent there as epoch_NNN.pt (epochkeep32).
            sent = kept_state.send_last(job, self.out_dir, stop_lines.send_to(self))
            raise SaveError(
                f"could not write {', '.join(job.missing)} (epoch {epoch}) in {self.out_dir}: "
                f"{job.error}; the state of epoch {epoch} is in {job.name}{sent}: {remedy}run "
                f"the same command again to make them from it (it trains nothing more)")
        head = (f"could not write the checkpoint of epoch {epoch} ({', '.join(job.names)}) "
                f"in {self.out_dir}: {job.error}")
        # Its state, still in memory, on this machine's disk (and drive.logs: lastkeep32): the
        # trained epoch was dropped.
        kept = kept_state.kept_text(job, head, first=remedy.replace(" and ", ", then "),
                                   to=stop_lines.send_to(self))
        nor = kept_state.nor_text(kept) if isinstance(kept, Exception) else ""
        raise SaveError(kept if isinstance(kept, str) else
                        f"{head}{nor}; {self._newest_text(run, 'there', remedy)}")

    def _unwritten_epoch(self) -> Optional[SaveJob]:
        """The last epoch's save while it is still queued or being written (not failed)."""
        job = self._epoch_job
        if job is None or job.written or job.error is not None or job.dropped:
            return None
        return job

    def drive_until(self) -> Optional[float]:
        """When a stop's waits on Drive (and on a slow disk) end: the grace after a signal; a
        stop without one waits as the final flush does (:meth:`StopFlag.until`)."""
        return self.stop.until(self.final_wait.deadline)

    def flush_until(self) -> Optional[float]:
        """When the final flush's waits on Drive end: a stop's (:meth:`drive_until`), else
        only when a folder it waits on stopped answering (no SIGKILL follows)."""
        return self.drive_until() if self.stop.is_set() else self.final_wait.deadline()

    def _close_until(self) -> Optional[float]:
        """:meth:`flush_until`, but a stop's with the last epoch's save still unwritten and
        ``drive.logs`` set ends at 3/4 of its wait: the last quarter sends that state from
        /tmp (``epoch_kept``), which always found the grace spent (epochkeep32)."""
        end = self.flush_until()
        if end is None or self.stop.at is None or self.writer is None or \
                self.writer.drive is None or self._unwritten_epoch() is None:
            return end
        return end - max(0.0, end - (self.stop.signal_at or self.stop.at)) / 4

    def _close(self, *, push_error: bool, push: bool = True) -> bool:
        """Let the writer finish (bounded by the grace once a stop was asked); False if it did not."""
        if self.writer is None:
            return True
        # (A stop's: drive_until. A stop without a signal may have waited past its grace for
        # its push: a deadline long past then said the verified mirror "could not finish".)
        finished = self.writer.close(self._close_until, push=push)
        if not finished and self._unwritten_epoch() is None and self.stop.is_set():
            # (Written in the quarter left to its send after all: the rest is the push's.)
            finished = self.writer.close(self.flush_until, push=push)
        err = self.writer.last_error
        if not finished:
            if self._said_unfinished:  # on_fit_end said it; on_interrupt closes again
                return False
            self._said_unfinished = True
            if self.final_wait.hung is not None and not self.stop.is_set():
                # (No stop: without a bound it waited as long as the mount hung: hungend30.)
                if push_error:
                    raise SaveError(self.final_wait.text(self._epoch_job))
                logger.error("%s", self.final_wait.text(self._epoch_job))
                return False
            unwritten = self._unwritten_epoch()
            logger.error("the Drive mirror could not finish within train.grace_seconds; %s",
                         f"the local checkpoints in {self.out_dir} are complete" if unwritten is None
                         else f"the checkpoint of epoch {unwritten.position.epoch} is not written yet")
            return False
        elif err is not None:
            if isinstance(err, LeaseLostError):   # (taken over: its own line, no push advice)
                if push_error and not self.stop.is_set():
                    raise err
                return finished
            if push_error:
                from drivestage.errors import MirrorError, OtherRunError

                # What is safe on Drive, what is not; this machine may go only in the first case.
                safe, message = pushed.final_text(
                    self.writer.safe, self.writer.left, self.writer.not_on_drive(), err,
                    self.out_dir, str(self.drive_spec),
                    other_run=self.writer.left or () if isinstance(err, OtherRunError) else ())
                if not safe:
                    raise MirrorError(message) from err
                self.drive_note = message
                return finished
            logger.error("the Drive mirror could not finish: %s", err)
        return finished
