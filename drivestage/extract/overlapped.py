"""Extraction that follows an archive while it downloads.

The members are written into the temporary folder inside DEST (as :func:`extract` writes
them) as soon as the bytes they occupy are in the partial file; nothing reaches DEST before
:meth:`Overlapped.finish`, which the caller runs only once the download is complete and its
md5 verified, and which then does what :func:`extract` does last (links, records, the merge
under DEST's lock, checked against DEST as it is then). So every rule of :mod:`drivestage.
extract` holds exactly as it does for a finished archive: the member list is validated before
a member is written (a zip's, from its central directory, which the caller fetches first), a
member is written only where the rules allow, and a failure of any kind - the download's, a
checksum mismatch, a member the rules refuse - leaves DEST as it was: the caller abandons
the temporary folder (:meth:`Overlapped.abandon`) and, when the download itself succeeded,
extracts the verified archive the usual way, which reports whatever is wrong with it.

* zip: the central directory gives every member and its offset; a member is written once its
  local header and compressed bytes have arrived, in the order they arrive (several streams
  fill pieces far apart: a member near the end is not held back by the front; by worker
  processes for a big zip, :mod:`.workers`). Zips with links (their targets are member data) or with bzip2 /
  lzma members are not followed.
* tar, tar.gz, tar.bz2, tar.xz: one streamed pass over the bytes as they arrive; each member's
  name is checked before it is written, links are made last, and the whole list is validated
  again before the merge.
"""
from __future__ import annotations

import io
import logging
import lzma
import os
import posixpath
import tarfile
import threading
import zlib
from typing import Callable, Iterable, Mapping, Optional, Protocol, Sequence

from drivestage.errors import ArchiveError, DiskSpaceError
from drivestage.extract.formats import archive_kind
from drivestage.gil import sharing
from drivestage.heap import bulk
from drivestage.extract.job import Job, Turn
from drivestage.extract.occupied import Recorded
from drivestage.extract.members import (Entry, Tally, open_tar_stream, tar_entry,
                                        zip_directory)
from drivestage.extract.records import ExtractResult, MemberRecord
from drivestage.extract.tempdir import TempDir, makedirs_at
from drivestage.sizes import format_size
from drivestage.extract.tarinfo import each_member
from drivestage.extract.validation import check_names
from drivestage.extract.workers import Started, close_workers, likely_worth, start_workers, \
    worth_processes, write_in_processes
from drivestage.extract.copying import Progress, create, finish_member
from drivestage.extract.writing import copy_stream, write_zip_member, zip_data_start
from drivestage.store import ProgressFn
from drivestage.interrupts import BackgroundThread, Flag

log = logging.getLogger(__name__)

_ZIP_METHODS_FOLLOWED = (0, 8)      # stored, deflate
#: Members are written by this many worker processes (threads for a small archive).
_WORKERS = 2
_LOCAL_HEADER = 30
#: While a tar streams in, free space is checked at least every this many bytes written (and
#: before any member larger than what the last check found free: its header says its size).
_SPACE_STEP = 64 << 20


#: What a followed archive may raise that means "extract it the usual way instead" (the
#: usual way reports what is wrong with the archive, from verified bytes).
FALLBACK = (ArchiveError, OSError, EOFError, tarfile.TarError, zlib.error, lzma.LZMAError)


class Arrival(Protocol):
    """The archive as it downloads."""

    def __call__(self, start: int, end: int) -> bool:
        """Wait until bytes ``[start, end)`` are in the file: True, or False when they never
        will be (the download failed or started again)."""
        ...


class FirstArrival(Protocol):
    """The archive as it downloads in pieces far apart (several streams)."""

    def __call__(self, spans: Sequence[tuple[int, int]]) -> int:
        """Wait until one of ``spans`` (sorted ``[start, end)``) is all in the file: the index
        of the first such, or -1 when none will be (the download failed or started
        again)."""
        ...


class Abandoned(ArchiveError):
    """The download behind an overlapped extraction stopped."""


def open_followed(path: str, identity: Optional[os.stat_result]) -> int:
    """The file being downloaded, opened by its name to be followed: it must be the very
    file the download writes and hashes (``identity``), not one that someone who can write
    DEST put at that name (its members would be extracted, and merged once the download's
    own file was verified). ArchiveError otherwise: the verified file is extracted later."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    if identity is not None and not os.path.samestat(os.fstat(fd), identity):
        os.close(fd)
        raise ArchiveError(f"{path} is not the file being downloaded any more (another "
                           "program replaced it)")
    return fd


class Overlapped:
    """One archive extracted while it downloads into ``path`` (``size`` bytes in the end);
    start it with :meth:`zip` or :meth:`tar`, then :meth:`finish` or :meth:`abandon`."""

    def __init__(self, path: str, size: int, dest: str, arrived: Arrival, *,
                 lock_dir: Optional[str] = None,
                 free_bytes: Optional[Callable[[str], int]] = None,
                 progress: Optional[ProgressFn] = None, protected: Iterable[str] = (),
                 label: Optional[str] = None, replaceable: Iterable[MemberRecord] = (),
                 fd: int = -1, first_arrived: Optional[FirstArrival] = None,
                 stop: Optional[Flag] = None, source: Optional[io.RawIOBase] = None,
                 turn: Optional[Turn] = None, kept: Mapping[str, MemberRecord] = {},
                 recorded: Optional[Recorded] = None):
        self.path, self.size, self.arrived = path, size, arrived
        # A tar's bytes from ``source`` instead of the file (read once and hashed as it is
        # read: :mod:`drivestage.hashed_pass`).
        self.source = source
        self.first_arrived = first_arrived
        # What messages call the archive: its final name, not the partial file's.
        self.label = label or path
        self.job = Job(path, dest, lock_dir=lock_dir, free_bytes=free_bytes,
                       protected=protected, label=self.label,
                       replaceable=replaceable, kept=kept, turn=turn, recorded=recorded)
        self.free_bytes = self.job.free_bytes
        self.progress = Progress(progress)
        # A rename keeps it readable; ``fd``: opened already (:func:`open_followed`).
        self.fd = fd if fd >= 0 else os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        # Set to stop; given by a caller whose ``arrived`` waits end when it is set.
        self.stop = stop if stop is not None else Flag()
        self.error: Optional[BaseException] = None
        self.thread: Optional[BackgroundThread] = None
        #: Worker processes started before the member list was read (:meth:`zip`).
        self.early: Started = []
        self.kind = "tar"   # what it is followed as (zip(): "zip")

    # -- the two kinds
    @classmethod
    def zip(cls, path: str, size: int, dest: str, arrived: Arrival, *,
            lock_dir: Optional[str] = None, free_bytes: Optional[Callable[[str], int]] = None,
            progress: Optional[ProgressFn] = None, protected: Iterable[str] = (),
            label: Optional[str] = None, replaceable: Iterable[MemberRecord] = (),
            identity: Optional[os.stat_result] = None,
            first_arrived: Optional[FirstArrival] = None, stop: Optional[Flag] = None,
            adopt: Optional[Callable[["Overlapped"], None]] = None,
            turn: Optional[Turn] = None, kept: Mapping[str, MemberRecord] = {},
            recorded: Optional[Recorded] = None) -> Optional["Overlapped"]:
        """Start following a zip whose central directory is in ``path`` already; None when
        this zip is not one to follow (the caller extracts it once downloaded).
        ``first_arrived``: members are then written in the order their bytes arrive (the
        streams of a download fill pieces far apart), else in file order.
        ``protected``: where the archive will be once verified, and other staged files (see
        :class:`Job`). ``label``: the archive's name in messages (default ``path``).
        ``replaceable``: what an earlier extraction of the archive wrote (see :class:`Job`).
        ``identity``: the file the download writes (see :func:`open_followed`).
        ``adopt(job)``: called as soon as the job exists, before its thread starts (the
        caller can then abandon it after a Ctrl-C at any later moment). ``turn``: what the
        merge waits on, ``kept``: members in place, not written again, ``recorded``: what
        earlier extractions wrote (see :class:`Job`)."""
        job = cls.open_zip(path, size, dest, arrived, lock_dir=lock_dir,
                           free_bytes=free_bytes, progress=progress, protected=protected,
                           label=label, replaceable=replaceable, identity=identity,
                           first_arrived=first_arrived, stop=stop, adopt=adopt, turn=turn,
                           kept=kept, recorded=recorded)
        return job if job.follow_zip() else None

    @classmethod
    def open_zip(cls, path: str, size: int, dest: str, arrived: Arrival, *,
                 lock_dir: Optional[str] = None,
                 free_bytes: Optional[Callable[[str], int]] = None,
                 progress: Optional[ProgressFn] = None, protected: Iterable[str] = (),
                 label: Optional[str] = None, replaceable: Iterable[MemberRecord] = (),
                 identity: Optional[os.stat_result] = None,
                 first_arrived: Optional[FirstArrival] = None, stop: Optional[Flag] = None,
                 adopt: Optional[Callable[["Overlapped"], None]] = None,
                 turn: Optional[Turn] = None, kept: Mapping[str, MemberRecord] = {},
                 recorded: Optional[Recorded] = None) -> "Overlapped":
        """The follower of a zip whose central directory may still be on its way
        (:meth:`follow_zip` reads it once it is in ``path``): the file opened, the job made
        (and ``adopt``-ed), and, for a big zip, the temporary folder made and the worker
        processes started, whose interpreters start while the directory is fetched and
        read; they write nothing before the list is checked (no batch is sent before).
        Arguments: see :meth:`zip`."""
        fd = open_followed(path, identity)
        job = None
        try:  # fd is the job's once it is made; closed here otherwise (a Ctrl-C too)
            job = cls(path, size, dest, arrived, lock_dir=lock_dir, free_bytes=free_bytes,
                      progress=progress, protected=protected, label=label,
                      replaceable=replaceable, fd=fd, first_arrived=first_arrived,
                      stop=stop, turn=turn, kept=kept, recorded=recorded)
        finally:
            if job is None:
                os.close(fd)
        try:
            if adopt is not None:
                adopt(job)
            if likely_worth(size, _WORKERS):
                job.job.start_temp()
                start_workers(fd, job.job.root, job.label, _WORKERS,
                              hold_fd=job.job.owner_fd, into=job.early)
        except BaseException:  # a Ctrl-C too: the workers and the temporary folder go
            job.abandon()
            raise
        return job

    def follow_zip(self) -> bool:
        """Read and check the member list (the central directory is in the file now), then
        start writing: True; False (abandoned) when this zip is not one to follow (the
        caller extracts it once downloaded). What the check raises (a list refused, DEST
        too small) is raised, the follower abandoned."""
        # The member list is read and checked beside the download's threads, which it
        # would otherwise hold back for its whole length (:mod:`drivestage.gil`).
        try:  # (its entries live to the pull's end: none collected meanwhile, heap.bulk)
            with sharing(), bulk():
                return self._follow_zip()
        except BaseException:  # a Ctrl-C too: the temporary folder goes
            self.abandon()
            raise

    def _follow_zip(self) -> bool:
        try:
            # Read from bytes that have arrived only: the tail fetched first need not hold
            # all that zipfile reads (zip64 records before a long comment: attackzip45).
            entries = zip_directory(self.path, self.fd, wait=self._wait)
        except Exception as exc:  # links, an unreadable directory: the usual way then
            log.debug("not extracting %s while it downloads: %s", self.path, exc)
            self.abandon()
            return False
        files = [e for e in entries if e.kind == "file"]
        if any(e.method not in _ZIP_METHODS_FOLLOWED for e in files):
            self.abandon()
            return False
        self.kind = "zip"
        files = self.job.check(entries)
        if not worth_processes("zip", files, _WORKERS):
            close_workers(self.early, kill=True)  # threads write a small one
        self._start(lambda: self._zip(files))
        return True

    @classmethod
    def tar(cls, path: str, size: int, dest: str, arrived: Arrival, *,
            lock_dir: Optional[str] = None, free_bytes: Optional[Callable[[str], int]] = None,
            progress: Optional[ProgressFn] = None, protected: Iterable[str] = (),
            label: Optional[str] = None, replaceable: Iterable[MemberRecord] = (),
            identity: Optional[os.stat_result] = None, stop: Optional[Flag] = None,
            adopt: Optional[Callable[["Overlapped"], None]] = None,
            source: Optional[io.RawIOBase] = None, turn: Optional[Turn] = None,
            recorded: Optional[Recorded] = None) -> "Overlapped":
        """Start following a tar (plain or compressed) from its first byte (``adopt``: as
        for :meth:`zip`; ``source``: its bytes, read front to back, instead of the file)."""
        fd = open_followed(path, identity)
        job = None
        try:
            job = cls(path, size, dest, arrived, lock_dir=lock_dir, free_bytes=free_bytes,
                      progress=progress, protected=protected, label=label,
                      replaceable=replaceable, fd=fd, stop=stop, source=source, turn=turn,
                      recorded=recorded)
        finally:
            if job is None:  # a Ctrl-C in the making: in a notebook the descriptor stayed
                os.close(fd)  # open, the archive's disk space taken, until a restart
        try:
            if adopt is not None:
                adopt(job)
            job._start(job._tar)
        except BaseException:  # a Ctrl-C: nothing left behind
            job.abandon()
            raise
        return job

    def _start(self, work: Callable[[], None]) -> None:
        def run() -> None:
            try:
                work()
            except BaseException as exc:  # read by finish()
                self.error = exc
                # What it wrote goes now, not once the download has ended (DEST's disk
                # held meanwhile, for minutes on a slow link); abandon() closes it again.
                try:
                    close_workers(self.early, kill=True)  # (before the folder, as _close)
                    self.job.close()
                except Exception as gone:  # abandon() tries again
                    log.debug("could not remove the temporary folder of %s yet: %s",
                              self.label, gone)
                log.debug("stopped extracting %s while it downloads: %s", self.label, exc)

        # Not threading.Thread: a Ctrl-C inside its join() marks it stopped while it still
        # writes into the temporary folder that abandon() then removes.
        # Known before it starts: a Ctrl-C as it starts is raised once it runs.
        self.thread = BackgroundThread(run, "drivestage-extract")
        self.thread.start()

    # -- the end
    def written(self) -> None:
        """Wait until every member is in the temporary folder; raises what stopped the
        extraction (nothing is merged yet: :meth:`finish` merges)."""
        if self.thread is not None:
            self.thread.join()
        if self.error is not None:
            raise self.error

    def finish(self) -> ExtractResult:
        """Once the download is verified: the rest of the members, then the merge. Raises
        what stopped the extraction (the caller then extracts the archive the usual way)."""
        try:
            if self.thread is not None:
                self.thread.join()
            if self.error is not None:
                raise self.error
            # Followed by its name, extracted the usual way by its content: a tar with a
            # zip after it (`p.zip`) had the zip's members first, the tar's at each rerun.
            actual = archive_kind(self.label, self.fd)
            if actual != self.kind:
                raise ArchiveError(f"{self.label} is a {actual or 'file of no known kind'} by "
                                   f"its content, not the {self.kind} it was followed as")
            return self.job.finish()
        finally:
            # Stopped and waited for before the folder and the descriptors go: join(), cut
            # by a Ctrl-C, returned while the extraction still wrote through them.
            self.abandon()

    def abandon(self) -> None:
        """Stop and remove the temporary folder; DEST is as it was."""
        self.stop.set()
        if self.thread is not None:
            self.thread.join()
        self._close()

    def _close(self) -> None:
        # The workers first: nothing writes into the temporary folder once it goes.
        close_workers(self.early, kill=True)
        self.job.close()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _wait(self, start: int, end: int) -> None:
        if self.stop.is_set() or not self.arrived(start, min(end, self.size)):
            raise Abandoned(f"the download of {self.label} stopped")

    def _first(self, spans: Sequence[tuple[int, int]]) -> int:
        """Which of ``spans`` to write next: the first whose bytes are all here (waiting for
        one)."""
        assert self.first_arrived is not None
        i = -1 if self.stop.is_set() else self.first_arrived(spans)
        if i < 0:
            raise Abandoned(f"the download of {self.label} stopped")
        return i

    # -- zip
    def _zip(self, files: list[Entry]) -> None:
        """Members in the order their bytes arrive (file order for one stream), each once
        its bytes are there, by two workers (creating files is kernel time that two cores
        overlap): worker processes for a big zip (:mod:`.workers`: threads would share one
        GIL with each other and with the download), threads for a small one."""
        if worth_processes("zip", files, _WORKERS):
            write_in_processes("zip", self.fd, self.size, self.job.root, files, _WORKERS,
                               self.progress, label=self.label, hold_fd=self.job.owner_fd,
                               wait=self._wait, stop=self.stop,
                               first=self._first if self.first_arrived is not None else None,
                               started=self.early or None)
            return
        todo = sorted(files, key=lambda e: e.offset)
        # Each member's bytes: from its local header to the next member's (the last: to the
        # end). Only the choice of what to write next; each read still waits for its bytes.
        starts = [e.offset for e in todo]
        spans = list(zip(starts, starts[1:] + [self.size]))
        lock, nxt = threading.Lock(), [0]
        failed = Flag()

        def work() -> None:
            fd = self.fd  # pread: the two workers share it
            while not failed.is_set():
                with lock:
                    if self.first_arrived is None:  # file order
                        if nxt[0] >= len(todo):
                            return
                        e = todo[nxt[0]]
                        nxt[0] += 1
                    else:
                        if not todo:
                            return
                        i = self._first(spans)
                        e = todo.pop(i)
                        spans.pop(i)
                start = e.offset
                self._wait(start, start + _LOCAL_HEADER)
                data = zip_data_start(fd, e, self.label)  # one read of its header
                self._wait(start, data + e.comp_size)
                write_zip_member(fd, self.job.root, e, data, self.label, self.progress)

        errors: list[BaseException] = []

        def run() -> None:
            try:
                work()
            except BaseException as exc:
                errors.append(exc)  # before the other's wait ends: it raises too
                failed.set()
                # The other thread may wait for bytes (seconds on a slow link, for good
                # if the download stalls): its wait ends with the follower's stop.
                self.stop.set()

        helper = threading.Thread(target=run, name="drivestage-extract-2", daemon=True)
        helper.start()
        run()
        helper.join()
        if errors:
            raise errors[0]

    # -- tar
    def _tar(self) -> None:
        reader = self.source or _Growing(self.fd, self.size, self._wait)
        tf = open_tar_stream(reader)
        job: Job = self.job
        tmp: Optional[TempDir] = None
        entries: list[Entry] = []
        tally = Tally(self.label)   # (the member cap, their names counted)
        written = checked_upto = 0  # no file written past checked_upto without a check
        with tf:
            for m in each_member(tf):
                e = tar_entry(m, self.label)
                check_names(e, self.label)
                if tmp is None:  # the first member: this is a tar, so the folder is needed
                    tmp = job.start_temp()
                entries.append(tally.add(e))
                if e.kind == "dir":
                    makedirs_at(tmp, e.path)
                elif e.kind == "file":
                    if written + e.size > checked_upto:  # before the bytes (a gzip bomb)
                        free = self.free_bytes(job.dest)
                        if free < e.size:
                            free = max(free, 0)
                            raise DiskSpaceError(
                                f"not enough free disk space to extract member {e.path!r} of "
                                f"{os.path.basename(self.label)} into {job.dest}: needs "
                                f"{format_size(e.size)} ({e.size} bytes), only "
                                f"{format_size(free)} ({free} bytes) free; free some space "
                                "or extract elsewhere", needed=e.size, free=free)
                        checked_upto = written + min(max(free, 0), _SPACE_STEP)
                    parent = posixpath.dirname(e.path)
                    if parent:
                        makedirs_at(tmp, parent)
                    fd = create(tmp, e)
                    try:
                        n = copy_stream(tf.extractfile(m), fd, e, self.label, self.progress)
                        finish_member(fd, e, n, self.label)
                    finally:
                        os.close(fd)
                    written += e.size
                if self.stop.is_set():
                    raise Abandoned("stopped")
        if tmp is None:
            raise ArchiveError(f"{self.label} has no members")
        job.adopt(entries)


class _Growing(io.RawIOBase):
    """A file being downloaded, read front to back: a read waits for its bytes."""

    def __init__(self, fd: int, size: int, wait: Callable[[int, int], None]):
        super().__init__()
        self.fd, self.size, self.wait, self.pos = fd, size, wait, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf: "memoryview | bytearray") -> int:  # type: ignore[override]
        n = min(len(buf), self.size - self.pos)
        if n <= 0:
            return 0
        self.wait(self.pos, self.pos + n)
        data = os.pread(self.fd, n, self.pos)
        buf[:len(data)] = data
        self.pos += len(data)
        return len(data)


__all__ = ["Abandoned", "Arrival", "FALLBACK", "Overlapped"]
