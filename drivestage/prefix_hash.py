"""The hash of a download's contiguous prefix, as it grows (a part of
:class:`drivestage.streams.Pass`).

A thread of its own hashes the partial file front to back while the streams fill it:
blocks just written right where the hash has got to are handed over as they are (no second
copy), the rest is read back from the page cache. The checksum is the one the download is
verified with (:mod:`drivestage.checksums`; md5 when none is given).
"""
from __future__ import annotations

import collections
import hashlib
import os
from typing import Any, Optional

from drivestage.checksums import Checksum
from drivestage.errors import LocalFileError
from drivestage.interrupts import Monitor
from drivestage.partials import Ranges
from drivestage.store import RemoteEntry

MiB = 1024 * 1024
#: Bytes read back from the partial at a time.
READ_BLOCK = 4 * MiB
#: Blocks (of up to 1 MiB) waiting to be hashed from memory, at most.
FEED_MAX = 16


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
            raise LocalFileError(f"{partial}, the download of {self.dl.where}, got shorter "
                                 f"while it downloaded (it ends before byte {pos}, which was "
                                 "written); is another program writing there? Pull again")
        return n

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

