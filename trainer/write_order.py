"""The order of checkpoint writes that share a name: the order they were handed over in.

:class:`trainer.writer.BackgroundWriter` writes on its own thread, and a stop writes in the
training thread at once (its own save, and the epoch saves that waited for the slot:
``_write_both_now``). Three epoch ends within one write (a slow disk) had both threads write
``last.pt`` at the same time: each through a temporary file of its own (never a torn file),
but the first epoch's rename could come last, leaving ``last.pt`` the oldest of the three,
and the copies it makes (``epoch_NNN.pt``, ``best.pt``) read from ``last.pt`` whatever was
there then (train27). A write now begins only once every write handed over before it that
shares one of its names has ended; a write of names no other one has (the stop's own
autosave) waits for nothing. And a stop's save supersedes an autosave of its name still
waiting to be written (:func:`superseded`): written after it, that older state replaced it.
"""
from __future__ import annotations

import errno
import logging
import os
import time
from contextlib import contextmanager
from typing import Any, Iterator, Optional

from drivestage.interrupts import BackgroundThread, Flag

logger = logging.getLogger("trainer.writer")   # (the writer's own word on its writes)

#: Seconds a listing of a folder whose write has not ended is waited for: it words the warning.
LIST_WITHIN_S = 0.2


def lists(folder: str, within: float) -> bool:
    """Whether ``folder`` was listed within ``within`` seconds (on a thread of its own: on a
    hung mount the listing waits for good; an error is an answer too)."""
    def look() -> None:
        try:
            os.listdir(folder)
        except OSError:   # (no traceback in the log)
            pass

    return BackgroundThread(look, "trainer-disk-probe").start().join(within)


class WriteStuck(OSError):
    """A write waited past its deadline for an earlier write of its names that does not end
    (a disk that stopped answering: a hung network or FUSE mount)."""

    def __init__(self, text: str) -> None:
        super().__init__(errno.ETIMEDOUT, text)

    def __str__(self) -> str:
        return str(self.strerror)


def superseded(waiting: Any, job: Any) -> bool:
    """Whether ``waiting`` (a job not written yet, or None) is an autosave of one of ``job``'s
    names, which ``job`` (a stop's save of that iteration, written now) supersedes."""
    return waiting is not None and waiting.droppable and bool(set(waiting.names) & set(job.names))


class WriteOrder:
    """The writes handed over and not ended, in order; ``cond`` is the writer's monitor
    (reentrant: :meth:`hand` is called with it held or not)."""

    def __init__(self, cond: Any) -> None:
        self._cond = cond
        self._writing: list[Any] = []     # SaveJobs (by identity: their states do not compare)
        self._began: dict[int, tuple[Any, float]] = {}   # id -> (job, monotonic) under way
        self._said: set[int] = set()      # the writes said to be stuck

    def hand(self, *jobs: Any) -> None:
        """``jobs`` are to be written, after those handed over before them."""
        with self._cond:
            self._writing += [j for j in jobs if not any(j is w for w in self._writing)]

    def __iter__(self) -> Iterator[Any]:
        with self._cond:
            return iter(list(self._writing))

    @contextmanager
    def turn(self, job: Any, deadline: Any = None) -> Iterator[None]:
        """Wait until the writes of ``job``'s names handed over before it have ended; the
        write of ``job`` runs inside (it ends with the block, even by an exception). At
        ``deadline`` (``time.monotonic()``, or a callable giving it; a stop's)
        :class:`WriteStuck`: an earlier write on a disk that stopped answering held a stop's
        write for good, past its grace."""
        self.hand(job)
        names = set(job.names)
        try:
            with self._cond:
                while any(names & set(w.names) for w in self._before(job)):
                    end = deadline() if callable(deadline) else deadline
                    left = None if end is None else end - time.monotonic()
                    if left is not None and left <= 0:
                        held = [w for w in self._before(job) if names & set(w.names)][0]
                        raise WriteStuck(f"the write of {', '.join(held.names)} before it has "
                                         f"not ended (the disk does not answer?)")
                    # (A callable's read again: a signal moves it, and wakes no wait.)
                    self._cond.wait(left if not callable(deadline) else min(left or 0.1, 0.1))
                self._began[id(job)] = (job, time.monotonic())
            yield
        finally:
            with self._cond:
                self._writing = [w for w in self._writing if w is not job]
                self._began.pop(id(job), None)
                self._cond.notify_all()

    def say_stuck(self, after: float, folder: str, listed: Optional[Flag] = None) -> None:
        """Warn, once a write, of each write under way for more than ``after`` seconds: a
        disk that stopped answering held training (and a stop's save) with no word.
        ``listed``: a listing of ``folder`` begun earlier (a stop's, at its signal), whose
        answer the stop's line words the disk by too; else one begun now."""
        now = time.monotonic()
        with self._cond:
            stuck = [(j, now - t) for j, t in self._began.values()
                     if now - t > after and id(j) not in self._said]
            self._said |= {id(j) for j, _ in stuck}
        for job, took in stuck:
            # Worded by what was measured: a disk merely slow lists its folder at once (stop30:
            # "does not answer" at half a stop's grace, then "the disk answers" in its line).
            # A stop's listing, begun at its signal: a disk slow to list (more than 0.2 s)
            # was said not to answer, and the stop's line then said it answers (stopleft31).
            answers = listed.wait(LIST_WITHIN_S) if listed is not None else \
                lists(folder, LIST_WITHIN_S)
            how = "lists" if listed is not None else "lists at once"
            why = (f", though its folder {how}: the disk answers, but slowly" if answers else
                   ": the disk does not answer (a hung network or FUSE mount?)")
            logger.warning("writing %s in %s has not ended for %.0f s%s; the saves after it "
                           "wait for it", ", ".join(job.names), folder, took, why)

    def _before(self, job: Any) -> list[Any]:
        for i, w in enumerate(self._writing):
            if w is job:
                return self._writing[:i]
        return []
