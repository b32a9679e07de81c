"""The threads of one pass of a download (a part of :class:`drivestage.streams.Pass`; split
from streams.py at its line cap): the streams, each a thread that claims a piece and reads it
into the partial until none is left, started as the pass asks for more, and joined as it
closes (with its hash and measuring threads).
"""
from __future__ import annotations

import functools
import threading
import time
from typing import Any, Optional

from drivestage import pool
from drivestage.errors import DriveStageError
from drivestage.interrupts import BackgroundThread, Monitor
from drivestage.partials import Ranges
from drivestage.store import RemoteEntry
from drivestage.stream_lines import StreamLines
from drivestage.stream_pieces import Piece

#: How long a pass's close waits, in all, for its stream threads to end once cut (they end
#: within milliseconds; the bound is for one the cut cannot reach, in a name's lookup).
_STREAMS_END = 5.0


class Stopped(DriveStageError):
    """The download stopped (a failure elsewhere); a stream's write is refused."""


class StreamThreads:
    """The streams' half of a pass: :meth:`add_streams` starts them, :meth:`_stream` runs in
    each, :meth:`_join_streams` (and :meth:`_join_hasher`) wait for them as the pass closes."""

    # What it reads of the pass it is part of.
    lock: Monitor
    done: Ranges
    entry: RemoteEntry
    dl: Any                      # the download (streams.Owner)
    todo: list[tuple[int, int]]  # ranges no stream has taken yet
    pieces: list[Piece]          # being read
    streams: int                 # streams started that have not ended
    most_streams: int
    retiring: int                # streams stopped (_retire) that have not ended
    silent: int                  # streams started that have not written yet
    whole: bool                  # the server ignores Range: one stream
    stopped: bool
    closed: bool
    error: Optional[BaseException]
    lines: StreamLines
    _local: threading.local
    threads: list[tuple[BackgroundThread, pool.Slot]]   # the streams', each with its slot
    hasher: Optional[BackgroundThread]
    adapter: Optional[BackgroundThread]

    def claim(self) -> Optional[Piece]:  # pragma: no cover - Pass defines it
        raise NotImplementedError

    def _stream(self, slot: pool.Slot) -> None:
        # (slotted: a read of a hung FUSE mount, pool.leavable, is left by the pass's close
        # a second after it; it waited out _STREAMS_END, and a Ctrl-C with it: streams52)
        with pool.slotted(slot), self.lines.reading():
            self._read_pieces()

    def _read_pieces(self) -> None:
        self._local.stream = True
        piece: Optional[Piece] = None
        try:
            while True:
                piece = self.claim()
                if piece is None:
                    return
                try:
                    self.dl.store.read_into(self.entry, piece.pos, piece)
                finally:
                    with self.lock:
                        self.pieces.remove(piece)
                        if piece.pos < piece.end and not self.stopped:
                            self.todo.append((piece.pos, piece.end))
                            self.todo.sort()
                        if not self.closed and not self.done.saved:
                            self.done.save()  # a piece is in: a rerun need not ask again
                if piece.retired:
                    return
        except BaseException as exc:  # handed to the main thread, which raises it
            with self.lock:
                if self.error is None and not isinstance(exc, Stopped) and \
                        not self.lines.is_cut:   # (the cut itself: the pass is closed)
                    self.error = exc
                self.stopped = True
                self.lock.notify_all()
        finally:
            with self.lock:
                self.streams -= 1
                if piece is not None and piece.retired:
                    self.retiring -= 1
                if not getattr(self._local, "wrote", False):
                    self.silent -= 1
                self.lock.notify_all()

    def add_streams(self, n: int) -> None:
        """Start ``n`` more streams (the lock not held)."""
        with self.lock:
            if self.whole:
                # Each would ask for the whole file again; but one there must be: a range
                # fetched first (fetch_now before begin) made the pass whole, no stream
                # started, and the hash waited for the rest for good.
                n = min(n, 1) if self.streams - self.retiring == 0 else 0
                if n == 0:
                    return
            self.streams += n
            self.silent += n
            self.most_streams = max(self.most_streams, self.streams)
        for _ in range(n):
            # (BackgroundThread: a Ctrl-C inside close()'s join of a plain Thread marked it
            # ended while it still ran)
            slot = pool.Slot()
            thread = BackgroundThread(functools.partial(self._stream, slot), "drivestage-fetch")
            with self.lock:
                self.threads.append((thread, slot))
            thread.start()

    def _join_hasher(self) -> None:
        me = threading.current_thread()
        if self.hasher is not None and self.hasher.thread is not me:
            self.hasher.join()  # at once when it never started (a Ctrl-C inside start())
        if self.adapter is not None and self.adapter.thread is not me:
            self.adapter.join()  # it ends within a wait once stopped

    def _join_streams(self) -> None:
        """Wait (at most :data:`_STREAMS_END` in all) for the stream threads to end, cut by
        :meth:`close`: the call that closed the pass returned while they still ran (saving
        the record, closing their connections), beside the caller's next work
        (pushlefts47). One in a read of a hung mount (:func:`drivestage.pool.leavable`) is
        left there :data:`~drivestage.pool.LEAVE_AFTER` seconds after the cut: a Ctrl-C
        of a copy from a hung FUSE mount was answered only after the whole bound."""
        me = threading.current_thread()
        cut = time.monotonic()
        until = cut + _STREAMS_END
        with self.lock:
            threads = list(self.threads)
        for thread, slot in threads:
            if thread.thread is me:
                continue
            while not thread.join(max(0.0, min(0.1, until - time.monotonic()))):
                if pool.left_behind(slot, cut) or time.monotonic() >= until:
                    break
