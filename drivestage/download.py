"""Ranged, parallel, resumable, md5-verified download of one remote file.

The bytes go into a partial file beside the target (whose record lists the ranges it holds,
so a rerun asks only for the rest: :mod:`drivestage.partials`) and reach the final name only
after size and md5 matched, by an atomic rename. Streams read pieces through
:meth:`~drivestage.store.RemoteStore.read_into` (on Drive one long ranged GET per piece:
every request costs a delay and API quota units) and write them where they belong. A stream
takes the first missing range whole; one with nothing left takes over the second half of the
largest piece still read, when that is worth a request (with ``chunk_size``: pieces of at
most that, in order). The number of streams is ``jobs``, or found by measuring: one, then
twice as many (four times when doubling nearly doubled the rate) while the throughput grows
by half or more and stays below what the md5 can take (a CPU-bound machine near its server
wants one; Drive over a network, several). The md5 follows the contiguous prefix in a thread
of its own (blocks arriving right there from memory, the rest from the page cache). A
checksum mismatch deletes the partial and starts once more from zero; a second one raises
:class:`~drivestage.errors.ChecksumMismatchError`.
"""
from __future__ import annotations

import collections
import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Optional

from drivestage.errors import ChecksumMismatchError, DriveStageError, RemoteError
from drivestage.partials import (Ranges, open_partial, partial_path, partial_size,
                                 ranges_path, md5_rate, record_temps, remove_partial,
                                 stale_partials, unlink, verify_file)
from drivestage.store import ProgressFn, RemoteEntry, RemoteStore

log = logging.getLogger(__name__)

MiB = 1024 * 1024
#: Folder pulls fetch this many small files at once.
DEFAULT_JOBS = 4
#: Chunk size of a folder pull's "small file" (one stream each).
DEFAULT_CHUNK_SIZE = 8 * MiB
#: Most streams the measuring finds (each one is a connection to Drive).
MAX_STREAMS = 8
_READ_BLOCK = 4 * MiB
#: A piece is split for a new stream only when each half is at least this long ...
_MIN_SPLIT = 16 * MiB
#: ... and would take a stream at least this long to read at the measured rate.
_SPLIT_SECONDS = 1.0
#: Streams are added (by measuring) only to files at least this large.
_ADAPT_FROM = 32 * MiB
#: Seconds a throughput is measured (from the newest stream's first byte); the growth that
#: adds streams, and the one that adds four times as many.
_WINDOW = 0.1
_GROWTH = 1.5
_LINEAR = 1.7
#: No more streams once the bytes arrive this close to the rate the md5 can take them.
_HASH_SHARE = 0.7
#: Blocks (of up to 1 MiB) waiting to be hashed from memory, at most.
_FEED_MAX = 16
#: How often the ranges record is saved while streams run.
_SAVE_EVERY = 0.5


@dataclass
class DownloadResult:
    """What one download did."""

    path: str            # the final file
    size: int
    md5: str             # hex md5 of the bytes written (== the remote md5 when it has one)
    resumed_from: int    # bytes already in the partial file when this run started
    fetched: int         # bytes fetched over the network by this run
    seconds: float
    restarted: bool = False  # a checksum mismatch forced one restart from zero
    streams: int = 0     # the most streams that ran at once


class Download:
    """One file's download into its partial file (see the module doc); :meth:`run` does it.

    The caller holds whatever lock keeps other processes off ``target``. ``progress(n)`` is
    called with the bytes as they arrive (resumed bytes at the start), under a lock."""

    def __init__(self, store: RemoteStore, entry: RemoteEntry, target: str, *,
                 jobs: Optional[int] = None, chunk_size: Optional[int] = None,
                 progress: Optional[ProgressFn] = None, describe: Optional[str] = None):
        if entry.is_dir:
            raise RemoteError(f"{describe or entry.name} is a folder, not a file")
        self.store, self.entry, self.target = store, entry, target
        self.where = describe or store.describe(entry)
        self.jobs = max(1, int(jobs)) if jobs else None
        self.chunk_size = max(1, int(chunk_size)) if chunk_size else None
        self.progress = progress
        self.generation = 0  # a restart from zero voids what was there
        self.partial = partial_path(target, entry)
        self.lock = threading.Condition()
        self._run: Optional[_Run] = None
        self.began = time.monotonic()
        for path in stale_partials(target, keep=self.partial):
            log.info("removing a partial download of another version: %s", path)
            remove_partial(path)
        self._open()

    def _open(self) -> None:
        done = Ranges.load(self.partial, self.entry.size)
        if done is None:
            unlink(self.partial)
            done = Ranges(self.partial, self.entry.size)
        done.save()  # before the partial's first byte: the record is what a rerun trusts
        self._run = _Run(self, done)
        self.resumed_from = done.total()
        if self.resumed_from:
            log.info("resuming %s: %d of %d bytes already here", self.where,
                     self.resumed_from, self.entry.size)
            if self.progress is not None:
                self.progress(self.resumed_from)

    def wait_for(self, start: int, end: int, generation: int) -> bool:
        """Wait until bytes ``[start, end)`` are in the partial: True, or False when they
        never will be in this ``generation`` of it (the download failed or started again)."""
        with self.lock:
            while True:
                run = self._run
                if self.generation != generation or run is None:
                    return False
                if run.done.covers(start, end):
                    return True
                if run.stopped:
                    return False
                self.lock.wait(0.5)

    def fetch_first(self, start: int, end: int) -> None:
        """Fetch ``[start, end)`` now, in this thread (e.g. a zip's central directory, read
        before the rest arrives); ranges already here are not asked again."""
        assert self._run is not None
        self._run.fetch_now(start, end)

    def read(self, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the partial (they must be there: :meth:`wait_for`)."""
        assert self._run is not None
        return os.pread(self._run.fd, end - start, start)

    def run(self) -> DownloadResult:
        """Fetch the rest, verify, and move the partial to the target."""
        assert self._run is not None
        restarted, fetched = False, 0
        while True:
            run = self._run
            try:
                run.fill()
            finally:
                fetched += run.fetched
                run.close()
            got_size, got_md5 = run.done.total(), run.md5
            if got_size == self.entry.size and (self.entry.md5 is None
                                                or got_md5 == self.entry.md5.lower()):
                break
            remove_partial(self.partial)
            expected = f"md5 {self.entry.md5}, {self.entry.size} bytes"
            got = f"md5 {got_md5}, {got_size} bytes"
            if restarted:
                raise ChecksumMismatchError(
                    f"{self.where}: the downloaded bytes do not match Drive (expected "
                    f"{expected}; got {got}), twice. Deleted the download for safety. The "
                    "file may be changing on Drive, or something between here and Drive "
                    "alters data.", expected=self.entry.md5, got=got_md5)
            log.warning("%s: checksum mismatch (expected %s, got %s); deleted the download, "
                        "starting again from zero", self.where, expected, got)
            restarted = True
            with self.lock:
                self.generation += 1
                self.lock.notify_all()
            self._open()
        os.replace(self.partial, self.target)
        unlink(ranges_path(self.partial))
        return DownloadResult(path=self.target, size=self.entry.size, md5=got_md5,
                              resumed_from=self.resumed_from if not restarted else 0,
                              fetched=fetched, seconds=time.monotonic() - self.began,
                              restarted=restarted, streams=run.most_streams)

    def close(self) -> None:
        """Stop (after a failure elsewhere): the partial and its record stay for a rerun."""
        if self._run is not None:
            self._run.close()


def download(store: RemoteStore, entry: RemoteEntry, target: str, *, jobs: Optional[int] = None,
             chunk_size: Optional[int] = None, progress: Optional[ProgressFn] = None,
             describe: Optional[str] = None) -> DownloadResult:
    """Download ``entry`` from ``store`` to ``target`` (resuming a partial when there is one);
    see the module doc. The caller holds whatever lock keeps other processes off ``target``.
    """
    return Download(store, entry, target, jobs=jobs, chunk_size=chunk_size, progress=progress,
                    describe=describe).run()


# ------------------------------------------------------------------------------ one run

class _Stopped(DriveStageError):
    """The download stopped (a failure elsewhere); a stream's write is refused."""


class _Piece:
    """A range one stream reads (a :class:`~drivestage.store.ByteSink`): ``end`` may move
    down while it is read, when another stream takes over the rest."""

    def __init__(self, run: "_Run", start: int, end: int):
        self.run, self.pos, self.end = run, start, end

    def limit(self) -> int:
        return self.end

    def write(self, offset: int, data: memoryview) -> None:
        self.run.write(self, offset, data)


class _Run:
    """One pass of a download: the partial open, its ranges, the streams and the md5."""

    def __init__(self, dl: Download, done: Ranges):
        self.dl, self.done, self.lock = dl, done, dl.lock
        self.entry = dl.entry
        self.fd = open_partial(dl.partial, self.entry.size)
        self.todo = done.missing()          # ranges no stream has taken yet
        self.pieces: list[_Piece] = []      # being read
        self.fetched = self.streams = self.most_streams = self.inflight = 0
        self.silent = 0                     # streams started that have not written yet
        self._local = threading.local()
        self.error: Optional[BaseException] = None
        self.stopped = self.closed = False
        self.md5, self._digest = "", hashlib.md5()
        # Blocks just written where the hash has got to, handed to it as they are.
        self.feed: collections.deque[tuple[int, memoryview]] = collections.deque()
        self.hashed = self.feed_end = self.hash_claim = 0
        self._last_save = time.monotonic()

    # -- pieces
    def claim(self) -> Optional[_Piece]:
        with self.lock:
            if self.stopped:
                return None
            chunk = self.dl.chunk_size
            if self.todo:
                a, b = self.todo[0]
                end = min(b, a + chunk) if chunk else b
                if end >= b:
                    self.todo.pop(0)
                else:
                    self.todo[0] = (end, b)
                piece = _Piece(self, a, end)
            elif chunk is None and self.pieces:
                victim = max(self.pieces, key=lambda p: p.end - p.pos)
                half = (victim.end - victim.pos) // 2
                if half < max(_MIN_SPLIT, self._stream_rate() * _SPLIT_SECONDS):
                    return None
                mid = victim.pos + half
                piece = _Piece(self, mid, victim.end)
                victim.end = mid
            else:
                return None
            self.pieces.append(piece)
            return piece

    def _stream_rate(self) -> float:
        seconds = time.monotonic() - self.dl.began
        return self.fetched / seconds / max(self.streams, 1) if seconds > 0 else 0.0

    def write(self, piece: _Piece, offset: int, data: memoryview) -> None:
        with self.lock:
            if self.stopped:
                raise _Stopped("the download stopped")
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
            if len(self.feed) < _FEED_MAX and \
                    offset == (self.feed_end if self.feed else self.hash_claim):
                self.feed.append((offset, data[:n]))
                self.feed_end = offset + n
            if getattr(self._local, "stream", False) and not getattr(self._local, "wrote",
                                                                      False):
                self._local.wrote = True
                self.silent -= 1  # this stream's first bytes
            if self.dl.progress is not None:
                self.dl.progress(n)
            self.lock.notify_all()

    def fetch_now(self, start: int, end: int) -> None:
        for a, b in self._missing_in(start, end):
            with self.lock:
                self._take(a, b)
                piece = _Piece(self, a, b)
                self.pieces.append(piece)
            try:
                self.dl.store.read_into(self.entry, a, piece)
            finally:
                with self.lock:
                    self.pieces.remove(piece)
                    if piece.pos < piece.end:  # handed back: a stream reads it later
                        self.todo.append((piece.pos, piece.end))
                        self.todo.sort()

    def _missing_in(self, start: int, end: int) -> list[tuple[int, int]]:
        with self.lock:
            return [(max(a, start), min(b, end)) for a, b in self.done.missing()
                    if a < end and b > start]

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
    def _stream(self) -> None:
        self._local.stream = True
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
        except BaseException as exc:  # handed to the main thread, which raises it
            with self.lock:
                if self.error is None and not isinstance(exc, _Stopped):
                    self.error = exc
                self.stopped = True
                self.lock.notify_all()
        finally:
            with self.lock:
                self.streams -= 1
                if not getattr(self._local, "wrote", False):
                    self.silent -= 1
                self.lock.notify_all()

    def _start_streams(self, n: int) -> None:
        with self.lock:
            self.streams += n
            self.silent += n
            self.most_streams = max(self.most_streams, self.streams)
        for _ in range(n):
            threading.Thread(target=self._stream, name="drivestage-fetch", daemon=True).start()

    def fill(self) -> None:
        """Fetch every missing range and hash the whole file; raise the first failure."""
        hasher = threading.Thread(target=self._hash, name="drivestage-md5", daemon=True)
        hasher.start()
        try:
            if self.todo:
                self._drive_streams()
            self._wait_for_hash()
        finally:
            with self.lock:
                self.stopped = True
                self.lock.notify_all()
            hasher.join()  # before the partial is closed: it reads from it
        self.md5 = self._digest.hexdigest()

    def _wait_for_hash(self) -> None:
        """After the last write: wait for the md5 thread to reach the end of the file."""
        with self.lock:
            while self.error is None and self.hashed < self.entry.size:
                self.lock.wait(0.5)
            if self.error is not None:
                raise self.error

    def _drive_streams(self) -> None:
        """Start the streams and wait for them, adding streams while throughput grows."""
        remaining = sum(b - a for a, b in self.todo)
        fixed = self.dl.jobs
        if fixed is None and remaining < _ADAPT_FROM:
            fixed = 1
        self._start_streams(fixed or 1)
        adapting = fixed is None
        rate_before = 0.0
        window: Optional[tuple[float, int]] = None  # from when every stream had bytes
        while True:
            more = 0
            with self.lock:
                if self.error is not None:
                    raise self.error
                if self.streams == 0:
                    break
                self.lock.wait(0.05)
                now = time.monotonic()
                if now - self._last_save >= _SAVE_EVERY and not self.done.saved:
                    self.done.save()
                    self._last_save = now
                if adapting and self.silent == 0:
                    if window is None:
                        window = (now, self.fetched)
                    elif now - window[0] >= _WINDOW:
                        rate = (self.fetched - window[1]) / (now - window[0])
                        # Twice as many; four times when doubling nearly doubled the rate
                        # (each stream held to its own rate, as Drive holds connections).
                        scale = 3 if rate_before and rate >= rate_before * _LINEAR else 1
                        want = min(self.streams * scale, MAX_STREAMS - self.streams)
                        left = sum(b - a for a, b in self.todo) + \
                            sum(p.end - p.pos for p in self.pieces)
                        if rate >= rate_before * _GROWTH and want > 0 and \
                                rate < _HASH_SHARE * md5_rate() and \
                                left >= 2 * _MIN_SPLIT * (self.streams + want):
                            rate_before, more, window = rate, want, None
                        else:
                            adapting = False
                            log.debug("%s: %d streams (%.0f MB/s)", self.dl.where,
                                      self.streams, rate / 1e6)
            if more:
                self._start_streams(more)
        if self.error is not None:
            raise self.error

    def _hash(self) -> None:
        """md5 of the contiguous prefix as it grows: blocks handed over by the stream that
        writes right where the hash has got to (no second copy), the rest read back from the
        page cache."""
        size = self.entry.size
        while True:
            block: Optional[memoryview] = None
            with self.lock:
                while True:
                    if self.feed and self.feed[0][0] == self.hashed:
                        block = self.feed.popleft()[1]
                        self.hash_claim = max(self.hash_claim, self.hashed + len(block))
                        break
                    upto = self.done.prefix()
                    if self.feed:
                        upto = min(upto, self.feed[0][0])
                    if upto > self.hashed:
                        self.hash_claim = upto
                        break
                    if self.stopped:
                        return
                    self.lock.wait(0.5)
            pos = self.hashed
            if block is not None:
                self._digest.update(block)
                pos += len(block)
            while block is None and pos < upto:
                if self.stopped:
                    return  # a failure or an interrupt: the md5 is not needed any more
                data = os.pread(self.fd, min(_READ_BLOCK, upto - pos), pos)
                if not data:
                    break
                self._digest.update(data)
                pos += len(data)
            with self.lock:
                self.hashed = pos
                self.lock.notify_all()
            if pos >= size:
                return

    def close(self) -> None:
        """Stop the streams; save the record; close the partial once no write is running."""
        with self.lock:
            self.stopped = True
            for piece in self.pieces:
                piece.end = piece.pos  # a stream stops at its next block
            while self.inflight:
                self.lock.wait()
            if self.closed:
                return
            self.closed = True
            if os.path.exists(self.dl.partial):
                self.done.save()
        os.close(self.fd)


__all__ = ["Download", "DownloadResult", "download", "partial_path", "partial_size",
           "ranges_path", "record_temps", "remove_partial", "stale_partials", "verify_file"]
