"""Archive formats: which files are zips or tars (by content), and how a tar is compressed;
an archive opened once (:func:`open_archive`) and read through that descriptor alone
(:class:`ArchiveFile`)."""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import zipfile
from typing import IO, Callable, Optional, Union, cast

from drivestage.errors import DestChangedError

PathLike = Union[str, "os.PathLike[str]"]


class ArchiveFile(io.RawIOBase):
    """A file object over an open archive's descriptor, read by position (``pread``): any
    number of them share one descriptor, each with its own position (a ``dup`` shares one
    offset between threads). Closing it leaves the descriptor open: its opener closes it."""

    def __init__(self, fd: int):
        super().__init__()
        self.fd, self.pos = fd, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buf: "memoryview | bytearray") -> int:  # type: ignore[override]
        n = os.preadv(self.fd, [buf], self.pos)
        self.pos += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos,
                io.SEEK_END: os.fstat(self.fd).st_size}[whence]
        if base + offset < 0:
            raise OSError(22, "negative seek position")
        self.pos = base + offset
        return self.pos

    def tell(self) -> int:
        return self.pos


class ArrivingFile(ArchiveFile):
    """An :class:`ArchiveFile` over a file still downloading: each read first waits for its
    bytes (``wait(start, end)`` returns once they are there, or raises). What zipfile
    reads of a zip's end is not only the tail fetched first: a long comment puts the zip64
    records before it, where a partial file holds zeros until the streams bring them."""

    def __init__(self, fd: int, wait: Callable[[int, int], None]):
        super().__init__(fd)
        self.wait = wait

    def readinto(self, buf: "memoryview | bytearray") -> int:  # type: ignore[override]
        self.wait(self.pos, self.pos + len(buf))
        return super().readinto(buf)


def open_archive(archive: str, identity: Optional[os.stat_result] = None) -> int:
    """``archive`` opened for reading. With ``identity`` (the file whose md5 was verified):
    only while the file opened is that very one, unchanged (:func:`check_unchanged`)."""
    fd = os.open(archive, os.O_RDONLY | os.O_CLOEXEC)
    if identity is not None:
        try:
            check_unchanged(fd, archive, identity)
        except BaseException:
            os.close(fd)
            raise
    return fd


def check_unchanged(fd: int, archive: str, identity: os.stat_result) -> None:
    """Raise :class:`DestChangedError` unless ``fd`` is the file ``identity`` describes
    (device, inode, size, mtime, ctime: every write moves the ctime): a file renamed over
    it, its folder swapped, or a write into it since its md5 was verified. Checked when it
    is opened and again once its members are written, before they reach DEST."""
    st = os.fstat(fd)
    if not os.path.samestat(st, identity) or (st.st_size, st.st_mtime_ns, st.st_ctime_ns) != (
            identity.st_size, identity.st_mtime_ns, identity.st_ctime_ns):
        raise DestChangedError(f"{archive} changed while it was read (another program "
                               "writes it?); nothing of it is extracted")

ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")


def looks_like_tar_header(block: bytes) -> bool:
    """True for a ustar/gnu/v7 header block (checksum valid) or an all-zero end block."""
    if len(block) < 512:
        return False
    if block[257:262] == b"ustar":
        return True
    if not block.strip(b"\0"):
        return True  # an empty tar is two zero blocks
    field = block[148:156].split(b"\0", 1)[0].strip()
    try:
        stored = int(field or b"x", 8)
    except ValueError:
        return False
    computed = sum(block[:148]) + 8 * 32 + sum(block[156:512])
    return stored == computed


def compression(head: bytes) -> Optional[str]:
    """The compression of a tar stream by its magic bytes, or None."""
    if head[:2] == b"\x1f\x8b":
        return "gz"
    if head[:3] == b"BZh":
        return "bz2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    return None


#: Names a folder pull treats as archives (a ``.pt`` checkpoint or a ``.docx`` is a zip too,
#: but not one to unpack).
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


def archive_kind(path: PathLike, fd: int = -1) -> Optional[str]:
    """``"zip"``, ``"tar"`` (plain, gzip, bzip2 or xz) or None, by content, not by name.
    ``fd``: the archive open already (read through it, not by the name ``path``)."""
    def source() -> Union[PathLike, IO[bytes]]:
        return path if fd < 0 else cast(IO[bytes], ArchiveFile(fd))

    try:
        if fd >= 0:
            head = os.pread(fd, 512, 0)
        else:
            with open(path, "rb") as fh:
                head = fh.read(512)
    except OSError:
        return None
    if head[:4] in ZIP_MAGICS:
        return "zip"
    opener = {"gz": gzip.open, "bz2": bz2.open, "xz": lzma.open, None: None}[compression(head)]
    if opener is not None:
        try:
            with opener(source(), "rb") as f:
                head = f.read(512)
        except (OSError, EOFError, lzma.LZMAError):
            return None
    if looks_like_tar_header(head):
        return "tar"
    if opener is None and zipfile.is_zipfile(source()):
        return "zip"  # e.g. a self-extracting zip: data before the first member
    return None
