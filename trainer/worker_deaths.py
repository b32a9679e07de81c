"""A DataLoader worker that dies (the kernel's OOM killer: "DataLoader worker (pid …) is
killed by signal: Killed.") stops the run as a SIGTERM would: the state saved at the
iteration's end, then one line that says why and what to change, exit 1.

torch's SIGCHLD handler raised that error wherever the training thread was (inside
``backward()``, between two parameters' updates), a traceback, and the run lost what it had
trained since its last save (up to ``save_minutes``, or the epoch). Here the handler's error
only asks for the stop (:data:`trainer.stopping.WORKER_DEATH`), and the step under way ends
before the save policy sees it (:class:`trainer.saving.Checkpointer`, at the iteration's end,
on every rank at once). A death the loader finds first, waiting for the dead worker's batch
("exited unexpectedly"), is at an iteration boundary too: :func:`guarded` saves there (one
process; with several, that rank ends in one line, and rank 0 saves alone: trainer.peer_loss).
A new run's first batch lost saves nothing (no step's state), and an evaluation's loader is
:func:`watched`: a death there saves the epoch trained, as a SIGTERM then does. A worker's
``MemoryError`` (the same shortage without the kernel's kill) is taken as a death.
"""
from __future__ import annotations

import logging
import re
import signal
import threading
import time
from typing import Any, Callable, Iterable, Iterator, Optional

from trainer import distributed, unreadable
from trainer.errors import DataError, TrainingInterrupted
from trainer.stopping import PEER_LOSS, UNREADABLE, WORKER_DEATH, StopFlag, StopRequested, \
    WaitBroken, start_unbroken, untrained

logger = logging.getLogger(__name__)

#: Words of torch's errors for a worker that died (its SIGCHLD handler; the loader's wait).
_DEATHS = ("is killed by signal", "exited unexpectedly")


class _Epoch:
    """What one thread's guarded epoch (or evaluation) holds. One per process, two fits in
    two threads shared it: the first epoch's end shut down the other's workers (that epoch
    ended early, without a word), and a death asked the other run to stop (edges40)."""

    def __init__(self) -> None:
        self.flag: Optional[StopFlag] = None   # the run's, while its batches are read
        self.fetching = False   # its thread waits for a batch (a boundary; main thread only)
        self.current: Any = None   # its loader iterator (its workers)
        self.outer: Any = None   # an evaluation's: the guarded epoch's iterator around it
        self.thread = threading.get_ident()   # (a generator may be closed in another)


_local = threading.local()
#: The epochs being read, by thread: the SIGCHLD handler (in the main thread) finds the one
#: whose worker died. (No lock: the handler may run while the main thread would hold it.)
_epochs: dict[int, _Epoch] = {}


def _mine() -> _Epoch:
    """This thread's epoch."""
    epoch = getattr(_local, "epoch", None)
    if epoch is None:
        epoch = _local.epoch = _Epoch()
    return epoch


def _reading(epoch: _Epoch) -> None:
    """Note ``epoch`` as read (its flag set) or no longer (none)."""
    if epoch.flag is not None:
        _epochs[epoch.thread] = epoch
    else:
        _epochs.pop(epoch.thread, None)


def _whose(words: str) -> Optional[_Epoch]:
    """The epoch read now whose worker torch's ``words`` name (by pid); the one read, where
    only one is (a process's one fit, as before: whatever loader the worker was of)."""
    epochs = list(_epochs.values())
    named = re.search(r"\(pid(?:\(s\))? ([\d, ]+)\)", words)
    pids = {int(p) for p in re.findall(r"\d+", named.group(1))} if named else set()
    for epoch in epochs:
        for it in (epoch.current, epoch.outer):
            if pids & {w.pid for w in getattr(it, "_workers", None) or ()}:
                return epoch
    return epochs[0] if len(epochs) == 1 else None


def is_death(exc: BaseException) -> bool:
    """Whether ``exc`` is torch's error for a DataLoader worker that died."""
    return isinstance(exc, RuntimeError) and any(w in str(exc) for w in _DEATHS)


#: How long a loader's broken pipe waits for the worker behind it to be seen dead: its
#: socket closes as it dies, a little before its exit can be reaped (a busy machine).
EXIT_WAIT_S = 5.0


def _exited(it: Any) -> Optional[str]:
    """torch's words for a worker of the loader iterator ``it`` that ended, waiting for one
    to end (:data:`EXIT_WAIT_S` at most, on the workers' sentinels: no polling); None when
    none did. A batch read from a worker that crashed while it sent it raised
    ConnectionResetError before the worker's exit could be reaped: torch's own look found
    no death, and the run ended in a traceback (the full suite under load)."""
    from multiprocessing.connection import wait

    workers = [w for w in getattr(it, "_workers", None) or () if hasattr(w, "sentinel")]
    if not workers:
        return None
    ready = wait([w.sentinel for w in workers], timeout=EXIT_WAIT_S)
    for w in workers:
        if w.sentinel in ready:
            # (its end of the sentinel closed as it exited, a moment before its exit
            # status can be reaped: poll() then saw none; join waits for it)
            w.join(EXIT_WAIT_S)
        code = w.exitcode
        if isinstance(code, int) and code < 0:
            return (f"DataLoader worker (pid {w.pid}) is killed by signal: "
                    f"{signal.strsignal(-code) or -code}.")
        if isinstance(code, int) and code > 0:
            return f"DataLoader worker (pid(s) {w.pid}) exited unexpectedly"
    return None


def _death_behind(exc: BaseException, it: Any = None) -> Optional[str]:
    """torch's error for a worker that died, when one did behind ``exc`` (a batch whose
    tensors the dead worker shared through a socket: ConnectionResetError, EOFError), or the
    words of a MemoryError while a batch was read (a worker's, re-raised here by torch: the
    OOM killer's shortage without its SIGKILL; it ended the run with a traceback, unsaved)."""
    if is_death(exc):
        return str(exc)
    if isinstance(exc, MemoryError):
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        first = lines[0].rstrip(".") if lines else "MemoryError while a batch was read"
        return first if len(lines) < 2 else f"{first}: {lines[-1]}"
    try:
        from torch.utils.data._utils.signal_handling import _error_if_any_worker_fails

        _error_if_any_worker_fails()
    except RuntimeError as behind:
        return str(behind) if is_death(behind) else None
    except ImportError:
        pass
    if isinstance(exc, (ConnectionError, EOFError)) and it is not None:
        return _exited(it)   # (the worker's pipe broke as it died: wait for its exit)
    return None


def _with_signal(words: str, it: Any) -> str:
    """torch's words as its SIGCHLD handler has them where the loader's own look at its
    workers came first ("DataLoader worker (pid(s) N) exited unexpectedly", as it does on a
    busy machine): the dead worker's exit code names the signal, and a crash of its own
    (SIGSEGV) is advised otherwise than the OOM killer's SIGKILL (:func:`_advice`)."""
    if "exited unexpectedly" not in words:
        return words
    pids = {int(p) for p in re.findall(r"\d+", words.split("exited unexpectedly")[0])}
    for w in getattr(it, "_workers", None) or ():
        code = getattr(w, "exitcode", None)
        if isinstance(code, int) and code < 0 and w.pid in pids:
            return (f"DataLoader worker (pid {w.pid}) is killed by signal: "
                    f"{signal.strsignal(-code) or -code}.")
    return words


def advice(stop: StopFlag) -> str:
    """What a stop's line adds for a worker's death: torch's words and what to change ("" for
    a signal). Called by every rank at a stop (one collective): the rank whose worker died
    holds torch's words, and rank 0, which says the line, had none (`(: out of memory? …`)."""
    # (A loss after the death, the shortage's too: the death's words, not the rank's name.)
    detail = stop.before[1] if stop.before is not None else stop.detail
    details = [d for d in distributed.all_gather_object(detail) if d]
    if stop.signum == UNREADABLE:   # (a file of the dataset: trainer.unreadable)
        return unreadable.advice(details[0] if details else None)
    return _advice(details[0] if details else None) if stop.worker_died else ""


#: torch's words for a worker killed by a crash of its own (strsignal's), not by the OOM
#: killer (``Killed``) nor for want of shared memory (``Bus error``, which torch words).
_CRASHES = ("Segmentation fault", "Aborted", "Illegal instruction", "Floating point exception")


def _advice(detail: Optional[str], stop: Optional[StopFlag] = None) -> str:
    if stop is not None and stop.signum == UNREADABLE:
        return unreadable.advice(detail)
    died = str(detail or "a DataLoader worker died").strip().rstrip(".")
    if any(f"is killed by signal: {crash}" in died for crash in _CRASHES):
        # (Memory settings change nothing there; the resume reads that batch again.)
        return (f" ({died}: a crash while a batch was read, not memory (a damaged image, or a "
                "bug of the library that reads it): if it comes again at the same iteration, "
                "that batch's images are the cause)")
    return (f" ({died}: out of memory? lower data.workers, train.batch_size or data.cache "
            "before you resume)")


def unguarded_line(exc: BaseException, what: str) -> Optional[str]:
    """The one line for ``exc`` when it is a worker's death in a loader of no training run
    (``trainer eval``: nothing to save; it was torch's traceback), ``what`` naming what the
    workers read; None for any other error."""
    words = _death_behind(exc) if isinstance(exc, (RuntimeError, MemoryError)) else None
    if words is None:
        return None
    died = words.strip().rstrip(".")
    if any(f"is killed by signal: {crash}" in died for crash in _CRASHES):
        return (f"a DataLoader worker crashed while {what} were read ({died}: not memory; a "
                "damaged image, or a bug of the library that reads it)")
    verb = "ran out of memory" if isinstance(exc, MemoryError) else "died"
    return (f"a DataLoader worker {verb} while {what} were read ({died}: out of memory? lower "
            "data.workers (0 reads them in this process) and run it again)")


def release() -> None:
    """End the guarded epoch's loader workers (once one died: the others hold memory, and
    the dead one's pid, still registered, made torch's handler raise at any later child's
    end, in a notebook long after the run; a kept traceback keeps the loader alive)."""
    shut_down(_mine().current)


def shut_down(it: Any) -> None:
    """End the workers of the loader iterator ``it`` (one without workers: nothing): torch's
    shutdown, then a SIGKILL for each it left running. One hung on a read (a mount that
    stopped answering) outlived torch's join and its SIGTERM, which a trainer's worker
    ignores while its parent lives (trainer.data.worker_signals), and so did every worker of
    a shutdown a second Ctrl-C cut: held for good in the notebook that ran them
    (attacksvc39)."""
    shutdown = getattr(it, "_shutdown_workers", None)
    if shutdown is None:
        return
    try:
        shutdown()
    finally:
        end_workers(it, 0.0)


def _in_main() -> bool:
    """Whether this is the main thread, where signal handlers run. A run trained in another
    thread (a notebook's background fit) finds the death in its own wait: raised from the
    handler, torch's error landed in the main thread (the notebook's kernel, the caller)."""
    return threading.current_thread() is threading.main_thread()


def _wrap_handler() -> None:
    """Put our SIGCHLD handler around torch's (set as a loader's first workers started),
    once; the main thread alone may."""
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGCHLD)
    if getattr(previous, "_trainer_deaths", False) or not callable(previous):
        return

    def handler(signum: int, frame: Any) -> None:
        try:
            previous(signum, frame)
        except RuntimeError as exc:
            epoch = _whose(str(exc)) if is_death(exc) else None
            if epoch is None or epoch.flag is None or epoch.fetching:
                raise   # (outside a guarded epoch, as torch does; between steps: saved there)
            epoch.flag.request(WORKER_DEATH, detail=str(exc))

    handler._trainer_deaths = True  # type: ignore[attr-defined]
    signal.signal(signal.SIGCHLD, handler)


def _alone() -> bool:
    """Whether this process trains alone (no other rank waits on its steps)."""
    return not distributed.is_initialized() or distributed.dist.get_world_size() == 1


def end_workers(it: Any, waited: float) -> None:
    """SIGKILL the workers of the loader iterator ``it``: a signal's stop came while the
    training thread had waited ``waited`` s for a batch, which a hung worker may never send.
    torch's own shutdown gave such a worker 10 s of the grace (a join, a SIGTERM that a
    worker ignores while its parent lives: trainer.data.worker_signals, a join again). Their
    pids leave torch's watch first: its SIGCHLD handler raised for these deaths."""
    workers = [w for w in getattr(it, "_workers", None) or () if hasattr(w, "kill")]
    if waited >= HUNG_WARN_S:
        logger.warning("the training thread had waited %.0f s for its next batch when the stop "
                       "came: a DataLoader worker hung (an image on a mount that stopped "
                       "answering?); its workers are ended, the state of the last step is "
                       "saved", waited)
    try:
        from torch.utils.data._utils import signal_handling

        if getattr(it, "_worker_pids_set", False):
            signal_handling._remove_worker_pids(id(it))
            it._worker_pids_set = False
    except (ImportError, AttributeError, RuntimeError, ValueError):
        pass
    for w in workers:
        if w.is_alive():
            w.kill()
    for w in workers:
        w.join(EXIT_WAIT_S)


#: A stop that came after the training thread had waited this long for a batch says so.
HUNG_WARN_S = 5.0
#: A batch awaited this long, and no stop asked for, is said in a warning: nothing else ends
#: that wait, and the run had sat still with no word of why.
HUNG_NOTE_S = 600.0


#: A stop that no signal's handler could break the wait for a batch with (one asked before
#: the wait began; any under torchrun, where a rank's stop is agreed at the step's end) gives
#: the batch this long at most (:func:`break_after`), then breaks the wait: a batch that
#: comes sooner stops the run at that step's end as ever; a hung worker's never does.
BREAK_AFTER_S = 5.0
#: How often a wait's watch looks for a stop asked during it (under torchrun).
LOOK_S = 0.25


def break_after(stop: StopFlag) -> float:
    """Seconds a stop waits for a batch before it breaks the wait (:data:`BREAK_AFTER_S`, a
    quarter of the grace at most: the save needs the rest)."""
    return min(BREAK_AFTER_S, stop.grace_s / 4)


def _asked(stop: StopFlag) -> bool:
    """Whether a stop is asked that a batch's wait may be broken for (a signal's; a death's
    or a lost rank's stop has a way of its own)."""
    return stop.is_set() and stop.signum not in (WORKER_DEATH, PEER_LOSS, UNREADABLE)


class _Watch:
    """The training thread's wait for one batch, watched from a thread of its own (ended with
    the wait: none outlives it, as one per epoch did in a kept traceback). A batch awaited
    :data:`HUNG_NOTE_S` with no stop is said in a warning (a hung DataLoader worker: the
    progress bar only stops); a stop that waited :func:`break_after` for the batch breaks the
    wait (:meth:`StopFlag.nudge`), which no signal's handler did: the stop was asked before
    the wait began, or under torchrun."""

    def __init__(self, stop: StopFlag, began: float):
        self.stop, self.began = stop, began
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="trainer-batch-wait", daemon=True)

    def _run(self) -> None:
        noted = False
        while True:
            now, stop = time.monotonic(), self.stop
            ends = [] if noted else [self.began + HUNG_NOTE_S]
            if _asked(stop):
                ends.append(max(self.began, stop.at or now) + break_after(stop))
            else:
                ends.append(now + LOOK_S)   # (a stop asked during the wait, under torchrun)
            if self.done.wait(max(0.0, min(ends) - now)):
                return
            now = time.monotonic()
            if _asked(stop) and now >= max(self.began, stop.at or now) + break_after(stop):
                stop.nudge()
                return
            if not noted and now - self.began >= HUNG_NOTE_S and not stop.is_set():
                noted = True
                logger.warning("the training thread has waited %.0f s for its next batch: its "
                               "data loading hung? (a DataLoader worker, an image read from a "
                               "mount that stopped answering); a SIGTERM or Ctrl-C saves the "
                               "state of the last step and stops", now - self.began)


def _batches(loader: Iterable, stop: StopFlag, died: Callable[..., None],
             at_once: bool = True) -> Iterator:
    """``loader``'s batches, its workers started here (a death then is one while fetching).
    A worker's death seen while a batch is awaited asks ``stop`` for the stop, then
    ``died()`` (which raises; when it returns, torch's error goes on). A signal's stop there
    ends the wait (at once where ``at_once``: no other rank waits on this one's step; else
    once the batch kept it :func:`break_after`): its workers are ended, then
    ``died(broken=True)``."""
    mine, it = _mine(), None
    while True:
        try:
            mine.fetching = _in_main()   # (else the handler's raise lands in the main thread)
            asked = stop.is_set()   # (a stop asked before this wait: the step after it saves)
            if it is None:
                it = mine.current = iter(loader)
                _wrap_handler()
            began, watch = time.monotonic(), None
            try:
                if mine.fetching:   # (in the try: an interrupt as it starts cancels it too)
                    stop.wait_began(at_once)
                    watch = _Watch(stop, began)   # (it breaks the wait no handler did)
                    start_unbroken(watch.thread)
                if stop.breaks_wait and not asked and _asked(stop):
                    # A signal as this wait began: its handler found none to break yet, and
                    # the flag alone waited for the end of a step a hung batch never let come.
                    raise WaitBroken(stop.name)
                batch = next(it)
            finally:
                if watch is not None:
                    watch.done.set()
                stop.wait_ended()   # (a nudge as it ends may break it still: one step less)
            mine.fetching = False   # (a death from here on: the step's end saves)
        except StopIteration:
            return
        except WaitBroken:
            mine.fetching = False
            end_workers(it, time.monotonic() - began)
            died(broken=True)
            raise
        except DataError as exc:   # (a file that cannot be read: saved as for a death)
            mine.fetching = False
            if not unreadable.met(stop, exc):
                raise
            shut_down(mine.current)   # (idle from here, kept alive by the error's traceback)
            died()
            raise
        except (RuntimeError, OSError, EOFError, MemoryError) as exc:
            mine.fetching = False
            words = _death_behind(exc, it)
            if words is None:
                raise
            stop.request(WORKER_DEATH, detail=stop.detail or _with_signal(words, it))
            died()
            raise
        yield batch


def guarded(loader: Iterable, run: Any) -> Iterator:
    """``loader``'s batches for one epoch of ``run`` (:class:`trainer.engine.Run`): a worker's
    death during a step asks ``run.stop`` for a stop instead of raising in it. One seen while
    the training thread waits for a batch (an iteration boundary) saves the state of the
    last step there and stops (:meth:`trainer.saving.Checkpointer.stop_at`) when the process
    trains alone; with other ranks (each waiting in its step's collective) this rank ends in
    one line (:class:`~trainer.errors.TrainingInterrupted`, exit 1), the others with it."""
    stop: StopFlag = run.stop
    mine = _mine()   # (its own: a generator may be closed in another thread, the GC's)

    def died(broken: bool = False) -> None:
        alone = run.info.world_size == 1
        if broken and not alone and not run.info.is_main:
            shut_down(mine.current)
            raise TrainingInterrupted(_ended_text(run, stop), exit_code=stop.exit_code)
        if (broken or stop.signum == UNREADABLE) and not alone and run.info.is_main:
            # Rank 0's batch hung (or could not be read): the others wait in this step's
            # collectives, or end (their line). Its state is the last step's: saved with no
            # collective, as for a loss.
            distributed.lose()
            alone = True
        if alone and run.state.pos.iteration == getattr(run.checkpointer, "began", 0):
            # No step of this run: "saved at epoch 0, iteration 0" (the untrained network),
            # or a resumed run's state saved again over the file it was read from.
            shut_down(mine.current)
            raise TrainingInterrupted(f"stopped by {stop.name} {untrained(run)}{advice(stop)}",
                                      exit_code=stop.exit_code) from None
        if alone:
            if broken:   # (an epoch's end, a stop asked then: its files hold that state)
                run.checkpointer.stop_saved(run, run.state.pos)
            run.checkpointer.stop_at(run, run.state.pos)   # (it releases the workers)
            return
        shut_down(mine.current)
        # The other ranks wait in this step's collectives (no stop can be agreed): this
        # rank ends, and they with it (torchrun); rank 0 saves alone (trainer.peer_loss).
        raise TrainingInterrupted(
            f"stopped by {stop.name} at {run.state.pos.label} on rank {run.info.rank}, "
            "while it waited for its batch: the other ranks were in the step already, so "
            "rank 0 saves alone what it can, its line says what; --resume auto goes on from "
            f"the newest checkpoint{_advice(stop.detail, stop)}", exit_code=1) from None

    mine.flag = stop
    _reading(mine)
    unreadable.note(getattr(run, "cfg", None))
    try:
        yield from _batches(loader, stop, died, at_once=_alone())
    except BaseException:
        # Its workers end now, however it ended: closed before its end (a stop's error), or
        # an error of the loader's own (a dataset's, re-raised from a worker), whose
        # traceback, kept (a notebook's last one), kept them running (attacksvc39).
        shut_down(mine.current)
        raise
    finally:
        mine.flag, mine.fetching, mine.current = None, False, None
        _reading(mine)


def _ended_text(run: Any, stop: StopFlag) -> str:
    """The line of a rank other than 0 whose wait for a batch a stop broke under torchrun."""
    return (f"stopped by {stop.name} at {run.state.pos.label} on rank {run.info.rank}: its "
            f"batch did not come within {break_after(stop):g} s of the stop (a DataLoader "
            "worker hung? an image read from a mount that stopped answering), and no stop can "
            "be agreed without it: this rank ends, and rank 0 saves alone the state of the "
            "last step, its line says what; --resume auto goes on from the newest checkpoint")


def watched(loader: Iterable, stop: StopFlag) -> Iterator:
    """``loader``'s batches in an evaluation of a training run: a worker's death asks ``stop``
    for the stop and ends the evaluation (:class:`~trainer.stopping.StopRequested`), and the
    run saves the epoch it trained as for a SIGTERM then. torch's error ended the run there,
    the whole epoch trained lost, as no save comes before the evaluation's end (attackwd30)."""
    mine = _mine()
    around = mine.flag, mine.current, mine.outer   # (an evaluation inside a guarded epoch)

    def died(broken: bool = False) -> None:
        shut_down(mine.current)
        raise StopRequested(stop.name) from None

    mine.flag, mine.current, mine.outer = stop, None, around[1]
    _reading(mine)
    try:
        yield from _batches(loader, stop, died, at_once=True)   # (rank 0's alone: not a step)
    finally:
        if stop.signum == WORKER_DEATH:
            shut_down(mine.current)   # (while its errors are ours: the GC's, torch's came)
        (mine.flag, mine.current, mine.outer), mine.fetching = around, False
        _reading(mine)
