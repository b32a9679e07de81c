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
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from typing import Iterator, Optional

_NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT", signal.SIGHUP: "SIGHUP"}
#: The shell's convention: 128 + the signal number.
EXIT_CODES = {signal.SIGTERM: 143, signal.SIGINT: 130, signal.SIGHUP: 129}
#: No signal the run is sent: a DataLoader worker died (:mod:`trainer.worker_deaths`); the
#: stop is asked as for one, and the run ends with exit 1 once its state is saved.
WORKER_DEATH = int(signal.SIGCHLD)
#: Nor here: another rank of a torchrun job was lost (:mod:`trainer.peer_loss`); rank 0 saves
#: alone, and every rank ends with exit 1.
PEER_LOSS = int(signal.SIGPIPE)


def handled() -> tuple[int, ...]:
    """The signals a stop is asked with here: SIGTERM, SIGINT, and SIGHUP unless it is
    ignored (started under ``nohup``: the user asked the run to outlive its terminal)."""
    return tuple(s for s in _NAMES
                 if s != signal.SIGHUP or signal.getsignal(s) is not signal.SIG_IGN)


class StopRequested(Exception):
    """Raised inside evaluation to leave it early; the loop turns it into a stop save."""


class StopFlag:
    """Whether (and when) a stop was asked for; ``grace_s`` bounds the save and upload."""

    def __init__(self, grace_s: float):
        self.grace_s = grace_s
        self.signum: Optional[int] = None
        self.at: Optional[float] = None     # time.monotonic() of the first signal
        self.detail: Optional[str] = None   # what asked for it, beyond its name (torch's error)
        self.signalled = False              # a signal of :func:`handled` came (not a request;
                                            # nor a SIGHUP: it is never the second)
        #: ``(signum, detail)`` of the stop a loss (:meth:`lose_peer`) came after: its clock
        #: and a worker's death (its words, what to change) stay in the line.
        self.before: Optional[tuple[int, Optional[str]]] = None

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
        return _NAMES.get(self.signum, f"signal {self.signum}")

    @property
    def since(self) -> str:
        """What the stop's seconds count from, as lines say it: "after the signal" where
        there was one, else after the death or the loss that asked for the stop (the first
        of them: a loss after a signal keeps the signal's clock)."""
        first = self.before[0] if self.before is not None else self.signum
        if first == WORKER_DEATH:
            return "the worker's death"
        if first == PEER_LOSS:
            return self.name
        return "the signal"

    @property
    def worker_died(self) -> bool:
        """Whether a DataLoader worker's death asked for this stop (a loss after it too)."""
        return (self.before or (self.signum,))[0] == WORKER_DEATH

    @property
    def exit_code(self) -> int:
        return 1 if self.signum in (WORKER_DEATH, PEER_LOSS) else EXIT_CODES.get(self.signum, 143)

    @property
    def deadline(self) -> Optional[float]:
        """``time.monotonic()`` by which the process must be gone (None: no stop asked)."""
        return None if self.at is None else self.at + self.grace_s

    @contextlib.contextmanager
    def installed(self) -> Iterator["StopFlag"]:
        """Handle :func:`handled` signals while the body runs (only the main thread can)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return

        def handler(signum, frame):
            if not self.signalled or signum == signal.SIGHUP:
                # The first signal, even where a stop is under way already without one (a
                # worker's death; a lost rank, whose launcher sends the other ranks SIGTERM
                # 0.1 s after its end): that one's save goes on, its cause named. Taken for
                # the second, it stopped at once: the save dropped, or the process killed.
                # A SIGHUP never counts: systemd sends one right after its SIGTERM to each
                # process of a login session it stops (SendSIGHUP=: a spot VM's shutdown, a
                # run started over SSH), and a terminal's hang-up is nobody's "now": taken for
                # the second, it killed the run in its save (attackstop32).
                self.signalled = self.signalled or signum != signal.SIGHUP
                self.request(signum)
                return
            # A second signal: stop now, the way the signal would without us.
            signal.signal(signum, signal.SIG_DFL)
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            os.kill(os.getpid(), signum)

        previous = {s: signal.signal(s, handler) for s in handled()}
        try:
            yield self
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
