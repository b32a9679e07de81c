"""One checkpoint state handed to :class:`trainer.writer.BackgroundWriter`, and what became of
it (split from ``trainer/writer.py`` at its 500-line cap; ``trainer.writer.SaveJob`` is this).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

from drivestage.interrupts import Flag
from trainer.state import Position


@dataclass
class SaveJob:
    """One checkpoint state (already on CPU) and the files to make from it."""

    state: dict
    names: list                        # file names in the run folder; the first is serialised
    position: Position
    metrics: dict = field(default_factory=dict)
    droppable: bool = False            # may be replaced by a newer job while it waits
    done: Flag = field(default_factory=Flag)
    written: bool = False
    error: Optional[BaseException] = None
    dropped: bool = False
    # When the state was taken (time.time(), on the training thread): the sidecar's "saved".
    # Not when its file was complete: a stop save written at once in the training thread
    # completes before an epoch save still queued, and a later save with less progress
    # reads as a run sent back on purpose (drivestage.sidecar.left_behind).
    taken: float = field(default_factory=time.time)
    missing: list[str] = field(default_factory=list)   # names a failed write left unwritten
    ended: Optional[Flag] = None       # a stop's write on a thread of its own: it ended
    # A failed write keeps :attr:`state` (else freed at once): the run's last epoch, kept on
    # this machine when the run folder's disk is full (trainer.kept_state.kept_text).
    keep_failed: bool = False

    @property
    def name(self) -> str:
        return self.names[0]
