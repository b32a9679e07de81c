"""One pass of a download (:mod:`drivestage.download`): its streams and its hash.

A :class:`Pass` holds the partial file open, hands ranges to streams (the first missing range
whole; a stream with nothing left takes over the second half of the largest piece still read,
when that is worth a request), adds streams while the throughput grows (and stops the ones
just added when it did not grow, measured twice: where the cores, not the link, set the rate,
they only take CPU from the hash and an extraction), and hashes the
contiguous prefix as it grows, in a thread of its own, with the checksum the download is
verified with (:mod:`drivestage.checksums`). The streams' threads:
:mod:`drivestage.stream_threads`.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Optional, Protocol

from drivestage import pool, stream_count
from drivestage.checksums import Checksum
from drivestage.interrupts import BackgroundThread, Monitor
from drivestage.partials import Ranges, open_partial
from drivestage.prefix_hash import READ_BLOCK, PrefixHash
from drivestage.store import ProgressFn, RemoteEntry, RemoteStore
from drivestage.stream_lines import StreamLines
from drivestage.stream_pieces import Piece
from drivestage.stream_threads import Stopped, StreamThreads

log = logging.getLogger(__name__)

MiB = 1024 * 1024
#: A piece is split for a new stream only when each half is at least this long ...
_MIN_SPLIT = 16 * MiB
#: ... and would take a stream at least this long to read at the measured rate.
_SPLIT_SECONDS = 1.0
#: Streams are added (by measuring) only to files at least this large.
_ADAPT_FROM = 32 * MiB
#: How often the ranges record is saved while streams run.
_SAVE_EVERY = 0.5


class Owner(Protocol):
    """What a pass reads of the download it is one pass of (a
    :class:`~drivestage.download.Download`)."""

    store: RemoteStore
    entry: RemoteEntry
    partial: str                  # the partial file
    where: str                    # the file's name in messages
    lock: Monitor                 # shared with the download's waiters
    jobs: Optional[int]           # streams; None: found by measuring
    chunk_size: Optional[int]     # most bytes per piece; None: one piece per stream
    progress: Optional[ProgressFn]
    began: float                  # time.monotonic() when the download began
    checksum: Optional[Checksum]  # what the hash computes (md5 when None)


class Pass(StreamThreads, PrefixHash):
    """One pass of a download: the partial open, its ranges, the streams
    (:class:`~drivestage.stream_threads.StreamThreads`) and the hash
    (:class:`~drivestage.prefix_hash.PrefixHash`)."""

    def __init__(self, dl: Owner, done: Ranges):
        self.dl, self.done, self.lock = dl, done, dl.lock
        self.entry = dl.entry
        self.todo = done.missing()          # ranges no stream has taken yet
        self.pieces: list[Piece] = []       # being read
        self.fetched = self.streams = self.most_streams = self.inflight = 0
        self.streamed = 0                   # of those fetched, by streams (what they measure)
        # The caller waits for the download now (fill): before, it may hold the GIL and the
        # cores (a zip's member list read), and a throughput that did not grow proves little.
        self.settled = False
        # The rate of a range fetched at once before (a zip's tail), bytes/s: a link's pace
        # or the cores', measured before the caller's work could slow it down.
        self.first_rate: Optional[float] = None
        self.retiring = 0                   # streams stopped (_retire) that have not ended
        # The server ignores Range (ranges_ignored): each request costs the file from byte 0
        # on, so one stream reads one answer on to the end, and no more are asked for.
        self.whole = False
        self.silent = 0                     # streams started that have not written yet
        self._local = threading.local()
        self.error: Optional[BaseException] = None
        self.stopped = self.closed = False
        self._init_hash(dl.checksum)
        self._last_save = time.monotonic()
        self.hasher: Optional[BackgroundThread] = None  # once begun
        self.adapter: Optional[BackgroundThread] = None  # measuring, once begun
        self.fixed: Optional[int] = None    # streams asked for; None: found by measuring
        # The streams', each with its slot (joined, or left, by close()).
        self.threads: list[tuple[BackgroundThread, pool.Slot]] = []
        # The connections the streams read on: cut as the pass closes (stuckconn46).
        self.lines = StreamLines()
        # Opened last: a Ctrl-C in the lines above left it open for good (this pass was
        # never anyone's to close).
        self.fd = open_partial(dl.partial, self.entry.size)
        # The file this pass writes and hashes: what is named verified must be this very
        # one (DEST's other writers could swap the name; see Download.run).
        self.identity = os.fstat(self.fd)

    # -- pieces
    def claim(self) -> Optional[Piece]:
        with self.lock:
            if self.stopped:
                return None
            chunk = self.dl.chunk_size
            if self.whole:
                # One stream, in one answer as long as it goes (a stopped one's piece ends
                # with it: not waited for, lest no stream is left for the rest).
                if not self.todo or any(not p.urgent and not p.retired for p in self.pieces):
                    return None
                piece = Piece(self, *self.todo.pop(0))
            elif self.todo:
                a, b = self.todo[0]
                end = min(b, a + chunk) if chunk else b
                if not chunk:
                    # Streams started together share the range now, before any request
                    # goes out: the first one asked for all of it before the others split
                    # it (its answer then cut short, and a server that ignores Range could
                    # not be told from one answering what was asked).
                    idle = self.streams - sum(1 for p in self.pieces if not p.urgent)
                    if idle > 1 and (b - a) // idle >= _MIN_SPLIT:
                        end = a + (b - a) // idle
                if end >= b:
                    self.todo.pop(0)
                else:
                    self.todo[0] = (end, b)
                piece = Piece(self, a, end)
            elif chunk is None and self.pieces:
                victim = max(self.pieces, key=lambda p: p.end - p.pos)
                half = (victim.end - victim.pos) // 2
                if half < max(_MIN_SPLIT, self._stream_rate() * _SPLIT_SECONDS):
                    return None
                mid = victim.pos + half
                piece = Piece(self, mid, victim.end)
                victim.end = mid
            else:
                return None
            self.pieces.append(piece)
            return piece

    def ranges_ignored(self, piece: Piece) -> None:
        """``piece``'s answer is the whole file from byte 0 (the server ignored Range, see
        :attr:`whole`): the streams' pieces ahead of it that wait for their own answer (or
        skip to their range in it) are cut where they have got to and handed back, for its
        answer to read on into (:meth:`extend`). One ahead that reads on in its own whole
        answer already goes on: this one would have to read over what that one wrote."""
        with self.lock:
            if not self.whole:
                log.warning("%s: the server ignores Range (it answers every request with the "
                            "whole file); downloading it in one stream", self.where)
            self.whole = True
            if piece.whole:
                self._retire_pieces([p for p in self.pieces if p.pos > piece.pos and
                                     not (p.urgent or p.retired or p.whole)])

    def extend(self, piece: Piece) -> None:
        """Let ``piece``, whose answer is the whole file and which has reached its end, read
        on into the next range no stream has taken, over bytes that are here already."""
        with self.lock:
            if self.stopped or piece.retired:
                return
            for a, b in self.todo:
                if a >= max(piece.end, piece.seen) and self.done.covers(piece.end, a):
                    self._take(a, b)
                    piece.skip_to, piece.end = a, b
                    return

    def _stream_rate(self) -> float:
        seconds = time.monotonic() - self.dl.began
        return self.fetched / seconds / max(self.streams, 1) if seconds > 0 else 0.0

    def write(self, piece: Piece, offset: int, data: memoryview) -> None:
        with self.lock:
            if self.stopped:
                raise Stopped("the download stopped")
            piece.seen = max(piece.seen, offset + len(data))
            if offset < piece.skip_to:  # here already: a whole-file answer runs over them
                k = min(len(data), piece.skip_to - offset)
                piece.pos, offset, data = offset + k, offset + k, data[k:]
            # Only up to the piece's end: another stream may have taken over the rest
            # while these bytes were on their way.
            n = min(len(data), piece.end - offset)
            if n <= 0:
                return
            piece.pos = offset + n  # claimed now: a split starts after it
            self.inflight += 1
        try:
            done = 0
            while done < n:
                done += os.pwrite(self.fd, data[done:n], offset + done)
        finally:
            with self.lock:
                self.inflight -= 1
                self.lock.notify_all()
        with self.lock:
            self.done.add(offset, offset + n)
            self.fetched += n
            if not piece.urgent:
                self.streamed += n
            else:
                now = time.monotonic()
                t = piece.timed
                piece.timed = (now, n, now, n) if t is None else (t[0], t[1], now, t[3] + n)
            self._offer(offset, data[:n])
            if getattr(self._local, "stream", False) and not getattr(self._local, "wrote",
                                                                      False):
                self._local.wrote = True
                self.silent -= 1  # this stream's first bytes
            if self.dl.progress is not None:
                self.dl.progress(n)
            self.lock.notify_all()

    def fetch_now(self, start: int, end: int, *, begin: bool = False) -> None:
        """Fetch ``[start, end)`` now, in this thread (what a stream is already inside of is
        left to it), and return once it is all in the partial (see :meth:`_free_in`).
        ``begin``: the streams begin once the range is this thread's, to fetch the rest."""
        mine: list[Piece] = []
        try:
            with self.lock:
                for a, b in self._free_in(start, end):
                    self._take(a, b)
                    mine.append(Piece(self, a, b, urgent=True))
                self.pieces.extend(mine)
            if begin:
                self.begin()
            for piece in mine:
                self.dl.store.read_into(self.entry, piece.pos, piece)
            with self.lock:  # what the link gave one request (stream_count reads it)
                self.first_rate = stream_count.body_rate(
                    [p.timed for p in mine if p.timed is not None], READ_BLOCK)
        except Stopped:
            if self.error is not None:  # a stream failed meanwhile: why, not "it stopped"
                raise self.error from None
            raise
        finally:
            with self.lock:
                for piece in mine:
                    if piece in self.pieces:  # not yet, after a Ctrl-C as they were made
                        self.pieces.remove(piece)
                    if piece.pos < piece.end:  # handed back: a stream reads it later
                        self.todo.append((piece.pos, piece.end))
                self.todo.sort()
                if not self.closed and not self.done.saved:
                    self.done.save()  # a kill before the streams' first save keeps it
        with self.lock:  # what a stream was in the middle of
            while not self.done.covers(start, end):
                if self.error is not None:
                    raise self.error
                if self.stopped:
                    raise Stopped("the download stopped")
                pool.check()   # (see _drive_streams)
                self.lock.wait(0.5)

    def _free_in(self, start: int, end: int) -> list[tuple[int, int]]:
        """The parts of ``[start, end)`` that no stream will fetch (the lock held): those in
        the ranges no stream has taken, and those a stream's piece would reach only after
        ``start``, cut off that piece here (its bytes after ``end`` go back to be taken)."""
        free = [(max(a, start), min(b, end)) for a, b in self.todo if a < end and b > start]
        for p in self.pieces:
            if p.urgent or p.pos >= start or p.end <= start:
                continue  # not reaching the range, or already inside it: left to it
            if p.end > end:
                self.todo.append((end, p.end))
            free.append((start, min(p.end, end)))
            p.end = start
        self.todo.sort()
        return sorted(free)

    def _take(self, a: int, b: int) -> None:
        """Remove ``[a, b)`` from the ranges no stream has taken."""
        out = []
        for x, y in self.todo:
            if y <= a or x >= b:
                out.append((x, y))
                continue
            if x < a:
                out.append((x, a))
            if y > b:
                out.append((b, y))
        self.todo = out

    # -- streams
    def _retire(self, n: int) -> None:
        """End ``n`` streams (the lock held): the ones furthest into the file, so that the
        stream the hash (and an extraction) follows goes on. Each one's piece is cut short
        where it has got to, and the rest goes back to the ranges no stream has taken."""
        # Not those stopped already (the first whole answer gives up the pieces ahead while
        # the measuring waits): one counted twice in ``retiring`` made the download stop
        # waiting for its streams, and save no record, while the last one still read on.
        ahead = sorted((p for p in self.pieces if not (p.urgent or p.retired)),
                       key=lambda p: p.pos)[1:]
        self._retire_pieces(ahead[len(ahead) - n:] if n > 0 else [])

    def _retire_pieces(self, pieces: list[Piece]) -> None:
        """End the streams reading ``pieces`` (the lock held; see :meth:`_retire`)."""
        for piece in pieces:
            if piece.pos < piece.end:
                self.todo.append((piece.pos, piece.end))
            piece.end, piece.retired = piece.pos, True
            self.retiring += 1
        self.todo.sort()

    retire = _retire  # what stream_count calls

    def begin(self) -> None:
        """Start the hash thread and the first streams, which fetch in threads of their own
        (once; :meth:`fill` begins a pass not begun yet)."""
        with self.lock:
            if self.hasher is not None or self.stopped:
                return
            # Not threading.Thread: a Ctrl-C inside its join() marks it stopped while it
            # still reads the partial (which is then closed under it).
            self.hasher = BackgroundThread(self._hash, "drivestage-hash")
        self.hasher.start()
        remaining = sum(b - a for a, b in self.todo)
        self.fixed = self.dl.jobs
        if self.fixed is None and remaining < _ADAPT_FROM:
            self.fixed = 1
        if self.todo:
            self.add_streams(self.fixed or 1)
            if self.fixed is None:
                self.adapter = BackgroundThread(self._adapt, "drivestage-streams")
                self.adapter.start()

    def fill(self) -> None:
        """Fetch every missing range and hash the whole file; raise the first failure."""
        self.begin()
        with self.lock:
            self.settled = True
        try:
            self._drive_streams()
            self._wait_for_hash()
        finally:
            with self.lock:
                self.stopped = True
                self.lock.notify_all()
            self._join_hasher()  # before the partial is closed: it reads from it
        self.digest = self._digest.hexdigest()
        self._check_on_disk()

    def _drive_streams(self) -> None:
        """Wait for the streams to end (saving the record as they go); raise the first
        failure."""
        while True:
            with self.lock:
                if self.error is not None:
                    raise self.error
                # Not waiting for the streams stopped (_retire): one may be waiting out a
                # backoff (a Retry-After of minutes) for bytes another stream has fetched.
                # Their writes in flight are waited for by the hash and close().
                if self.streams - self.retiring == 0:
                    break
                # A thread of pool.each (a folder pull's file) whose caller was interrupted
                # stops here, as the main thread does at a Ctrl-C: the streams read in
                # threads of their own, and one whose answer Drive holds mid-body held the
                # interrupted pull until that answer went on or timed out (stall45).
                pool.check()
                self.lock.wait(0.05)
                now = time.monotonic()
                if now - self._last_save >= _SAVE_EVERY and not self.done.saved:
                    self.done.save()
                    self._last_save = now
        if self.error is not None:
            raise self.error

    def _adapt(self) -> None:
        """The measuring thread (from :meth:`begin` on, so that it goes on while the caller
        reads a zip's member list): :func:`drivestage.stream_count.measure`. A failure here
        stops the download like a stream's."""
        try:
            stream_count.measure(self, _MIN_SPLIT)
        except BaseException as exc:
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        """A background thread's failure: handed to the main thread, which raises it."""
        with self.lock:
            if self.error is None:
                self.error = exc
            self.stopped = True
            self.lock.notify_all()

    where = property(lambda self: self.dl.where, doc="The file, in messages.")

    def left(self) -> int:
        """Bytes no stream has fetched yet (the lock held)."""
        return sum(b - a for a, b in self.todo) + sum(p.end - p.pos for p in self.pieces)

    def close(self) -> None:
        """Stop the streams; save the record; close the partial once no write is running.
        A close cut short by a Ctrl-C is finished by the next one (the download's close()):
        it returned at once, and the partial stayed open for good in a notebook."""
        with self.lock:
            self.stopped = True
            for piece in self.pieces:
                piece.end = piece.pos  # a stream stops at its next block
            # ... or now, where it waits for Drive: an answer held mid-body kept its thread
            # and socket up to the HTTP timeout after the (interrupted) call returned.
            self.lines.cut()
            while self.inflight:
                self.lock.wait()
            if not self.closed:
                if os.path.exists(self.dl.partial):
                    self.done.save()
                self.closed = True
                self.lock.notify_all()
        self._join_hasher()  # a pass closed while it ran (a failure elsewhere): it reads fd
        self._join_streams()
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)
