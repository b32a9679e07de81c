"""The hash of a download's contiguous prefix, as it grows (a part of
:class:`drivestage.streams.Pass`).

A thread of its own hashes the partial file front to back while the streams fill it:
blocks just written right where the hash has got to are handed over as they are (no second
copy), the rest is read back from the page cache. The checksum is the one the download is
verified with (:mod:`drivestage.checksums`; md5 when none is given). Once at the end, the
file on disk is checked to be the one hashed (:meth:`PrefixHash._check_on_disk`): another
program may have truncated it behind the hash.
"""
from __future__ import annotations

import collections
import hashlib
import os
from typing import Any, Optional

from drivestage import pool
from drivestage.checksums import Checksum
from drivestage.errors import LocalFileError, PartialChangedError
from drivestage.interrupts import Monitor
from drivestage.partials import Ranges
from drivestage.store import RemoteEntry

MiB = 1024 * 1024
#: Bytes read back from the partial at a time.
READ_BLOCK = 4 * MiB
#: Blocks (of up to 1 MiB) waiting to be hashed from memory, at most.
FEED_MAX = 16


def changed_error(partial: str, where: str, detail: str) -> PartialChangedError:
    """The error for bytes written to ``partial`` that are gone (``detail`` says which)."""
    return PartialChangedError(f"{partial}, the download of {where}, changed on disk while it "
                               f"downloaded ({detail}); is another program writing there? "
                               "Nothing was staged: pull again (the download starts over)")


def first_hole(fd: int, size: int) -> int:
    """Where the first hole of the file ``fd`` (``size`` bytes) begins: ``size`` when it has
    none, or the file system cannot say (lseek then answers the size, or fails)."""
    seek_hole = getattr(os, "SEEK_HOLE", None)
    if size <= 0 or seek_hole is None:
        return size
    try:
        return min(os.lseek(fd, 0, seek_hole), size)
    except OSError:
        return size


class PrefixHash:
    """The hash thread's half of a pass: :meth:`_hash` runs in the thread, :meth:`_offer`
    is called (the lock held) with each block a stream has just written."""

    # What it reads of the pass it is part of.
    lock: Monitor
    done: Ranges
    entry: RemoteEntry
    dl: Any                      # the download (streams.Owner)
    fd: int
    stopped: bool
    inflight: int                # writes under way (their bytes not yet counted)
    error: Optional[BaseException]

    def _init_hash(self, check: Optional[Checksum]) -> None:
        self.hash_name = check.name if check is not None else "md5"
        self.digest, self._digest = "", hashlib.new(self.hash_name)
        # Blocks just written where the hash has got to, handed to it as they are.
        self.feed: collections.deque[tuple[int, memoryview]] = collections.deque()
        self.hashed = self.feed_end = self.hash_claim = 0

    def _failed(self, exc: BaseException) -> None:  # pragma: no cover - Pass defines it
        raise NotImplementedError

    def _offer(self, offset: int, data: memoryview) -> None:
        """A block just written (the lock held): kept for the hash when it follows the
        blocks kept before, or where the hash is to read next, and there is room."""
        if len(self.feed) < FEED_MAX and \
                offset == (self.feed_end if self.feed else self.hash_claim):
            self.feed.append((offset, data))
            self.feed_end = offset + len(data)

    def _wait_for_hash(self) -> None:
        """After the last write: wait for the hash thread to reach the end of the file."""
        with self.lock:
            while self.error is None and self.hashed < self.entry.size:
                pool.check()   # (a thread of pool.each told to stop: streams._drive_streams)
                self.lock.wait(0.5)
            if self.error is not None:
                raise self.error

    def _hash(self) -> None:
        """The hash thread: :meth:`_hash_prefix`, whose failure stops the download (the
        main thread raises it; it waited for the digest for ever)."""
        try:
            self._hash_prefix()
        except BaseException as exc:
            self._failed(exc)

    def _read_back(self, buf: memoryview, pos: int) -> int:
        """Bytes of the partial at ``pos`` into ``buf``, which every one of was written."""
        partial = self.dl.partial
        try:
            n = os.preadv(self.fd, [buf], pos)
        except OSError as exc:
            raise LocalFileError(f"{partial}: cannot read back the download of "
                                 f"{self.dl.where} to verify it ({exc.strerror or exc}); "
                                 "pull again") from exc
        if not n:
            # Bytes written are missing: another program truncated the file. Without this the
            # hash asked again and again, at full CPU, for good.
            raise changed_error(partial, self.dl.where, f"it got shorter: it ends before "
                                f"byte {pos}, which was written")
        return n

    def _check_on_disk(self) -> None:
        """Once the whole file is hashed: the partial on disk holds what the hash saw.
        Another program may have truncated it behind the hash (which took those bytes from
        memory, or had read them back already): the streams' later writes made it long
        again, with a hole (zeros) there, and size and checksum matched Drive's. A fstat
        and a lseek; a file with a hole is hashed again from disk, and passes when that
        matches (some file systems store written zero blocks as holes: ZFS with
        compression)."""
        with self.lock:
            while self.inflight:  # a write still landing (a stream stopped meanwhile)
                self.lock.wait()
        size = self.entry.size
        have = os.fstat(self.fd).st_size
        if have != size:
            raise changed_error(self.dl.partial, self.dl.where,
                                f"it is {have} bytes long, not {size}")
        hole = first_hole(self.fd, size)
        if hole < size and self._digest_on_disk(size) != self.digest:
            raise changed_error(self.dl.partial, self.dl.where, f"bytes written at byte "
                                f"{hole} are gone: it holds a hole there")

    def _digest_on_disk(self, size: int) -> str:
        """The checksum of the partial's ``size`` bytes as they are on disk now."""
        digest = hashlib.new(self.hash_name)
        buf = memoryview(bytearray(READ_BLOCK))
        pos = 0
        while pos < size:
            n = self._read_back(buf[:min(READ_BLOCK, size - pos)], pos)
            digest.update(buf[:n])
            pos += n
        return digest.hexdigest()

    def _hash_prefix(self) -> None:
        """The hash of the contiguous prefix as it grows: blocks handed over by the stream that
        writes right where the hash has got to (no second copy), the rest read back from the
        page cache."""
        size = self.entry.size
        buf: Optional[memoryview] = None
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
                    return  # a failure or an interrupt: the hash is not needed any more
                if buf is None:
                    # One buffer for every read-back: a new block per read faulted in fresh
                    # pages each time (see heap.py), a GiB of them for a GiB read back.
                    buf = memoryview(bytearray(READ_BLOCK))
                n = self._read_back(buf[:min(READ_BLOCK, upto - pos)], pos)
                self._digest.update(buf[:n])
                pos += n
            with self.lock:
                self.hashed = pos
                self.lock.notify_all()
            if pos >= size:
                return

