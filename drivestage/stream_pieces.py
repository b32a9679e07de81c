"""A range one of a download's streams reads (:class:`Piece`; split from streams.py at its
line cap): where it has got to, where it ends, and what its answer turned out to be.
"""
from __future__ import annotations

from typing import Optional, Protocol


class Run(Protocol):
    """What a piece asks of the pass it is read for (a :class:`~drivestage.streams.Pass`)."""

    def extend(self, piece: "Piece") -> None: ...

    def write(self, piece: "Piece", offset: int, data: memoryview) -> None: ...

    def ranges_ignored(self, piece: "Piece") -> None: ...


class Piece:
    """A range one stream reads (a :class:`~drivestage.store.ByteSink`): ``end`` may move
    down while it is read, when another stream takes over the rest."""

    def __init__(self, run: "Run", start: int, end: int, urgent: bool = False):
        self.run, self.pos, self.end = run, start, end
        self.urgent = urgent  # fetched at once for a caller (fetch_now), not by a stream
        self.retired = False  # its stream ends once this piece is cut short (_retire)
        # An urgent piece's body: (first block's time, its length, last one's, bytes in all).
        self.timed: Optional[tuple[float, int, float, int]] = None
        # Its answer is the whole file (the server ignored Range): it reads on past its end
        # into the ranges no stream has taken (Pass.extend), skipping the bytes before
        # ``skip_to``, which are here already.
        self.whole = False
        self.skip_to = 0
        # Where its answer has got to (the end of the last block handed to write): past
        # ``pos`` when a block was cut short by an ``end`` moved down meanwhile (an urgent
        # fetch took the range: _free_in). Read on only from there: the bytes between were
        # read off the answer and thrown away.
        self.seen = start

    def limit(self) -> int:
        if self.whole and self.pos >= self.end:
            self.run.extend(self)
        return self.end

    def write(self, offset: int, data: memoryview) -> None:
        self.run.write(self, offset, data)

    def whole_answer(self) -> None:
        # Not for an urgent piece (its caller waits for its range only), nor one stopped
        # while its request was on its way.
        self.whole = not self.urgent and not self.retired
        self.run.ranges_ignored(self)
