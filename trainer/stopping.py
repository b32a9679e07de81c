"""SIGTERM, SIGINT and SIGHUP: note the request; the loop saves at the next iteration boundary
and exits.

A handler only sets a flag: an exception raised from a signal handler can land inside code that
swallows exceptions (a logging handler, a plot) and be lost. The loop checks the flag after
every iteration (on every rank at once), the evaluation after every batch, and the final
flush while it waits. A second signal of any of them stops at once, without a save; a SIGHUP
is never that second one (systemd sends it right after its SIGTERM).

SIGHUP is what a run started from a terminal gets when the terminal goes (an SSH session to a
spot VM that drops): by default it killed the run with nothing saved. It is handled like
SIGTERM, except where it is ignored already (``nohup``, ``setsid``-style launchers): then the
run goes on, as the user asked.

A stop no signal asked for (a DataLoader worker's death, a lost rank, an unreadable file)
has no SIGKILL coming:
its waits on Drive (:meth:`StopFlag.until`) last as the final flush's do, bounded by a mount
that stopped answering and by :data:`UNSIGNALLED_WAIT_S`, not by the grace; a signal during
them cuts what is left to the signal's grace at once (each wait reads the deadline again at
every step of :data:`STEP_S`: :func:`wait_for`). Under torchrun the grace is at most
:data:`TORCHRUN_GRACE_S` (:func:`bounded_grace`).
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import logging
from typing import Any, Callable, Iterator, Optional, Union

from trainer.errors import TrainingInterrupted

logger = logging.getLogger(__name__)

_NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT", signal.SIGHUP: "SIGHUP"}
#: The shell's convention: 128 + the signal number.
EXIT_CODES = {signal.SIGTERM: 143, signal.SIGINT: 130, signal.SIGHUP: 129}
#: No signal the run is sent: a DataLoader worker died (:mod:`trainer.worker_deaths`); the
#: stop is asked as for one, and the run ends with exit 1 once its state is saved.
WORKER_DEATH = int(signal.SIGCHLD)
#: Nor here: another rank of a torchrun job was lost (:mod:`trainer.peer_loss`); rank 0 saves
#: alone, and every rank ends with exit 1.
PEER_LOSS = int(signal.SIGPIPE)
#: Nor here: a file of the dataset could not be read (:mod:`trainer.unreadable`); saved as
#: for a worker's death, exit 1.
UNREADABLE = int(signal.SIGUSR2)
#: Nor here: another trainer took this run's lease on drive.logs over (:mod:`trainer.lease`):
#: the state is saved here, nothing more goes to Drive, and the run ends with exit 1.
LEASE_LOST = int(signal.SIGURG)

#: The longest a stop no signal asked for waits for Drive (its push, its copy sent from
#: elsewhere): nothing will SIGKILL the process, and an unattended cell that ended at the
#: grace left the newest state off Drive, but a push that does not end must not hold it for
#: good. 15 min sends a full-width checkpoint (about 70 MB: model, EMA, optimizer) and the
#: epoch files queued before it over a link a hundred times slower than Colab's usual one;
#: a link slower still is as good as gone, and the line gives the push to run.
UNSIGNALLED_WAIT_S = 900.0

#: Seconds between two reads of a deadline while a stop waits (:func:`wait_for`): a signal's
#: handler cannot wake a wait, so a signal during it cuts the wait short within this.
STEP_S = 0.1

#: torchrun SIGKILLs its ranks 30 s after the SIGTERM it sends them (torch.distributed.elastic's
#: ``PContext.close(timeout=30)``); a stop's save there gets 25 s at most, leaving 5 s for the
#: line, the local copy's advice and the process's end (2 to 4 s measured: ddp31).
TORCHRUN_GRACE_S = 25.0

#: A deadline as a stop's waits take it: a ``time.monotonic()`` value, None (none), or a
#: callable giving one, read again at every step of the wait.
Deadline = Union[None, float, Callable[[], Optional[float]]]


def deadline_at(deadline: Deadline) -> Optional[float]:
    """``deadline``'s value now."""
    return deadline() if callable(deadline) else deadline


def wait_for(flag: "threading.Event | object", deadline: Deadline) -> bool:
    """Wait until ``flag`` (an Event, or a Flag: anything with ``wait(timeout)``) is set or
    ``deadline`` passed, reading ``deadline`` again every :data:`STEP_S`; whether it is set."""
    while True:
        end = deadline_at(deadline)
        left = None if end is None else end - time.monotonic()
        if left is not None and left <= 0:
            return bool(flag.wait(0))   # type: ignore[attr-defined]
        if flag.wait(STEP_S if left is None else min(STEP_S, left)):   # type: ignore[attr-defined]
            return True


def under_torchrun() -> bool:
    """Whether torchrun (torch.distributed.elastic's agent) started this process."""
    return bool(os.environ.get("TORCHELASTIC_RUN_ID"))


def bounded_grace(grace_s: float) -> float:
    """``grace_s``, at most :data:`TORCHRUN_GRACE_S` under torchrun (said once, at the start,
    by rank 0): past it the launcher's SIGKILL cut off the stop's line and the local copy's
    advice."""
    if not under_torchrun() or grace_s <= TORCHRUN_GRACE_S:
        return grace_s
    if os.environ.get("RANK", "0") == "0":
        logger.warning("train.grace_seconds is %g s, but under torchrun a stop's save gets %g s "
                       "at most: torchrun SIGKILLs its ranks 30 s after its SIGTERM, and the "
                       "stop's line must come before that", grace_s, TORCHRUN_GRACE_S)
    return TORCHRUN_GRACE_S


def handled() -> tuple[int, ...]:
    """The signals a stop is asked with here: SIGTERM, SIGINT, and SIGHUP unless it is
    ignored (started under ``nohup``: the user asked the run to outlive its terminal)."""
    return tuple(s for s in _NAMES
                 if s != signal.SIGHUP or signal.getsignal(s) is not signal.SIG_IGN)


class StopRequested(Exception):
    """Raised inside evaluation to leave it early; the loop turns it into a stop save."""


class WaitBroken(BaseException):
    """Raised by a signal's handler in the main thread where it waits for what may never come
    (:attr:`StopFlag.breaks_wait`: a batch a hung DataLoader worker holds); a BaseException,
    so that no ``except Exception`` of the code waiting (torch's) takes it."""


class StopFlag:
    """Whether (and when) a stop was asked for; ``grace_s`` bounds the save and upload."""

    def __init__(self, grace_s: float):
        self.configured_s = grace_s          # train.grace_seconds as set
        self.grace_s = bounded_grace(grace_s)
        self.signum: Optional[int] = None
        self.at: Optional[float] = None     # time.monotonic() of the first signal
        self.detail: Optional[str] = None   # what asked for it, beyond its name (torch's error)
        self.signalled = False              # a signal of :func:`handled` came (not a request;
                                            # nor a SIGHUP: it is never the second)
        self._first: Optional[int] = None   # that signal
        self.signal_at: Optional[float] = None   # time.monotonic() of that signal (or of a
                                                 # SIGHUP under torchrun: a SIGKILL follows)
        #: ``(signum, detail)`` of the stop a loss (:meth:`lose_peer`) came after: its clock
        #: and a worker's death (its words, what to change) stay in the line.
        self.before: Optional[tuple[int, Optional[str]]] = None
        #: Set while the main thread waits for a loader's batch (:mod:`trainer.worker_deaths`):
        #: a signal then raises :class:`WaitBroken` there. The flag alone is read at the next
        #: iteration's end, which a worker that hung (an image on a mount that stopped
        #: answering) never let come: the run outlived its grace, its line never said, and the
        #: launcher's SIGKILL lost every step since the last save (attacktrain33).
        self.breaks_wait = False
        #: Set while the main thread waits for a loader's batch, whether or not a signal
        #: breaks that wait at once: :meth:`nudge` breaks it from another thread.
        self.waiting = False
        self._nudged = False      # the next handled signal is :meth:`nudge`'s own
        self._handling = False    # our handlers are installed (:meth:`installed`)
        self._lock = threading.Lock()   # the wait's marks against a nudge's signal

    def wait_began(self, breaks: bool) -> None:
        """The main thread waits for a batch now; ``breaks``: a signal ends the wait at once."""
        with self._lock:
            self.waiting, self.breaks_wait = True, breaks

    def wait_ended(self) -> None:
        """The main thread's wait for a batch ended (a nudge from here on breaks nothing)."""
        with self._lock:
            self.waiting = self.breaks_wait = False

    def nudge(self) -> bool:
        """Break the main thread's wait for a batch from another thread (a stop asked before
        the wait, or one under torchrun, that no handler could break at once: the batch a
        hung DataLoader worker holds never comes): our own SIGTERM to the main thread, which
        the handler takes for no second signal. Whether it was sent (the wait still on)."""
        with self._lock:   # (a wait that ended, or handlers put back, take no signal of ours)
            if not (self.waiting and self._handling):
                return False
            self._nudged = True
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGTERM)
            return True

    def is_set(self) -> bool:
        return self.signum is not None

    def request(self, signum: int = signal.SIGTERM, detail: Optional[str] = None) -> None:
        """Ask for a stop as the signal ``signum`` would (tests, callbacks)."""
        if self.signum is None:
            self.signum, self.at, self.detail = signum, time.monotonic(), detail

    def lose_peer(self, who: str) -> None:
        """Stop for the loss of ``who`` (``"rank 1"``), over any stop asked before (its clock
        kept: a launcher's SIGTERM before it set the grace's start)."""
        if self.signum not in (None, PEER_LOSS) and self.before is None:
            self.before = (self.signum, self.detail)
        self.signum, self.detail = PEER_LOSS, who
        self.at = time.monotonic() if self.at is None else self.at

    def check(self) -> None:
        """Raise :class:`StopRequested` when a stop was asked for (evaluation loops)."""
        if self.signum is not None:
            raise StopRequested(self.name)

    @property
    def name(self) -> str:
        if self.signum == WORKER_DEATH:
            return "a DataLoader worker's death"
        if self.signum == PEER_LOSS:
            return f"the loss of {self.detail or 'another rank'}"
        if self.signum == UNREADABLE:
            from trainer.unreadable import what

            return what(self.detail)
        if self.signum == LEASE_LOST:   # (a take-over, or held when first reached: no take-over)
            from trainer.lease_claims import stop_name

            return stop_name(self.detail)
        return _NAMES.get(self.signum, f"signal {self.signum}")

    @property
    def since(self) -> str:
        """What the stop's seconds count from, as lines say it: "after the signal" where
        there was one, else after the death or the loss that asked for the stop (the first
        of them: a loss after a signal keeps the signal's clock)."""
        first = self.before[0] if self.before is not None else self.signum
        if first == WORKER_DEATH:
            return "the worker's death"
        if first in (PEER_LOSS, LEASE_LOST):
            return self.name
        if first == UNREADABLE:
            return "the failed read"
        return "the signal"

    @property
    def worker_died(self) -> bool:
        """Whether a DataLoader worker's death asked for this stop (a loss after it too)."""
        return (self.before or (self.signum,))[0] == WORKER_DEATH

    @property
    def unsignalled(self) -> bool:
        """Whether no signal is behind this stop (a worker's death, a lost rank; none since,
        a SIGHUP but under torchrun): nothing will SIGKILL the process, and its waits on
        Drive outlast the grace."""
        first = self.before[0] if self.before is not None else self.signum
        return (first in (WORKER_DEATH, PEER_LOSS, UNREADABLE, LEASE_LOST)
                and self.signal_at is None)

    @property
    def grace_text(self) -> str:
        """``train.grace_seconds (25 s)``, or ``(25 s under torchrun)`` where it was bounded."""
        under = " under torchrun" if self.configured_s > self.grace_s == TORCHRUN_GRACE_S \
            else ""
        return f"train.grace_seconds ({self.grace_s:g} s{under})"

    def until(self, hung: Callable[[], Optional[float]] = lambda: None) -> Optional[float]:
        """When a stop's waits on Drive end (``time.monotonic()``; None: no stop asked): the
        grace after the signal, where one came (before the stop, or during these waits: read
        again at each step, the wait then shrinks at once); else :data:`UNSIGNALLED_WAIT_S`
        after the stop, or ``hung()`` (when a folder waited on stopped answering, as the
        final flush's wait ends: :meth:`trainer.final_wait.FinalWait.deadline`) if sooner."""
        if self.at is None:
            return None
        if not self.unsignalled:
            return (self.signal_at or self.at) + self.grace_s
        ends = [self.at + UNSIGNALLED_WAIT_S, hung()]
        return min(e for e in ends if e is not None)

    @property
    def exit_code(self) -> int:
        return 1 if self.signum in (WORKER_DEATH, PEER_LOSS, UNREADABLE, LEASE_LOST) else \
            EXIT_CODES.get(self.signum, 143)

    @property
    def deadline(self) -> Optional[float]:
        """The grace's end after the stop was asked (``time.monotonic()``; None: no stop
        asked): by which the process must be gone after a signal; what the stop's save gives
        a disk (half of it, then elsewhere too). Its waits on Drive: :meth:`until`."""
        return None if self.at is None else self.at + self.grace_s

    @contextlib.contextmanager
    def installed(self) -> Iterator["StopFlag"]:
        """Handle :func:`handled` signals while the body runs (only the main thread can)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return

        def handler(signum, frame):
            if self._nudged and signum == signal.SIGTERM:
                # Ours (:meth:`nudge`): the stop was asked already; its wait is broken.
                self._nudged = False
                if self.waiting:
                    self.waiting = self.breaks_wait = False
                    raise WaitBroken(self.name)
                return
            if not self.signalled or signum == signal.SIGHUP or \
                    (signum == self._first and under_torchrun()):
                # The first signal, even where a stop is under way already without one (a
                # worker's death; a lost rank, whose launcher sends the other ranks SIGTERM
                # 0.1 s after its end): that one's save goes on, its cause named. Taken for
                # the second, it stopped at once: the save dropped, or the process killed.
                # A SIGHUP never counts: systemd sends one right after its SIGTERM to each
                # process of a login session it stops (SendSIGHUP=: a spot VM's shutdown, a
                # run started over SSH), and a terminal's hang-up is nobody's "now": taken for
                # the second, it killed the run in its save (attackstop32).
                # Under torchrun the first signal again is no second one either: a stop of
                # every process at once (systemd's stop of a service or a VM, SLURM's
                # scancel: all of the control group) reaches a rank twice, directly and as
                # the agent passes its own on, milliseconds apart; taken for the second, it
                # killed the rank in its save, nothing saved (attacktr32). torchrun's own
                # SIGKILL, 30 s on, is the "now".
                if signum != signal.SIGHUP:
                    self._first = self._first or signum
                    self.signalled = True
                if signum != signal.SIGHUP or under_torchrun():
                    # Its grace counts from here: under torchrun a SIGHUP is the launcher's
                    # (its own hang-up, forwarded), and its SIGKILL follows 30 s later too;
                    # a stop without a signal waited on for 15 min, the line cut off by it.
                    self.signal_at = self.signal_at or time.monotonic()
                self.request(signum)
                if self.breaks_wait:
                    self.breaks_wait = False
                    raise WaitBroken(self.name)
                return
            # A second signal: stop now, the way the signal would without us.
            signal.signal(signum, signal.SIG_DFL)
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            os.kill(os.getpid(), signum)

        previous = {s: signal.signal(s, handler) for s in handled()}
        self._handling = True
        try:
            yield self
        finally:
            with self._lock:
                self._handling = False
            for s, h in previous.items():
                signal.signal(s, h)


def untrained(run: Any) -> str:
    """How a stop before this process's first step words it: a new run's ``nothing is
    saved``; a resumed run's names the checkpoint it resumed from, still its state (it read
    "nothing is saved" as progress lost, attacktrain36)."""
    name = getattr(run.state, "resumed_from", None)
    if not getattr(run.checkpointer, "began", 0) or not name:
        return "before the first step: nothing was trained, nothing is saved"
    return (f"before the first step since its resume from {name} at {run.state.pos.label}: "
            f"nothing was trained since, and {name} holds the run's state still")


def prepared(stop: StopFlag, make: Callable[[], Any]) -> Any:
    """``make()`` (the run's datasets: an image cache's fill, minutes long, or for good on a
    mount that stopped answering), ended by a signal's stop: one line, the signal's exit
    code. The flag alone was read once training began: the fill went on, a step was trained,
    and its save came after the grace (attacktrain33). Under torchrun too: nothing is
    trained yet, so nothing needs agreeing (a rank waiting in the first step's collective
    meets this one's loss, nothing saved either: trainer.peer_loss)."""
    stop.breaks_wait = threading.current_thread() is threading.main_thread()
    try:
        return make()
    except WaitBroken:
        raise TrainingInterrupted(f"stopped by {stop.name} while the datasets were prepared, "
                                  "before the first step: nothing was trained, nothing is saved",
                                  exit_code=stop.exit_code) from None
    finally:
        stop.breaks_wait = False


#: The signals whose handlers raise in the training thread: a stop's, torch's SIGCHLD for a
#: DataLoader worker that died.
_HANDLED = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD}


def start_unbroken(thread: threading.Thread) -> None:
    """``thread.start()`` with the Python handlers of :data:`_HANDLED` held meanwhile, then
    run (raised after it, as anywhere else). A handler that raised inside ``Thread.start``
    once the new thread was made (CPython runs it right after that call, in its ``except
    Exception``) dropped the thread from CPython's list of starting ones: the thread died at
    its first line, printing ``Exception ignored in thread started by … KeyError`` on the
    user's terminal. Holding the signals back in this thread (watch40) did not do: a signal
    sent to the process (torch's SIGCHLD, a ``kill``) went to another thread, and CPython ran
    its Python handler here all the same, at its next check (attackcli41). So the handlers
    are swapped for one that notes the signal; a noted one is sent again to this thread once
    they are back, where CPython runs them in turn, as it runs signals that came together."""
    if threading.current_thread() is not threading.main_thread():
        thread.start()   # (no handler runs in this thread)
        return
    came: list[int] = []

    def note(signum: int, frame: Any) -> None:
        if signum not in came:
            came.append(signum)

    held: dict[int, Any] = {}
    try:
        for s in _HANDLED:
            handler = signal.getsignal(s)
            if callable(handler):   # (SIG_DFL, SIG_IGN: no Python code runs for them)
                held[s] = handler
                signal.signal(s, note)
        thread.start()
    finally:
        _put_back(held, came)


#: Tries at putting one handler back (:func:`_put_back`): each failed one ran a handler
#: that raised, for a signal that came in the microseconds since.
_PUT_BACK_TRIES = 100


def _put_back(held: dict[int, Any], came: list[int]) -> None:
    """Put the handlers ``held`` back, then send the signals ``came`` meanwhile again. CPython
    runs pending handlers before it swaps one, and one that raises leaves it unswapped: the
    raise is kept for the end, and the swap tried again (else a handler put back before it,
    raising there, left the others noting signals for good)."""
    error: Optional[BaseException] = None
    for s, handler in held.items():
        for _ in range(_PUT_BACK_TRIES):
            try:
                signal.signal(s, handler)
                break
            except BaseException as exc:   # (a handler put back already, run and raising)
                error = error or exc
    try:
        if came:
            # Held back, sent, then let through at once: CPython runs each handler in turn
            # as the mask is put back; one that raises leaves the rest for the next check.
            before = signal.pthread_sigmask(signal.SIG_BLOCK, came)
            for s in came:
                signal.pthread_kill(threading.get_ident(), s)
            signal.pthread_sigmask(signal.SIG_SETMASK, before)
    finally:
        if error is not None:
            raise error
