"""Saving that never stalls training: checkpoints written and uploaded on one background thread.

The training thread copies the state to CPU memory at an iteration boundary
(:func:`trainer.checkpoint.to_cpu`) and hands a :class:`SaveJob` to :class:`BackgroundWriter`;
that is all it waits for. The writing thread then, in order: serialises the state atomically
(the sidecar carries the file's md5), makes the job's copies (``epoch_NNN.pt``, ``best.pt``)
and keeps only the newest two autosaves in the run folder. A second thread, the uploader,
pushes the run folder to Drive whenever something new was written, noting which checkpoint
is now verified there (the "safe on Drive" the progress bar shows).

Writing never waits for an upload: on a slow link an epoch's files are complete locally as
soon as they are serialised, and only their upload waits. Uploads coalesce: a push sends the
folder as it is when it starts, so what was superseded locally before then (an older
autosave, pruned; an older ``best.pt``, replaced) is not sent, while every ``epoch_NNN.pt``
(never pruned locally) and the newest ``best.pt`` are. (Before, one thread wrote and uploaded
in turn: epoch N's files waited behind an upload, and epoch N+1's save blocked training.)

Bounded: one job is written and at most one waits to be. A newer job replaces a waiting
*droppable* one (an autosave, superseded by newer state); a job that must not be lost (an
epoch's files, a stop save) makes the next ``submit`` wait for the slot (a local write, not
an upload). Drive failures never reach the training thread: the uploader retries a failed
push every ``retry_s`` and says so loudly, once, when Drive has not accepted anything for
more than two save intervals (the uploader's part: :mod:`trainer.uploader`).
"""
from __future__ import annotations

import logging
import os
import time
from typing import Callable, Iterable, Optional

from drivestage.interrupts import BackgroundThread, Flag, Monitor
from trainer import autosaves, failed_saves, pushed
from trainer import checkpoint as ckpt
from trainer.autosaves import LOCAL_AUTOSAVES  # (here before: trainer.writer.LOCAL_AUTOSAVES)
from trainer.local_retention import LocalRetention
from trainer.pushed import SafeOnDrive
from trainer.save_job import SaveJob  # (here before: trainer.writer.SaveJob)
from trainer.save_times import SaveTimes
from trainer.state import AUTOSAVE_NAME, Position
from trainer.stopping import STEP_S, Deadline, deadline_at
from trainer.uploader import Uploader
from trainer.write_order import WriteOrder, WriteStuck, superseded

logger = logging.getLogger(__name__)

#: Seconds a write may take before the writer says the disk does not answer (train28).
STUCK_S = 60.0


class BackgroundWriter(Uploader):
    """Writes :class:`SaveJob`s into ``out_dir`` and mirrors the folder with ``drive``."""

    def __init__(self, out_dir: str, drive=None, *, interval_s: float = 600.0,
                 retry_s: float = 60.0, protect: Iterable[str] = (),
                 clock: Callable[[], float] = time.monotonic, stuck_s: float = STUCK_S):
        self.out_dir = out_dir
        self.drive = drive
        self.interval_s = interval_s
        self.retry_s = retry_s
        self._protect = set(protect)
        self._until_newer: set[str] = set()   # protected until a newer one is verified
        self._clock = clock
        self._cond = Monitor()  # a Ctrl-C cannot leave it held (drivestage.interrupts)
        self._pending: Optional[SaveJob] = None
        self._current: Optional[SaveJob] = None
        self._writing = WriteOrder(self._cond)  # writes of one name: in hand-over order
        self.stuck_s = stuck_s                  # a write this long: the disk is said hung
        self._push_requested = 0           # push requests so far (a written job is one)
        self._push_done = 0                # requests covered by a finished push (ok or not)
        # Written jobs and the push request each made: done once a push covered it.
        self._awaiting: list[tuple[int, SaveJob]] = []
        self._stopping = False
        self._writes_over = False          # the writing thread has ended (after a close)
        self._positions: dict[str, Position] = {}   # what this run wrote, by name
        # Writes of each name so far: a push credits a name only if it was not written again
        # while the push ran (an epoch's best.pt replaced under an upload of the older one).
        self._generation: dict[str, int] = {}
        self.refused = failed_saves.RefusedPushes()   # pushes failed mid-run (trainres48)
        self._recheck: set[str] = set()   # written during a push: the next push tells
        self._sending: set[str] = set()   # the autosaves here when the push under way began
        self._verified_names: set[str] = set()
        # The write (generation) of each name a push verified, and what the latest push left
        # out on purpose (the retention policy; another run's or a further-on copy there, each
        # said when it happened): what :meth:`not_on_drive` leaves out.
        self._verified_gen: dict[str, int] = {}
        self._left_out: set[str] = set()
        self.safe: Optional[SafeOnDrive] = None
        self.last_error: Optional[BaseException] = None
        self.left: Optional[list[str]] = []   # what the last push did not send (None: unknown)
        self.other_run: list[str] = []   # another run's there, as the last push that ended saw
        self._last_ok = clock()             # Drive last accepted a push (or the start)
        self._part_ok: Optional[float] = None   # a push that failed verified files then
        self._warned = False
        self._retry_at: Optional[float] = None
        self.dropped = 0
        self._times = SaveTimes()
        # train.keep_local (trainer.local_retention): rank 0's alone, set by the save policy.
        self._retention: Optional[LocalRetention] = None
        self._md5s: dict[str, str] = {}     # the md5 of each name's latest write
        self._upto, self._run = 0, None     # the furthest epoch written, and the run's id
        self._reached: Optional[int] = None  # the furthest iteration written
        # Not threading.Thread: a Ctrl-C inside its is_alive()/join() marks it stopped.
        self._thread = BackgroundThread(self._loop, "trainer-writer").start()
        # Uploads on a thread of their own: a slow one never holds the next epoch's files back.
        self._uploader = BackgroundThread(self._push_loop, "trainer-upload").start() \
            if drive is not None else None

    # -- the training thread
    def not_before(self, saved: float) -> None:
        """Every state this run takes from now on is later than ``saved`` (the latest save
        time among the run's checkpoints seen at the start): :mod:`trainer.save_times`."""
        self._times.not_before(saved)

    def taken(self) -> float:
        """The save time of a state taken now (its sidecar's ``saved``)."""
        return self._times.taken()

    def submit(self, job: SaveJob, stopping: Callable[[], bool] = lambda: False,
               deadline: Callable[[], Optional[float]] = lambda: None) -> None:
        """Queue ``job``. A droppable job never waits: it replaces a waiting droppable one, or is
        dropped itself when an epoch's save still waits (that save is about as new). Only a job
        that must not be dropped waits while another such job holds the slot, and only until
        ``stopping()`` says a stop was asked for: then the waiting job and ``job`` are written
        at once in the calling thread (see :meth:`_write_both_now`)."""
        waiting: Optional[SaveJob] = None
        with self._cond:
            if self._pending is not None and not self._pending.droppable:
                if job.droppable:
                    self._drop(job, f"{self._pending.name} still waits to be written")
                    return
                while self._pending is not None and not self._pending.droppable:
                    # A slow upload holds the slot for as long as it lasts (minutes on a slow
                    # link). Waiting without a bound here ignored SIGTERM: the stop flag is
                    # only read at the next iteration boundary, so the process outlived the
                    # notice, was SIGKILLed, and neither epoch's files were ever written.
                    if stopping():
                        waiting, self._pending = self._pending, None
                        self._writing.hand(waiting, job)   # (after the one being written)
                        self._cond.notify_all()
                        break
                    self._cond.wait(0.5)
                    self.say_stuck()
            if waiting is None:
                if self._pending is not None:
                    self._drop(self._pending, f"{job.name} replaced it")
                self._pending = job
                self._cond.notify_all()
                return
        self._write_both_now(waiting, job, deadline())

    def _write_both_now(self, waiting: SaveJob, job: SaveJob, deadline: Deadline) -> None:
        """A stop came while ``waiting`` held the slot: write it, then ``job``, now (after the
        write under way: :mod:`trainer.write_order`), each waited for a tenth of the grace left
        (a hung disk's took it all, the stop's own save none: stop30); a push follows."""
        for one in (waiting, job):
            self.write_now(one, deadline, patience=0.1)
            one.done.set()

    def _drop(self, job: SaveJob, why: str) -> None:
        job.dropped = True
        job.done.set()
        self.dropped += 1
        logger.debug("%s not written: %s", job.name, why)

    def wait(self, job: SaveJob, deadline: Optional[float] = None) -> bool:
        """Wait until ``job`` was written and pushed (or dropped); False at ``deadline``."""
        left = None if deadline is None else max(0.0, deadline - self._clock())
        return job.done.wait(left)

    def write_now(self, job: SaveJob, deadline: Deadline = None,
                  patience: float = 1.0, listed: Optional[Flag] = None) -> int:
        """Write ``job`` now (a stop: complete at once, even while a slow upload runs), then
        ask for a push: its ticket for :meth:`wait_pushed`. An autosave of its name still
        waiting (due at the step a stop during the evaluation saves again) holds an older
        state: dropped, not written over it afterwards. With ``deadline`` (a stop's) written on
        a thread of its own (``job.ended``), waited for until ``patience`` of the time to it:
        a hung disk held a stop's save until its SIGKILL (train28; trainer.stop_save); a
        callable ``deadline`` is read again as the write waits behind another.
        ``listed``: the stop's listing of the run folder, which words the warning then."""
        with self._cond:
            if superseded(self._pending, job):
                self._drop(self._pending, f"{job.name} is written now")
                self._pending = None
        if deadline is None:
            self._write(job)
        else:
            job.ended = BackgroundThread(lambda: self._write(job, deadline),
                                         "trainer-stop-write").start().ended
            end = deadline_at(deadline)
            if not job.ended.wait(None if end is None else
                                  max(0.0, end - time.monotonic()) * patience):
                self.say_stuck(0.0, listed)
        return self.push_soon()

    def push_soon(self) -> int:
        """Ask for a push of the folder as it is (a write; the run's start); its ticket."""
        with self._cond:
            if self.drive is not None:       # a push counted without a Drive would never be done
                self._push_requested += 1
            self._cond.notify_all()
            return self._push_requested

    def wait_pushed(self, ticket: int, deadline: Deadline = None) -> bool:
        """Wait until a push that started after ``ticket`` was issued has finished (successful
        or not: see :meth:`verified`); False at ``deadline`` (a ``clock()`` value, or a callable
        read again every :data:`~trainer.stopping.STEP_S`: a signal during a stop's wait for
        its push moves it, and no signal handler can wake this wait)."""
        if self.drive is None:
            return True
        with self._cond:
            while self._push_done < ticket:
                end = deadline_at(deadline)
                left = None if end is None else end - self._clock()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(STEP_S if left is None else min(STEP_S, left))
            return True

    def verified(self, name: str) -> bool:
        """Whether this run's checkpoint ``name`` is known verified on Drive."""
        with self._cond:
            return name in self._verified_names

    def not_on_drive(self) -> list[str]:
        """This run's checkpoints that Drive does not hold as they are here, newest first
        (:func:`trainer.pushed.not_on_drive`): what a stop's line names (trainer.saving)."""
        if self.drive is None:
            return []
        with self._cond:   # (the folder looked at outside: a hung disk holds no lock)
            jobs = [j for j in (self._current, self._pending) if j is not None]
            state = dict(self._positions), dict(self._generation), dict(self._verified_gen)
        return pushed.not_on_drive(*state, set(self._left_out), jobs, self.out_dir,
                                   getattr(self.drive, "exclude", ()))

    def keep_local(self, keep: int) -> None:
        """Keep only the newest ``keep`` epoch files in the run folder, each older one deleted
        once settled with Drive (:mod:`trainer.local_retention`; 0: every one is kept)."""
        self._retention = LocalRetention(self.out_dir, keep, self.drive) if keep > 0 else None

    def protect(self, name: str) -> None:
        """Never let retention delete ``name`` on Drive (the checkpoint this run resumed
        from) until one of this run's own checkpoints is verified there: a resume then
        starts from that one, and ``name`` is an older checkpoint like any other."""
        with self._cond:
            self._until_newer.add(name)

    def close(self, deadline: Callable[[], Optional[float]] = lambda: None, *,
              push: bool = True) -> bool:
        """Finish the queued jobs, push once more (``push``), stop the thread.

        ``deadline()`` (a ``clock()`` value, or None for none) is asked again while waiting, so
        a stop requested meanwhile bounds the wait. Without ``push`` a waiting autosave is
        dropped. Returns False when the deadline came first; the thread then goes on in the
        background until the process exits."""
        with self._cond:
            if not push and self._pending is not None and self._pending.droppable:
                self._drop(self._pending, "the run stops")
                self._pending = None
            if push and self.drive is not None:
                self._push_requested += 1
            target = self._push_requested if self.drive is not None else 0
            self._stopping = True
            self._cond.notify_all()
            while ((self._thread.is_alive() and (self._pending is not None
                                                 or self._current is not None))
                   or (self._uploader is not None and self._uploader.is_alive()
                       and push and self._push_done < target)):
                end = deadline()
                left = 0.5 if end is None else min(0.5, end - self._clock())
                if left <= 0:
                    return False
                self._cond.wait(left)
                self.say_stuck()
        for thread in (self._thread, self._uploader):
            if thread is not None:
                end = deadline()
                thread.join(None if end is None else max(0.0, end - self._clock()))
        return not any(t is not None and t.is_alive() for t in (self._thread, self._uploader))

    # -- the threads
    def _loop(self) -> None:
        """The writing thread: each job's files, as soon as it is handed over."""
        while True:
            with self._cond:
                while self._pending is None and not self._stopping:
                    self._cond.wait()
                if self._pending is None:   # stopping, nothing left to write
                    self._writes_over = True
                    self._cond.notify_all()
                    return
                job, self._pending = self._pending, None
                self._current = job
                self._writing.hand(job)
                self._cond.notify_all()
            try:
                self._write(job)
            except Exception as exc:   # (its bookkeeping: out of here it ended this thread,
                # and the next save that cannot be dropped waited for it for good: trainatk47)
                if not job.written:
                    job.error, job.missing = exc, list(job.names)
                logger.error("could not finish the save of %s in %s: %s", ", ".join(job.names),
                             self.out_dir, exc)
            if self.drive is None and job.written:
                self._keep_local()              # (with Drive: after the push that verifies)
            with self._cond:
                self._current = None
                if job.written and self.drive is not None:
                    self._push_requested += 1          # a new checkpoint: mirror it
                    self._awaiting.append((self._push_requested, job))
                else:
                    job.done.set()
                self._cond.notify_all()

    def _write(self, job: SaveJob, deadline: Deadline = None) -> None:
        try:
            with self._writing.turn(job, deadline):   # after the earlier writes of its names
                self._write_files(job)
        except WriteStuck as exc:   # (a stop's grace ran out behind a write on a hung disk)
            job.error, job.missing = exc, list(job.names)
            logger.error("could not write %s in %s: %s", ", ".join(job.names), self.out_dir, exc)

    def say_stuck(self, after: Optional[float] = None, listed: Optional[Flag] = None) -> None:
        """Warn of a write under way for more than ``after`` seconds (:attr:`stuck_s`)."""
        self._writing.say_stuck(self.stuck_s if after is None else after, self.out_dir, listed)

    def _write_files(self, job: SaveJob) -> None:
        began = time.perf_counter()
        first = os.path.join(self.out_dir, job.name)
        done, run = 0, job.state.get("run")
        try:
            ckpt.save_checkpoint(job.state, first, metrics=job.metrics, saved=job.taken)
            for done, name in enumerate(job.names[1:], 1):
                ckpt.copy_checkpoint(first, os.path.join(self.out_dir, name))
            job.written = True
        except BaseException as exc:  # a full disk must not kill the thread; the run reports it
            job.error, job.missing = exc, job.names[done:]
            logger.error("could not write %s in %s: %s", ", ".join(job.missing), self.out_dir, exc)
            return
        finally:
            if job.written or not job.keep_failed:
                job.state = {}  # free the CPU copy now
        with self._cond:
            for name in job.names:
                self._positions[name] = job.position
                self._generation[name] = self._generation.get(name, 0) + 1
            self._upto, self._run = max(self._upto, job.position.epoch), run
            self._reached = max(self._reached or 0, job.position.iteration)
        side = ckpt.read_sidecar(first)
        with self._cond:
            self._md5s.update({n: side.md5 for n in job.names if side is not None and side.md5})
        if self.drive is not None and side is not None and side.md5:
            for name in job.names:  # the copies have the same bytes
                self.drive.known_md5(os.path.join(self.out_dir, name), side.md5)
        logger.debug("wrote %s in %.2f s", ", ".join(job.names), time.perf_counter() - began)
        if AUTOSAVE_NAME.match(job.name):
            self._prune_autosaves(job.position.iteration)

    def _prune_autosaves(self, written: int) -> None:
        """The newest :data:`LOCAL_AUTOSAVES` up to iteration ``written`` stay, and those a push
        under way may be sending (:func:`trainer.autosaves.prune`)."""
        with self._cond:
            spare = set(self._sending)
        autosaves.prune(self.out_dir, written, LOCAL_AUTOSAVES, spare)

    def _keep_local(self) -> None:
        """train.keep_local: older epoch files go (those settled with Drive, when it is set)."""
        if self._retention is None:
            return
        with self._cond:
            upto, run, protect = self._upto, self._run, self._protect | self._until_newer
        try:
            self._retention.apply(upto=upto, run=run, protect=protect)
        except Exception as exc:   # (a read-only folder): the files stay, training goes on;
            # never out of the thread (the uploader's end would end every later upload)
            logger.warning("could not remove an older epoch file from %s (train.keep_local): "
                           "%s", self.out_dir, exc)
