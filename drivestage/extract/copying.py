"""Copying one member's bytes into a new file of the temporary folder: what the extraction
threads (:mod:`.writing`) and the worker processes (:mod:`.worker`) share.

Only light standard modules and :mod:`drivestage.errors` are imported here: a worker process
loads this and nothing heavier of the package (about 8 MB and 0.1 s of start-up less per
worker than all of :mod:`drivestage.extract`).
"""
from __future__ import annotations

import bz2
import lzma
import os
import struct
import threading
import zlib
from typing import Any, Callable, Iterator, NamedTuple, Optional, Protocol

from drivestage.errors import ArchiveError

try:
    # Intel's ISA-L computes the same CRC-32 about ten times as fast as zlib (36 against 3.4
    # GB/s on the development machine): a third of a core-second less per GiB extracted, on
    # cores the download and its hash share. Optional: ``pip install drivestage[fast]``.
    from isal.isal_zlib import crc32
except ImportError:  # pragma: no cover - platforms without its wheels
    from zlib import crc32

#: zip's compression methods (zipfile's numbers: zipfile itself is not imported here).
STORED, DEFLATED, BZIP2, LZMA = 0, 8, 12, 14


class TempDir(NamedTuple):
    """An extraction's temporary folder: ``fd`` reaches everything inside (never its name in
    DEST: see :mod:`.tempdir`, which makes it); ``path`` names it in messages."""

    fd: int
    path: str

    def join(self, rel: str) -> str:
        """What messages call ``rel`` inside the folder."""
        return os.path.join(self.path, rel)


#: A file as written (its ``fstat``): size, mtime_ns, inode; what its record needs, and no
#: more (a whole ``stat_result`` kept per member took 0.4 KB: see ``members.MAX_MEMBERS``).
Written = tuple[int, int, int]


def written_of(st: os.stat_result) -> Written:
    """What :data:`Written` keeps of ``st``."""
    return (st.st_size, st.st_mtime_ns, st.st_ino)


class Member(Protocol):
    """What copying reads of a member, and ``written``, which it sets (the file as written,
    for the member's record)."""

    path: str
    size: int
    mode: Optional[int]
    mtime: Optional[float]
    written: Optional[Written]


CHUNK = 1 << 20          # read/write buffer: few syscalls, bounded memory


class Progress:
    """Thread-safe forwarding of byte counts to the caller's callback."""

    def __init__(self, fn: Optional[Callable[[int], None]]):
        self.fn, self.lock = fn, threading.Lock()

    def __call__(self, n: int) -> None:
        if self.fn is not None and n:
            with self.lock:
                self.fn(n)


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` (a write may take part of it)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def file_mode(mode: Optional[int]) -> int:
    """A member file's mode: no setuid, setgid or sticky bit; its owner can always read and
    replace it."""
    return ((mode if mode is not None else 0o644) & 0o777) | 0o600


NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def create(root: TempDir, e: Member) -> int:
    """A new file for member ``e`` in the temporary folder ``root`` (never through a link,
    never over one)."""
    try:
        return os.open(e.path, NEW_FILE, file_mode(e.mode), dir_fd=root.fd)
    except OSError as exc:
        exc.filename = root.join(e.path)  # messages name the file, not its path inside
        raise


def finish_member(fd: int, e: Member, written: int, archive: str) -> None:
    """Check the length written, set the member's time, and note what the file is (its
    record: no path lookup later)."""
    if written != e.size:
        raise ArchiveError(f"member {e.path!r} of {archive} is truncated: got {written} of "
                           f"{e.size} bytes; the archive is incomplete: make the archive again and "
                           "upload it")
    if e.mtime is not None:
        os.utime(fd, (e.mtime, e.mtime))
    e.written = written_of(os.fstat(fd))


def zip_data_offset(afd: int, header_offset: int, name: str, archive: str) -> int:
    """Where the compressed bytes start of the zip member whose local header is at
    ``header_offset`` (``name``: what messages call the member)."""
    header = os.pread(afd, 30, header_offset)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise ArchiveError(f"member {name!r} of {archive}: bad local header at offset "
                           f"{header_offset}; the archive is truncated or corrupt")
    name_len, extra_len = struct.unpack_from("<HH", header, 26)
    return int(header_offset) + 30 + int(name_len) + int(extra_len)


#: Bytes read past a small member's local header beyond its data (:func:`zip_member_start`):
#: room for the header's name and extra field, which an extra field longer than that misses.
HEAD_ROOM = 512


def zip_member_start(afd: int, header_offset: int, comp_size: int, name: str,
                     archive: str) -> tuple[int, Optional[memoryview]]:
    """:func:`zip_data_offset`, and for a member of at most :data:`CHUNK` compressed bytes
    those bytes too, read with its local header in one ``pread`` (None when they are not
    all in it: read them as usual). A 20,000-member zip: 20,000 reads fewer."""
    if comp_size > CHUNK:
        return zip_data_offset(afd, header_offset, name, archive), None
    got = os.pread(afd, 30 + HEAD_ROOM + comp_size, header_offset)
    if len(got) < 30 or got[:4] != b"PK\x03\x04":
        raise ArchiveError(f"member {name!r} of {archive}: bad local header at offset "
                           f"{header_offset}; the archive is truncated or corrupt")
    name_len, extra_len = struct.unpack_from("<HH", got, 26)
    rel = 30 + name_len + extra_len
    data = memoryview(got)[rel:rel + comp_size] if rel + comp_size <= len(got) else None
    return int(header_offset) + rel, data


def copy_raw(afd: int, fd: int, e: Member, start: int, comp_size: int, method: int,
             crc_expected: Optional[int], archive: str, progress: Progress,
             read: Optional[Callable[[int, int], bytes]] = None) -> None:
    """Stream a stored or compressed (deflate, bzip2, lzma) byte range of the archive into
    ``fd``. ``read(n, pos)``: where the bytes come from instead of ``pread(afd)`` (an archive
    read once, front to back, and hashed as it is: :mod:`drivestage.hashed_pass`)."""
    if read is None:
        def read(n: int, pos: int) -> bytes:
            return os.pread(afd, n, pos)
    crc, written = 0, 0
    for data in decoded(read, start, comp_size, method, e.size, e.path, archive):
        written += len(data)
        if crc_expected is not None:
            crc = crc32(data, crc)
        write_all(fd, data)
        progress(len(data))
    finish_member(fd, e, written, archive)
    if crc_expected is not None and crc != crc_expected:
        raise ArchiveError(f"member {e.path!r} of {archive} fails its CRC-32 check "
                           f"(expected {crc_expected:08x}, got {crc:08x}); the archive is "
                           "corrupt: make the archive again and upload it")


def decoded(read: Callable[[int, int], bytes], start: int, comp_size: int, method: int,
            size: int, path: str, archive: str) -> Iterator[bytes]:
    """The bytes of a zip member (``method``: stored, deflate, bzip2 or lzma) whose
    ``comp_size`` compressed bytes start at ``start``, in pieces of at most :data:`CHUNK`,
    never more than ``size`` in all. ``zipfile`` decompresses a read of bzip2 or lzma whole:
    a few KB of bzip2 are gigabytes of zeros, the memory of a notebook gone for a member
    that declares one byte (attackpull33)."""
    decoder = _Decoder(method, path, archive) if method != STORED else None
    pos, remaining, written = start, comp_size, 0
    while remaining and not (decoder is not None and decoder.eof):
        buf = read(min(CHUNK, remaining), pos)
        if not buf:
            break
        pos += len(buf)
        remaining -= len(buf)
        for data in (decoder.feed(buf) if decoder is not None else (buf,)):
            written += len(data)
            if written > size:
                raise ArchiveError(f"member {path!r} of {archive} inflates past its declared "
                                   f"{size} bytes; the archive is corrupt (or a zip bomb)")
            if data:
                yield data
    if decoder is not None and method == DEFLATED and not decoder.eof:
        remaining = remaining or 1   # (a deflate stream ends itself: this one was cut off)
    if remaining and not (decoder is not None and decoder.eof):
        raise ArchiveError(f"member {path!r} of {archive} is truncated; the archive is "
                           "incomplete: make the archive again and upload it")


class _Decoder:
    """A zip member's decompressor that gives at most :data:`CHUNK` bytes per call, however
    much the input holds (deflate, bzip2, or lzma with zip's 4-byte header and properties)."""

    def __init__(self, method: int, path: str, archive: str):
        self.method, self.eof, self._head = method, False, b""
        self.path, self.archive = path, archive
        self._d: Any = None
        if method == DEFLATED:
            self._d = zlib.decompressobj(-15)
        elif method == BZIP2:
            self._d = bz2.BZ2Decompressor()
        elif method != LZMA:
            raise ValueError(f"compression method {method}")

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The bytes ``data`` decompresses to, a piece at a time."""
        try:
            yield from self._feed(data)
        except (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError) as exc:  # (bz2: OSError)
            raise ArchiveError(f"member {self.path!r} of {self.archive} is corrupt ({exc}); "
                               "download the archive again") from exc

    def _feed(self, data: bytes) -> Iterator[bytes]:
        if self._d is None:   # lzma: its properties first
            data = self._start(self._head + data)
            if self._d is None:
                return
        d = self._d
        if self.method == DEFLATED:
            yield d.decompress(data, CHUNK)
            while d.unconsumed_tail:
                yield d.decompress(d.unconsumed_tail, CHUNK)
            if d.eof:
                self.eof = True
                yield d.flush()
            return
        yield d.decompress(data, CHUNK)
        while not d.eof and not d.needs_input:
            yield d.decompress(b"", CHUNK)
        self.eof = d.eof

    def _start(self, data: bytes) -> bytes:
        """An lzma member's decompressor, once its header (version, properties' size) and
        properties are in (as zipfile reads them); the rest of ``data``."""
        if len(data) < 4 or len(data) < 4 + struct.unpack_from("<H", data, 2)[0]:
            self._head = data
            return b""
        end = 4 + struct.unpack_from("<H", data, 2)[0]
        props = data[4:end]
        if len(props) < 5:
            raise ValueError("lzma properties too short")
        lc, rest = props[0] % 9, props[0] // 9
        self._d = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[{
            "id": lzma.FILTER_LZMA1, "lc": lc, "lp": rest % 5, "pb": rest // 5,
            "dict_size": struct.unpack_from("<I", props, 1)[0]}])
        return data[end:]
