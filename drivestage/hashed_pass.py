"""One read of a local archive that both hashes and extracts it (``pull -x`` of an archive
that lies on local disk or a mount: :mod:`drivestage.stage_original`).

A first pull read the original twice: whole, to hash it (the directory store's md5 when the
pull looked the file up), then again to extract it: 2.03x its size in bytes read, a 20 GB
Kaggle input through its mount twice. Here one thread reads it once, front to back, and
hashes each block as it reads it (:class:`~drivestage.hashed_read._Reader`); the extraction takes those very blocks:

* a zip: its central directory first (read from the end, as every extraction reads it: a
  few KB to a few MB), checked as :meth:`~drivestage.extract.job.Job.check` checks every
  member list; then its members in file order from the stream (local header, then the stored
  or deflated bytes, CRC-32 checked), whatever lies between them hashed and dropped;
* a tar, plain or compressed: the stream itself
  (:class:`~drivestage.extract.overlapped.Overlapped`, as for a download);

then the rest of the file, to its end, for the hash. One sequential reader is also what a
FUSE or network mount serves best (its read-ahead; the usual extraction read two places of
the file at once). Nothing reaches DEST before the md5 of every byte is known and
``verify(md5)`` (the caller's: the md5 the listing gave if any, the original's identity
before and after) accepted it; on any failure the temporary folder goes and DEST is as it
was. An archive the stream cannot follow (links or bzip2 / lzma members in a zip, members out
of file order or overlapping, a damaged one, a plain tar larger than the free space) is read
to its end for the hash, verified, and extracted the usual way, which reports whatever is
wrong with it: two reads, as before, for those alone; only while the file it opens is the
one verified, unchanged (``extract(identity=)``), else nothing is merged.
"""
from __future__ import annotations

import collections
import io
import logging
import os
import shutil
import struct
import threading
import time
from typing import Callable, Iterable, Optional

from drivestage.errors import ArchiveError, DestChangedError, DiskSpaceError
from drivestage.extract import ExtractResult, MemberRecord, Recorded, archive_kind, extract
from drivestage.extract.copying import Progress, TempDir, copy_raw, create
from drivestage.extract.formats import compression
from drivestage.extract.job import Job
from drivestage.extract.members import Entry, NeedsData, zip_directory
from drivestage.extract.overlapped import FALLBACK, Abandoned, Overlapped
from drivestage.hashed_read import _AHEAD, CHUNK, _OutOfOrder, _Reader  # noqa: F401
from drivestage.interrupts import SLICE, BackgroundThread, Flag, deferred
from drivestage.state import wait_settled
from drivestage.store import ProgressFn

log = logging.getLogger(__name__)

#: Threads writing a zip's members, and the bytes read that may wait for them.
_WRITERS = 2
_IN_FLIGHT = 16 << 20
#: Members handed on that may wait for a writer (864 bytes each): the byte window alone let
#: a zip of a million empty members (none of them a byte) wait whole for a slow DEST.
_PENDING = 1024
_LOCAL_HEADER = 30


class _Stopped(Exception):
    """The writers were told to stop (the read failed, or the other writer did)."""


class _Feed:
    """One member's bytes on their way from the read to a writer."""

    def __init__(self, e: Entry):
        self.e = e
        self.blocks: "collections.deque[memoryview]" = collections.deque()
        self.ended = False


class _Writers:
    """Zip members written by two threads, each a whole member at a time in file order, from
    the blocks the one read hands them (:meth:`give`): creating and filling files is kernel
    time that two cores share out, as the usual extraction's two workers do, while the read
    stays one front-to-back pass. At most :data:`_IN_FLIGHT` bytes wait for a writer."""

    def __init__(self, root: TempDir, label: str, progress: Progress):
        self.root, self.label, self.progress = root, label, progress
        lock = threading.RLock()
        self.cond = threading.Condition(lock)
        #: The read's wait for room among the members waiting (see :meth:`member`): a
        #: condition of its own, else every block a writer takes woke it.
        self.room = threading.Condition(lock)
        self.todo: "collections.deque[_Feed]" = collections.deque()
        self.closed = False
        self.failed: Optional[BaseException] = None
        self.in_flight = 0
        self.threads = [BackgroundThread(self._run, "drivestage-write")
                        for _ in range(_WRITERS)]   # started by the caller, inside its try

    def member(self, e: Entry) -> _Feed:
        """The next member (file order): a writer takes it once free."""
        feed = _Feed(e)
        with self.cond:
            if len(self.todo) >= _PENDING:
                # Until half have gone: woken once per 512 members, not once per member.
                while len(self.todo) > _PENDING // 2 and self.failed is None:
                    self.room.wait(SLICE)   # (the main thread's: see interrupts.SLICE)
            self._raise()
            self.todo.append(feed)
            self.cond.notify_all()
        return feed

    def give(self, feed: _Feed, block: memoryview) -> None:
        """Hand on the next bytes of ``feed``'s member (waits while too many wait)."""
        if len(block) < CHUNK:
            # A piece of a block gets a copy of its own: a slice kept the whole block it
            # views alive while counted at its own length, so a zip of 1-byte members each
            # behind 1 MiB no member holds kept every block read in memory while DEST lagged
            # (49 MiB for 48 members; an archive's size for a bigger one), past the window.
            # Only a member's first and last pieces are copied: at most 2 MiB a member.
            block = memoryview(bytes(block))
        with self.cond:
            while self.in_flight > _IN_FLIGHT and self.failed is None:
                self.cond.wait(SLICE)   # (the main thread's: see interrupts.SLICE)
            self._raise()
            self.in_flight += len(block)
            feed.blocks.append(block)
            self.cond.notify_all()

    def end(self, feed: _Feed) -> None:
        with self.cond:
            feed.ended = True
            self.cond.notify_all()

    def _raise(self) -> None:
        if self.failed is not None:
            raise self.failed

    def _take(self, feed: _Feed, n: int) -> memoryview:
        with self.cond:
            while not feed.blocks and not feed.ended and self.failed is None:
                self.cond.wait()
            if self.failed is not None:
                raise _Stopped()
            if not feed.blocks:
                return memoryview(b"")
            block = feed.blocks[0]
            out = block[:n]
            if len(block) > n:
                feed.blocks[0] = block[n:]
            else:
                feed.blocks.popleft()
            self.in_flight -= len(out)
            self.cond.notify_all()
            return out

    def _next(self) -> Optional[_Feed]:
        with self.cond:
            while not self.todo and not self.closed and self.failed is None:
                self.cond.wait()
            if not self.todo or self.failed is not None:
                return None
            feed = self.todo.popleft()
            if len(self.todo) == _PENDING // 2:  # the read may wait for room (member())
                self.room.notify_all()
            return feed

    def _run(self) -> None:
        try:
            while True:
                feed = self._next()
                if feed is None:
                    return
                e = feed.e

                def read(n: int, pos: int, feed: _Feed = feed) -> bytes:
                    return self._take(feed, n)  # type: ignore[return-value]  # a buffer
                out = create(self.root, e)
                try:
                    copy_raw(-1, out, e, 0, e.comp_size, e.method, e.crc,
                             self.label, self.progress, read=read)
                finally:
                    os.close(out)
        except _Stopped:
            return
        except BaseException as exc:  # the first failure stops the other writer and the read
            with self.cond:
                if self.failed is None:
                    self.failed = exc
                self.cond.notify_all()
                self.room.notify_all()

    def close(self, stop: bool = False) -> None:
        """Wait for the writers: every member written (raises the first failure), or, with
        ``stop``, stopped after the block under way."""
        with self.cond:
            self.closed = True
            if stop and self.failed is None:
                self.failed = _Stopped()
            self.cond.notify_all()
        try:
            for t in self.threads:
                t.join()
        except BaseException:
            # A Ctrl-C in the wait was raised at once: the writers, not told to stop, went
            # on writing into the temporary folder the caller then removed (a member made
            # through the descriptor of a folder gone). Stopped now, and waited for.
            with deferred():  # (a second Ctrl-C: once they have stopped)
                with self.cond:
                    self.failed = self.failed or _Stopped()
                    self.cond.notify_all()
                for t in self.threads:
                    t.join()
            raise
        if not stop:
            self._raise()


class _Stream(io.RawIOBase):
    """The reader as a raw file for tarfile (closing it leaves the reader open: the rest of
    the file is still to be hashed); a read once ``stop`` is set raises :class:`Abandoned`."""

    def __init__(self, reader: _Reader, stop: Flag):
        super().__init__()
        self.reader, self.stop = reader, stop

    def readable(self) -> bool:
        return True

    def readinto(self, buf: "memoryview | bytearray") -> int:  # type: ignore[override]
        # The follower's thread looks for its stop only between members: a Ctrl-C (its
        # abandon()) waited while it read a big member to its end - all 24 MiB of one
        # after a Ctrl-C at its 12th, minutes for a 20 GB member on a slow mount. A
        # download's follower stops in its reads (_Growing's wait); so does this one now.
        if self.stop.is_set():
            raise Abandoned("stopped")
        data = self.reader.read(len(buf))
        buf[:len(data)] = data
        return len(data)


class HashedPass:
    """The extraction step's unpacker for a local original (what
    :class:`~drivestage.stage_extraction.Extraction` calls ``unpacking``): :meth:`extract`
    extracts ``path`` into ``dest`` in one read that hashes it too, and merges only once
    ``verify(md5)`` returned (it raises to refuse: nothing is merged then).

    ``st``: the original as the caller found it (the file opened must still be that one);
    ``progress(label, total, initial)``: the extraction's bar factory, or None."""

    def __init__(self, path: str, st: os.stat_result, dest: str, *, lock_dir: str,
                 reserve: int, protected: Iterable[str], label: str,
                 verify: Callable[[str, int], None],
                 progress: Optional[Callable[[str, int, int], Optional[ProgressFn]]] = None):
        self.path, self.st, self.dest, self.lock_dir = path, st, dest, lock_dir
        self.protected, self.label, self.verify = list(protected), label, verify
        self.progress = progress
        self.reserve = reserve
        #: The md5 of what was read (once verified).
        self.md5: Optional[str] = None

    def _free(self, p: str) -> int:
        return shutil.disk_usage(p).free - self.reserve

    def extract(self, target: str, replaceable: Iterable[MemberRecord] = (),
                recorded: Optional[Recorded] = None) -> ExtractResult:
        """Extract the original (``target``: its path) into DEST, hashing it as it is read;
        merged once the md5 is verified (``recorded``: see :func:`extract`)."""
        replaceable = list(replaceable)
        self.recorded = recorded
        kind = archive_kind(self.path)
        fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if not os.path.samestat(os.fstat(fd), self.st):  # replaced since it was looked at
                raise self._changed()
            wait_settled(self.st)  # else the md5 is not kept for the next run (state.settled)
            began = time.time_ns()
            reader = _Reader(fd)
            try:
                return self._extract(kind, fd, reader, replaceable, began)
            finally:
                # A second Ctrl-C at the call of close() (the first one raised while the
                # read was ahead) left the reading thread waiting for room for good.
                with deferred():
                    reader.close()
        finally:
            os.close(fd)

    def _extract(self, kind: Optional[str], fd: int, reader: _Reader,
                 replaceable: list[MemberRecord], began: int) -> ExtractResult:
        finish: Optional[Callable[[], ExtractResult]] = None
        drop: Optional[Callable[[], None]] = None
        try:
            try:
                if kind == "zip":
                    job = Job(self.path, self.dest, lock_dir=self.lock_dir,
                              free_bytes=self._free, protected=self.protected,
                              label=self.label, replaceable=replaceable,
                              recorded=self.recorded)
                    drop, finish = job.close, job.finish
                    self._zip(job, fd, reader)
                elif kind == "tar":
                    if self._may_not_fit(fd):
                        # A plain tar's members take about its size. Streamed, the members
                        # filled DEST's disk until the next did not fit (12 of 32 MiB), for
                        # whatever else writes there; the usual way refuses before writing.
                        raise _OutOfOrder("a plain tar larger than the free space")
                    stop = Flag()
                    # The file's own name: the follower opens it without following a link
                    # (a download's partial), so a tar given by a link fell back to two
                    # reads; the identity check (st) still holds it to that very file.
                    follower = Overlapped.tar(
                        os.path.realpath(self.path), self.st.st_size, self.dest,
                        lambda start, end: True,
                        lock_dir=self.lock_dir, free_bytes=self._free,
                        progress=self._bar(self._tar_total(fd)), protected=self.protected,
                        label=self.label, replaceable=replaceable, identity=self.st,
                        stop=stop, source=_Stream(reader, stop), recorded=self.recorded)
                    drop, finish = follower.abandon, follower.finish
                    follower.written()
                else:
                    raise _OutOfOrder("not an archive the stream follows")
            except DiskSpaceError:
                if kind == "zip":
                    raise  # the whole member list's check: the usual way would say it again
                # A tar's stream checks each member as it comes, once the earlier ones took
                # their room: it said "needs 4.0 MiB, only 2.0 MiB free" of one member (free
                # that, and the next fails). The usual way checks the whole list first and
                # says what it needs, as it did before this pass.
                if drop is not None:
                    drop()
                drop = finish = None
            except DestChangedError:
                raise  # about DEST: the usual way would only say it again
            except FALLBACK + (NeedsData,) as exc:
                log.info("%s: extracting it after its hash (%s)", self.label, exc)
                if drop is not None:
                    drop()
                drop = finish = None
            self.md5 = reader.digest()
            self.verify(self.md5, began)  # raises to refuse: then nothing is merged
            if finish is not None:
                return finish()
        finally:
            if drop is not None:
                drop()  # a no-op after a merge; else the temporary folder goes
        # Two reads, for an archive the stream could not follow: the very file verified
        # (opened again by its name, it read whatever was renamed over it meanwhile, and
        # merged its members before the caller's identity check failed the pull).
        return extract(self.path, self.dest, lock_dir=self.lock_dir,
                       free_bytes=self._free, protected=self.protected,
                       replaceable=replaceable, identity=self.st, recorded=self.recorded)

    def _zip(self, job: Job, fd: int, reader: _Reader) -> None:
        """The members of a zip (stored or deflated) from the stream, in file order."""
        entries = zip_directory(self.path, fd)
        if any(e.method not in (0, 8) for e in entries):
            raise _OutOfOrder("bzip2 or lzma members")
        files = sorted(job.check(entries), key=lambda e: e.offset)
        writers = _Writers(job.root, self.label, Progress(self._bar(sum(e.size for e in files))))
        try:
            for t in writers.threads:   # (a Ctrl-C as the first starts: the first is stopped)
                t.start()
            for e in files:
                reader.skip_to(e.offset)
                header = reader.exact(_LOCAL_HEADER)
                if len(header) != _LOCAL_HEADER or header[:4] != b"PK\x03\x04":
                    raise ArchiveError(f"member {e.path!r} of {self.label}: bad local header "
                                       f"at offset {e.offset}")
                name_len, extra_len = struct.unpack_from("<HH", header, 26)
                reader.skip_to(reader.pos + name_len + extra_len)
                feed = writers.member(e)
                left = e.comp_size
                while left:  # (a short member: its writer says it is truncated)
                    block = reader.read(min(CHUNK, left))
                    if not block:
                        break
                    left -= len(block)
                    writers.give(feed, block)
                writers.end(feed)
            # Inside the try: a Ctrl-C as it is called (before its own wait) left both
            # writers waiting for more members for good (DRIVESTAGE_TEST_SWEEP=all).
            writers.close()  # raises what stopped a writer
        except BaseException:
            writers.close(stop=True)
            raise

    def _tar_total(self, fd: int) -> int:
        """What a tar's members hold, for the bar: about its size when it is plain; unknown
        (0) when compressed, short of a pass over it."""
        return 0 if compression(os.pread(fd, 6, 0)) else self.st.st_size

    def _may_not_fit(self, fd: int) -> bool:
        """A plain tar larger than the free space where DEST is (or will be)."""
        if compression(os.pread(fd, 6, 0)):
            return False  # its members' size is unknown short of a pass over it
        where = os.path.abspath(self.dest)
        while not os.path.isdir(where) and os.path.dirname(where) != where:
            where = os.path.dirname(where)
        return self.st.st_size > self._free(where)

    def _bar(self, total: int) -> Optional[ProgressFn]:
        return self.progress("extract", total, 0) if self.progress is not None else None

    def _changed(self) -> DestChangedError:
        return DestChangedError(f"{self.path} changed while it was read (another program "
                                "writes it?); nothing of it is extracted")
