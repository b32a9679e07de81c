"""A worker process's batches as its parent sees them (:mod:`.workers`): those in flight,
and what an answer does to the members it names.

The feeder thread sends a worker its batches, at most :data:`_IN_FLIGHT` ahead; a reader
thread takes the answers as they come, so that a worker's error is seen the moment it is
said, not once the next batch's bytes have arrived.
"""
from __future__ import annotations

from collections import deque
from typing import Optional, Protocol, Sequence

from drivestage.errors import ArchiveError
from drivestage.extract.copying import Progress
from drivestage.extract.frames import Message
from drivestage.extract.members import Entry
from drivestage.extract.worker import Order
from drivestage.interrupts import Flag, Monitor

#: Batches sent to a worker before its first answer (it never waits for its parent).
_IN_FLIGHT = 2


class Answering(Protocol):
    """A worker as a share knows it: what answers."""

    def answer(self) -> Message: ...


class Share:
    """One worker's batches in flight: its feeder sends them (at most :data:`_IN_FLIGHT`
    ahead, so that the worker never waits for its parent), its reader applies the answers
    as they come."""

    def __init__(self, worker: "Answering"):
        self.worker = worker
        # Not threading.Condition: a Ctrl-C could leave that held (drivestage.interrupts).
        self.lock = Monitor()
        self.inflight: deque[list[Order]] = deque()
        self.closed = False  # nothing more will be sent

    def room(self, failed: Flag) -> bool:
        """Wait until another batch may be sent: False once the writing failed."""
        with self.lock:
            while len(self.inflight) >= _IN_FLIGHT and not failed.is_set():
                self.lock.wait()
            return not failed.is_set()

    def sent(self, batch: list[Order]) -> None:
        with self.lock:
            self.inflight.append(batch)
            self.lock.notify_all()

    def next_sent(self, failed: Flag) -> Optional[list[Order]]:
        """The oldest batch sent and not answered yet, once there is one; None when none
        will be (all sent and answered, or the writing failed)."""
        with self.lock:
            while not self.inflight and not self.closed and not failed.is_set():
                self.lock.wait()
            return self.inflight[0] if self.inflight and not failed.is_set() else None

    def done(self) -> None:
        """The oldest batch answered."""
        with self.lock:
            self.inflight.popleft()
            self.lock.notify_all()

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.lock.notify_all()

    def wake(self) -> None:
        with self.lock:
            self.lock.notify_all()


def apply_answer(answer: Message, batch: list[Order], files: Sequence[Entry], progress: Progress,
           label: str) -> None:
    """A worker's answer to ``batch``: each member's ``written``, or the worker's error."""
    if answer[0] == "ok" and [i for i, _ in answer[1]] == [o[0] for o in batch]:
        nbytes = 0
        for i, st in answer[1]:
            size, mtime_ns, ino = st   # (what the worker's file is: copying.Written)
            files[i].written = (size, mtime_ns, ino)
            nbytes += files[i].size
        progress(nbytes)
        return
    if answer[0] == "archive":
        raise ArchiveError(answer[1])
    if answer[0] == "os":
        raise OSError(answer[1], answer[2], *([answer[3]] if answer[3] else []))
    raise ArchiveError(f"the extraction of {label} failed in a worker process: "
                       f"{answer[1] if answer[0] == 'bug' else 'a wrong answer'}; extract it "
                       "again")

