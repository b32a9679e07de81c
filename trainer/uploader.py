"""The uploader of :class:`~trainer.writer.BackgroundWriter` (:class:`Uploader`, a mixin of
it; split from writer.py at its line cap): the thread that pushes the run folder to Drive
whenever a write asked for it (one push covers every request made before it starts), what
each push verified counted (:mod:`trainer.pushed`), a failed push retried every ``retry_s``
and said loudly once Drive has accepted nothing for two save intervals, and the "safe on
Drive" text. Its state is made in ``BackgroundWriter.__init__``, under the writer's lock.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Optional

from drivestage.interrupts import Monitor
from drivestage.push_result import Outstanding
from trainer import autosaves, failed_saves, pushed
from trainer.autosaves import LOCAL_AUTOSAVES
from trainer.local_retention import LocalRetention, finish_removals
from trainer.pushed import SafeOnDrive, ahead
from trainer.save_job import SaveJob
from trainer.state import Position

# (The writer's name: its records are named as they were before the split.)
logger = logging.getLogger("trainer.writer")


class Uploader:
    """The uploading half of :class:`~trainer.writer.BackgroundWriter`."""

    _cond: Monitor
    _clock: Callable[[], float]
    drive: Any
    out_dir: str
    retry_s: float
    interval_s: float
    refused: failed_saves.RefusedPushes
    _retention: Optional[LocalRetention]
    _positions: dict[str, Position]
    _awaiting: list[tuple[int, SaveJob]]
    safe: Optional[SafeOnDrive]

    def _push_loop(self) -> None:
        """The uploader: one push covers every request made before it starts (what was written
        meanwhile goes in one push; what was superseded locally is no longer there to send)."""
        while True:
            with self._cond:
                while (self._push_requested <= self._push_done and not self._retry_due()
                       and not (self._stopping and self._writes_over)):
                    timeout = None if self._retry_at is None else max(0.0, self._retry_at - self._clock())
                    self._cond.wait(timeout)
                if self._push_requested <= self._push_done and self._stopping and self._writes_over:
                    self._cond.notify_all()            # stopping: nothing left to push (no retry)
                    return
                target = self._push_requested
            self._push()
            with self._cond:
                self._push_done = max(self._push_done, target)
                covered = [job for ticket, job in self._awaiting if ticket <= self._push_done]
                self._awaiting = [(t, j) for t, j in self._awaiting if t > self._push_done]
                for job in covered:
                    job.done.set()
                self._cond.notify_all()

    def _retry_due(self) -> bool:
        return self._retry_at is not None and self._clock() >= self._retry_at

    def _push(self) -> None:
        if self._retention is not None:   # a removal cut short: its sidecar is not mirrored
            finish_removals(self.out_dir)
        with self._cond:
            protect = self._protect | self._until_newer
            before, md5s, reached = dict(self._generation), dict(self._md5s), self._reached
        # (Listed without the lock: a hung disk. What the writer may prune meanwhile is not sent.)
        self._sending, skip = autosaves.split(self.out_dir, LOCAL_AUTOSAVES, reached)
        going = Outstanding()
        try:
            result = self.drive.push(protect, outstanding=going, skip=skip)
        except Exception as exc:  # Drive trouble never reaches the training thread
            # What it verified before it failed counts; the next push finds the rest unchanged.
            self.left = going.left()
            if self._settle(going.result, before, md5s, self.left, skip, ok=False):
                self._part_ok = self._clock()   # (Drive takes checkpoints; the rest fails)
                self._keep_local()
            self._push_failed(exc)
            return
        finally:
            self._sending = set()   # (one assignment; read under the lock)
        now = self._clock()
        self._settle(result, before, md5s, [], skip, ok=True)
        self.left = self.other_run = sorted(result.other_run)   # (left: not this run's there)
        with self._cond:
            self.last_error, self._retry_at = None, None
            if self._warned:
                logger.warning("Drive accepts checkpoints again (%s)", self.safe_text())
            self._last_ok, self._warned = now, False
        self._keep_local()
        if result.other_run:  # (after the bookkeeping: what did go is verified)
            # Another run wrote these names in drive.logs (started there at the same time):
            # they stay, so this run's checkpoints are not safe on Drive. Loud, as a failure.
            from drivestage.errors import OtherRunError   # (its final line: trainer.pushed)

            self._push_failed(OtherRunError(
                f"{self.drive.spec} holds another run's {', '.join(sorted(result.other_run))}, "
                f"left as they are; give this run its own folder: --set drive.logs=<a new "
                f"Drive folder>"))

    def _settle(self, result, before: dict, md5s: dict, unsent: Optional[list[str]],
                skip: list[str], *, ok: bool) -> bool:
        """Count what a push verified (:mod:`trainer.pushed`; ``unsent``: what it had not,
        None when it failed before it knew; ``skip``: what it was not to send); whether it
        verified any of this run's files."""
        with self._cond:
            got = pushed.credit(result, self._generation, before, self._recheck,
                                (*getattr(self.drive, "exclude", ()), *skip), self.out_dir, unsent)
            undone = set() if ok else {n for n in self._positions if n not in got.sent and
                                       self._verified_gen.get(n) != self._generation.get(n)}
            self._recheck = (self._recheck - set(got.sent) - got.left) | got.changed | undone
            self._verified_names.update(got.sent)
            if self._retention is not None and result is not None:   # (and older files)
                self._retention.pushed({n: md5s.get(n) for n in got.sent}, set(result.uploaded)
                                       - set(self._positions) if ok else (),
                                       result.skipped_by_policy)
            self._verified_gen.update({n: before[n] for n in got.sent if n in before})
            if result is not None and unsent is not None:
                self._left_out = got.left
            best = pushed.furthest(got.sent, self._positions)
            if best is not None and (self.safe is None or ahead(self._positions[best], self.safe.position)):
                self.safe = SafeOnDrive(best, self._positions[best], time.time())
            if best is not None:
                self._until_newer.clear()  # the next push's plan may prune what it kept
            return bool(got.sent)

    def _push_failed(self, exc: BaseException) -> None:
        now = self._clock()
        with self._cond:
            self.last_error = exc
            self._retry_at = now + self.retry_s
            self.refused.note(exc, self._generation, self._verified_gen,
                              getattr(self.drive, "exclude", ()))   # (said at the end)
            quiet_for = now - self._last_ok
            loud = not self._warned and quiet_for > 2 * self.interval_s
            if loud:
                self._warned = True
        logger.debug("push to Drive failed (retrying in %.0f s): %s", self.retry_s, exc)
        if loud:   # (a failed push that verified files since the last good one: said so)
            part = self._part_ok is not None and self._part_ok > self._last_ok
            logger.warning("%s", pushed.outage_text(quiet_for, exc, self.out_dir,
                                                    self.safe_text(default="none"), part))

    def safe_text(self, default: str = "Drive: nothing verified yet", *, short: bool = False) -> str:
        """``"Drive: 3 min ago, epoch 7 iteration 4120 (autosave_00004120.pt)"``; ``short``:
        ``"3 min ago, epoch 7 iteration 4120"`` (the progress bar)."""
        return pushed.safe_text(self.safe, default, short)
