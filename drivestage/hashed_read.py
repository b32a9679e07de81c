"""The original of a local archive read once, front to back, by a thread that hashes each
block as it reads it (:class:`_Reader`), for :mod:`drivestage.hashed_pass`, whose
extraction takes those very blocks."""
from __future__ import annotations

import hashlib
import os
import queue
import threading
from typing import Optional, Union

from drivestage.errors import ArchiveError
from drivestage.interrupts import SLICE, queue_get, start_thread

#: Bytes per read of the original (and per hash update).
CHUNK = 1 << 20
#: Blocks read and hashed ahead of the extraction (memory: this many CHUNKs at most).
_AHEAD = 8


class _OutOfOrder(ArchiveError):
    """A zip whose members overlap or are not where the stream is: the usual way then."""


class _Reader:
    """The original read once, front to back, by a thread that hashes each block as it reads
    it; :meth:`read` hands the same blocks on (the extraction's bytes are the hash's)."""

    def __init__(self, fd: int):
        self.fd = fd
        self.md5 = hashlib.md5()
        self.pos = 0                                  # bytes handed on so far
        self._buf = memoryview(b"")
        self._q: "queue.Queue[Union[bytes, BaseException, None]]" = queue.Queue(_AHEAD)
        self._stop = threading.Event()
        self._error: Optional[BaseException] = None
        self._ended = False
        self._thread = threading.Thread(target=self._run, name="drivestage-hash", daemon=True)
        try:
            start_thread(self._thread)
        except BaseException:
            # A Ctrl-C as it started (raised once it runs): nobody gets this reader to close
            # it, and its thread read on, from a descriptor its opener then closed (another
            # file's, reused), and once its queue was full waited for room for good.
            self._stop.set()
            raise

    def _block(self, offset: int) -> bytes:
        return os.pread(self.fd, CHUNK, offset)

    def _run(self) -> None:
        offset = 0
        try:
            while not self._stop.is_set():
                block = self._block(offset)
                if not block:
                    break
                self.md5.update(block)  # (hashlib lets go of the GIL for a block this big)
                offset += len(block)
                self._put(block)
            self._put(None)
        except BaseException as exc:  # read by the extraction's next read()
            self._put(exc)

    def _put(self, item: Union[bytes, BaseException, None]) -> None:
        while not self._stop.is_set():   # (once stopped, nobody takes it: close() waits not)
            try:
                return self._q.put(item, timeout=SLICE)
            except queue.Full:
                pass

    def read(self, n: int) -> memoryview:
        """At most ``n`` bytes, fewer at a block's end, none at the file's end."""
        if not self._buf:
            if self._error is not None:
                raise self._error
            if self._ended:
                return self._buf
            item = queue_get(self._q)   # (a Ctrl-C given elsewhere ends it: interrupts)
            if item is None:
                self._ended = True
                return self._buf
            if isinstance(item, BaseException):
                self._error = item
                raise item
            self._buf = memoryview(item)
        out, self._buf = self._buf[:n], self._buf[n:]
        self.pos += len(out)
        return out

    def exact(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n and (got := self.read(n - len(out))):
            out += got
        return bytes(out)

    def skip_to(self, offset: int) -> None:
        """Hash and drop what lies before ``offset``."""
        if offset < self.pos:
            raise _OutOfOrder(f"a member at {offset}, the stream is at {self.pos}")
        while self.pos < offset:
            if not self.read(offset - self.pos):
                raise ArchiveError(f"the file ends at {self.pos}, before offset {offset}")

    def digest(self) -> str:
        """The md5 of the whole file: what was not handed on yet is read (and hashed) now."""
        while self.read(CHUNK):
            pass
        return self.md5.hexdigest()

    def close(self) -> None:
        self._stop.set()   # (its puts give up) A read that never ends (a hung mount): waited
        self._thread.join(0.5)   # for a moment only; a Ctrl-C of the pull waited for good
