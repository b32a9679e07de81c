"""The byte reads of :class:`drivestage.drive.store.DriveStore` (a mixin; split from
store.py at its line cap): a file shortcut is read from its target, a whole file (a
sidecar) is md5-verified (:func:`drivestage.drive.media.checked_whole`)."""
from __future__ import annotations

import dataclasses
from typing import Iterator, Optional

from drivestage.drive.media import DEFAULT_CHUNK_SIZE, MediaReader, checked_whole
from drivestage.drive.resources import DriveEntry
from drivestage.drive.transport import Transport
from drivestage.errors import DanglingShortcutError
from drivestage.store import ByteSink, RemoteEntry


class ByteReads:
    """Ranged reads through :class:`MediaReader`; the store supplies what it names."""

    transport: Transport
    _reader: MediaReader
    _targets: dict[str, str]  # file shortcut id -> target id

    def describe(self, entry: RemoteEntry) -> str:  # the store's
        raise NotImplementedError

    def stat(self, entry: RemoteEntry) -> RemoteEntry:  # the store's
        raise NotImplementedError

    def _content(self, entry: RemoteEntry) -> RemoteEntry:
        """The entry whose bytes to read: a file shortcut's target (its md5 and size are
        the target's already)."""
        if entry.unreadable:
            raise DanglingShortcutError(entry.unreadable)
        target = entry.target_id if isinstance(entry, DriveEntry) and entry.target_id \
            else self._targets.get(entry.id)
        return dataclasses.replace(entry, id=target) if target else entry

    def fetch_range(self, entry: RemoteEntry, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of ``entry`` in one ranged GET, retried as a whole; the
        whole file (a sidecar) is verified against its md5 (:func:`media.checked_whole`)."""
        content, where = self._content(entry), self.describe(entry)
        data = self._reader.fetch_range(content, start, end, where)
        if start > 0 or end != entry.size:
            return data
        return checked_whole(data, entry, where, lambda: self._again(content, end, where),
                             lambda: self.stat(entry))

    def _again(self, content: RemoteEntry, end: int, where: str) -> bytes:
        """A whole file read again after a mismatch: asked of Drive, not of the address
        that served the bytes that did not verify."""
        self._reader.mismatched(content)
        return self._reader.fetch_range(content, 0, end, where)

    def read_into(self, entry: RemoteEntry, start: int, sink: ByteSink) -> int:
        """One long ranged GET from ``start`` to ``sink.limit()``, resumed after failures."""
        return self._reader.read_into(self._content(entry), start, sink, self.describe(entry))

    def mismatched(self, entry: RemoteEntry) -> None:
        """The store's (:meth:`drivestage.store.RemoteStore.mismatched`)."""
        self._reader.mismatched(self._content(entry))

    def requests_made(self) -> int:
        """Requests sent on this store's credentials so far."""
        return self.transport.calls

    def read_range(self, entry: RemoteEntry, start: int, end: int, *,
                   chunk_size: Optional[int] = None) -> Iterator[bytes]:
        """Stream bytes ``[start, end)``: one ranged GET per chunk, each chunk retried."""
        step = chunk_size or DEFAULT_CHUNK_SIZE
        for pos in range(start, end, step):
            yield self.fetch_range(entry, pos, min(end, pos + step))
