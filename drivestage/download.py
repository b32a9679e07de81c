"""Ranged, parallel, resumable, checksum-verified download of one remote file.

The bytes go into a partial file beside the target (whose record lists the ranges it holds,
so a rerun asks only for the rest: :mod:`drivestage.partials`) and reach the final name only
after size and checksum matched Drive's, by an atomic rename. Streams read pieces through
:meth:`~drivestage.store.RemoteStore.read_into` (on Drive one long ranged GET per piece:
every request costs a delay and API quota units) and write them where they belong
(:mod:`drivestage.streams`). The number of streams is ``jobs``, or found by measuring: one,
then twice as many (four times when doubling nearly doubled the rate) while the throughput
grows by half or more and stays below what the hash can take (a CPU-bound machine near its
server wants one; Drive over a network, several). The hash follows the contiguous prefix in
a thread of its own, with SHA-256 or md5, whichever this machine computes faster among those
Drive gave (:mod:`drivestage.checksums`). A checksum mismatch deletes the partial and starts
once more from zero, unless the file changed on Drive meanwhile (asked then: one metadata
call); a second one raises :class:`~drivestage.errors.ChecksumMismatchError`.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from drivestage.checksums import choose, verify_file, verify_held
from drivestage.interrupts import Monitor
from drivestage.errors import DestChangedError, ChecksumMismatchError, \
    DownloadRestrictedError, LocalFileError, PartialChangedError, RemoteChangedError, \
    RemoteError
from drivestage.partials import (Ranges, partial_path, partial_size, ranges_path, record_temps,
                                 remove_partial, stale_partials, unlink)
from drivestage.streams import Pass
from drivestage.store import ProgressFn, RemoteEntry, RemoteStore

log = logging.getLogger(__name__)

MiB = 1024 * 1024
#: Folder pulls fetch this many small files at once.
DEFAULT_JOBS = 4
#: Chunk size of a folder pull's "small file" (one stream each).
DEFAULT_CHUNK_SIZE = 8 * MiB


@dataclass
class DownloadResult:
    """What one download did."""

    path: str            # the final file
    size: int
    md5: str             # hex md5 of the bytes: Drive's, which ``checksum`` verified (the
                         # computed one when Drive gave no checksum)
    resumed_from: int    # bytes already in the partial file when this run started
    fetched: int         # bytes fetched over the network by this run
    seconds: float
    restarted: bool = False  # a checksum mismatch forced one restart from zero
    streams: int = 0     # the most streams that ran at once
    checksum: str = ""   # what verified the bytes: "md5" or "sha256" ("" when Drive gave none)


class Download:
    """One file's download into its partial file (see the module doc); :meth:`run` does it.

    The caller holds whatever lock keeps other processes off ``target``. ``progress(n)`` is
    called with the bytes as they arrive (resumed bytes at the start), under a lock."""

    def __init__(self, store: RemoteStore, entry: RemoteEntry, target: str, *,
                 jobs: Optional[int] = None, chunk_size: Optional[int] = None,
                 progress: Optional[ProgressFn] = None, describe: Optional[str] = None):
        if entry.is_dir:
            raise RemoteError(f"{describe or entry.name} is a folder, not a file")
        if entry.no_download:
            raise DownloadRestrictedError(entry.no_download)
        self.store, self.entry, self.target = store, entry, target
        # Nothing at the target as the download begins: nothing is replaced when it ends
        # (:meth:`_place`).
        self._new = not os.path.lexists(target)
        self.where = describe or store.describe(entry)
        self.jobs = max(1, int(jobs)) if jobs else None
        self.chunk_size = max(1, int(chunk_size)) if chunk_size else None
        self.progress = progress
        self.checksum = choose(entry)
        self.generation = 0  # a restart from zero voids what was there
        self.partial = partial_path(target, entry)
        # Not threading.Condition: a Ctrl-C could leave that held (drivestage.interrupts).
        self.lock = Monitor()
        self._run: Optional[Pass] = None
        #: The verified file as it lies at ``target`` once :meth:`run` returned: what an
        #: extraction after it must still find there, unchanged.
        self.placed: Optional[os.stat_result] = None
        self.began = time.monotonic()
        for path in stale_partials(target, keep=self.partial):
            log.info("removing a partial download of another version: %s", path)
            remove_partial(path)
        try:
            self._open()
        except BaseException:  # a Ctrl-C too: this download is nobody's to close
            self.close()
            raise

    def _open(self) -> None:
        done = Ranges.load(self.partial, self.entry.size)
        if done is None:
            unlink(self.partial)
            done = Ranges(self.partial, self.entry.size)
        done.save()  # before the partial's first byte: the record is what a rerun trusts
        self._run = Pass(self, done)
        self.resumed_from = done.total()
        if self.resumed_from:
            log.info("resuming %s: %d of %d bytes already here", self.where,
                     self.resumed_from, self.entry.size)
            if self.progress is not None:
                self.progress(self.resumed_from)

    def wait_for(self, start: int, end: int, generation: int,
                 cancelled: Optional[Callable[[], bool]] = None) -> bool:
        """Wait until bytes ``[start, end)`` are in the partial: True, or False when they
        never will be in this ``generation`` of it (the download failed or started again)
        or the waiter gave up (``cancelled()``, asked at least every half second)."""
        with self.lock:
            while True:
                run = self._run
                if self.generation != generation or run is None or \
                        (cancelled is not None and cancelled()):
                    return False
                if run.done.covers(start, end):
                    return True
                if run.stopped:
                    return False
                self.lock.wait(0.5)

    def first_here(self, spans: Sequence[tuple[int, int]], generation: int,
                   cancelled: Optional[Callable[[], bool]] = None) -> int:
        """Wait until one of ``spans`` (sorted, disjoint ``[start, end)``) is all in the
        partial: the index of the first such, or -1 when none will be (as
        :meth:`wait_for`). Streams fill the file in pieces far apart; this lets an
        extraction take members in the order their bytes arrive."""
        with self.lock:
            while True:
                run = self._run
                if self.generation != generation or run is None or not spans or \
                        (cancelled is not None and cancelled()):
                    return -1
                i = run.done.first_covered(spans)
                if i >= 0:
                    return i
                if run.stopped:
                    return -1
                self.lock.wait(0.5)

    def fetch_first(self, start: int, end: int, *, begin: bool = False) -> None:
        """Fetch ``[start, end)`` now, in this thread (e.g. a zip's central directory, read
        before the rest arrives); ranges already here are not asked again. ``begin``: the
        streams start on the rest meanwhile (:meth:`begin`)."""
        assert self._run is not None
        try:
            self._run.fetch_now(start, end, begin=begin)
        except PartialChangedError:
            self._drop(self._run)
            raise

    def begin(self) -> None:
        """Start fetching now, in the background (the streams are threads of their own), so
        that work before :meth:`run` (a zip's member list checked) overlaps the download."""
        assert self._run is not None
        self._run.begin()

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
            except PartialChangedError:
                self._drop(run)
                raise
            finally:
                fetched += run.fetched
                run.close()
            got_size, got = run.done.total(), run.digest
            check = self.checksum
            if got_size == self.entry.size and (check is None or got == check.expected):
                break
            remove_partial(self.partial)
            self.store.mismatched(self.entry)   # (a signed address that served other bytes)
            if not restarted:
                self._check_unchanged()
            name = check.name if check is not None else "md5"
            expected = f"{name} {check.expected if check else '-'}, {self.entry.size} bytes"
            seen = f"{name} {got}, {got_size} bytes"
            if restarted:
                what, why = self.store.mismatch   # (a local folder's file: not "Drive")
                raise ChecksumMismatchError(
                    f"{self.where}: {what} (expected {expected}; got {seen}), twice. Deleted "
                    f"the download for safety. {why}",
                    expected=check.expected if check else None, got=got)
            log.warning("%s: checksum mismatch (expected %s, got %s); deleted the download, "
                        "starting again from zero", self.where, expected, seen)
            restarted = True
            with self.lock:
                self.generation += 1
                self.lock.notify_all()
            self._open()
        self._place()
        unlink(ranges_path(self.partial))
        self.placed = self._check_moved(run.identity)
        md5 = self.entry.md5.lower() if self.entry.md5 and check is not None else got
        return DownloadResult(path=self.target, size=self.entry.size, md5=md5,
                              resumed_from=self.resumed_from if not restarted else 0,
                              fetched=fetched, seconds=time.monotonic() - self.began,
                              restarted=restarted, streams=run.most_streams,
                              checksum=check.name if check is not None else "")

    def _place(self) -> None:
        """Give the verified partial its final name. Where nothing was at the target when the
        download began, nothing there is replaced: a file another program (the user) wrote
        at that name while the bytes came was lost to the rename, which a pull refuses
        before a byte is fetched ("is already there and is not a copy … that drivestage
        staged": pushlefts48). Looked for just before the rename, which stays a rename (a
        hard link, placing without replacing, gave the file another inode number on FUSE
        mounts such as bindfs, and the extraction's check of it then failed): the window
        left is that of two system calls, not the download's. Refused, the partial and its
        record stay: the next pull fetches nothing again."""
        # (Only where nothing was there: a copy drivestage staged is replaced, as decided,
        # edited or not: a pull puts a changed staged copy back to Drive's bytes, by design.)
        if self._new and os.path.lexists(self.target):
            raise self._appeared()
        os.replace(self.partial, self.target)

    def _appeared(self) -> LocalFileError:
        return LocalFileError(
            f"{self.target} was made while {self.where} downloaded (by another program?) and "
            f"is not replaced; the download waits beside it, verified: move that file away "
            f"and pull again (nothing is fetched again), or pull again with --force to "
            f"replace it")

    def _check_unchanged(self) -> None:
        """After a mismatch: the file on Drive is still the one this download is of (one
        metadata call). A new version of the same size (a checkpoint of the same model) mixes
        into the pieces fetched after it came; downloading it again from zero would fetch the
        new version whole, and fail for good against the old checksum."""
        now, then = self.store.stat(self.entry), self.entry
        changes = [(name, was, became) for name, was, became in
                   (("size", then.size, now.size), ("md5", _low(then.md5), _low(now.md5)),
                    ("sha256", _low(then.sha256), _low(now.sha256)))
                   if was is not None and became is not None and was != became]
        if changes:
            name, was, became = changes[0]
            raise RemoteChangedError(f"{self.where} {self.store.changed_while_read} "
                                     f"({name} {was} became {became}); run again")

    def _drop(self, run: Pass) -> None:
        """Another program changed the partial (:class:`PartialChangedError`): its record
        names bytes that are gone, so both go, and the next pull starts over."""
        run.close()  # first: it saves the record, which then goes too
        remove_partial(self.partial)

    def identity(self) -> Optional[os.stat_result]:
        """The partial file the download writes and hashes (None before it is open): a
        reader that opens it by name checks it got this one."""
        return self._run.identity if self._run is not None else None

    def _check_moved(self, identity: os.stat_result) -> os.stat_result:
        """The file just given its final name is the one that was hashed: whoever can write
        DEST could have put another at the partial's name meanwhile (which the rename then
        brought into place). That one is removed again, and said."""
        try:
            here = os.lstat(self.target)
        except OSError:
            here = None
        if here is not None and os.path.samestat(here, identity):
            return here
        if here is not None:
            unlink(self.target)
        raise DestChangedError(
            f"{self.partial}, the download of {self.where}, was replaced by another file "
            "while it downloaded; is another program writing there? Nothing was staged: "
            "pull again")

    def forget(self, start: int, end: int) -> None:
        """Stop, and drop ``[start, end)`` from the partial's record: bytes that a decision
        was made on before anything verified them, which a rerun fetches again instead of
        trusting (and deciding the same way for good)."""
        assert self._run is not None
        self._run.close()
        with self.lock:
            self._run.done.remove(start, end)
            self._run.done.save()

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


def _low(checksum: Optional[str]) -> Optional[str]:
    return checksum.lower() if checksum else None


__all__ = ["Download", "DownloadResult", "download", "partial_path", "partial_size",
           "ranges_path", "record_temps", "remove_partial", "stale_partials", "verify_file",
           "verify_held"]

