"""The member list of an archive: read once, normalised into :class:`Entry` rows.

Names are cleaned here (``a/b/c``; absolute paths, ``..`` and NUL refused); the rules that
need the whole list (duplicates, links, reserved names) are in :mod:`.validation`.
"""
from __future__ import annotations

import bz2
import copy
import functools
import gzip
import io
import lzma
import os
import re
import stat
import struct
import tarfile
import threading
import time
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO, Callable, Iterable, Optional, cast

from drivestage.errors import ArchiveError, UnsafeArchiveError
from drivestage.extract.copying import decoded, zip_data_offset
from drivestage.extract.formats import ArchiveFile, ArrivingFile, archive_kind, compression, \
    open_archive
from drivestage.extract.tarinfo import BoundedInfo, advice
from drivestage.fork_drop import free_in_forks
from drivestage.interrupts import deferred
from drivestage.sizes import format_size

MAX_LINK_TARGET = 4096
#: The largest zip central directory read. ``zipfile`` reads it whole and keeps an object of
#: some hundreds of bytes per member (a member takes 46 bytes there and its name): 128 MiB
#: is about a million members with dataset-like names, and at most about 1.5 GB of memory.
MAX_ZIP_DIRECTORY = 128 << 20
#: The most members one archive may have: each is an object in memory until the merge (a tar.gz
#: of millions of empty members is a few MB and would take all the memory).
MAX_MEMBERS = 2_000_000
#: The end of a zip that holds its end records: the comment (up to 64 KiB), the end of
#: central directory record (22 bytes), the zip64 locator (20) and zip64 record (56).
EOCD_TAIL = (1 << 16) + 22 + 20 + 56
# tarfile's stream slices its buffer on every read: a big buffer makes header reads slow.
TAR_BUFSIZE = 64 * 1024
ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate",
               zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "lzma"}


@dataclass
class Entry:
    """One member, normalised; ``source`` is the ZipInfo/TarInfo it came from."""

    path: str
    kind: str                  # "file" | "dir" | "symlink" | "hardlink"
    size: int = 0              # uncompressed bytes
    mode: Optional[int] = None
    mtime: Optional[float] = None
    target: str = ""           # symlink target as stored; hardlink target, normalised
    source: object = None
    raw_offset: int = -1       # tar: where the bytes start (plain tars only)
    comp_size: int = 0
    written: Optional[os.stat_result] = None  # the file as written (fstat), for its record


_DRIVE_LETTER = re.compile(r"^[A-Za-z]:")


def ancestors(paths: Iterable[str]) -> set[str]:
    """Every folder above the clean member paths ``paths`` (``a`` and ``a/b`` for
    ``a/b/c``): one string split per path, as members of a folder share its ancestors."""
    out: set[str] = set()
    for path in paths:
        parent = path.rpartition("/")[0]
        while parent and parent not in out:  # once there, so are all above it
            out.add(parent)
            parent = parent.rpartition("/")[0]
    return out


def clean_name(raw: str, what: str = "member") -> str:
    """Normalise a member name to ``a/b/c``; refuse anything that could leave DEST."""
    if "\0" in raw:
        raise UnsafeArchiveError(f"{what} {raw!r} has a NUL byte in its name; refusing the archive")
    framed = f"/{raw}/"  # no part "", "." or "..", no "\\": already clean (nearly all names)
    if "//" not in framed and "/./" not in framed and "/../" not in framed and \
            "\\" not in raw and not _DRIVE_LETTER.match(raw):
        return raw
    name = raw.replace("\\", "/")
    if name.startswith("/") or _DRIVE_LETTER.match(name):
        raise UnsafeArchiveError(
            f"{what} {raw!r} has an absolute path; refusing to extract an archive that "
            "writes outside the destination")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(
            f"{what} {raw!r} contains '..' and could write outside the destination "
            "(zip-slip); refusing the archive")
    return "/".join(parts)


def _zip_mtime(info: zipfile.ZipInfo) -> float:
    """UTC mtime from the extended-timestamp extra field, else the DOS local time."""
    extra, i = info.extra, 0
    while i + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, i)
        if tag == 0x5455 and length >= 5 and extra[i + 4] & 1:
            return float(struct.unpack_from("<i", extra, i + 5)[0])
        i += 4 + length
    return _dos_time(info.date_time)


@functools.lru_cache(maxsize=4096)
def _dos_time(date_time: tuple[int, int, int, int, int, int]) -> float:
    # mktime reads the time zone again on every call (a stat of /etc/localtime when TZ is
    # unset): 50 ms for 20,000 members, who mostly share a handful of times.
    try:
        return time.mktime(date_time + (0, 0, -1))
    except (OverflowError, ValueError):
        return time.time()


class NeedsData(Exception):
    """A member list that needs member data (a zip's symlink targets are stored as data)."""


def _zip_entries(zf: zipfile.ZipFile, archive: str, fd: int = -1) -> list[Entry]:
    """The members of a zip open as ``fd``; ``fd=-1`` raises :class:`NeedsData` at a symlink
    (its target is member data, which a zip read only as far as its central directory
    lacks)."""
    check_count(len(zf.infolist()), archive)
    entries = []
    for info in zf.infolist():
        unix_mode = info.external_attr >> 16 if info.create_system == 3 else 0
        fmt = stat.S_IFMT(unix_mode)
        path = clean_name(info.filename)
        if info.header_offset < 0:  # the directory's own offset lies: nothing to pread
            raise ArchiveError(f"cannot read the zip {archive}: member {info.filename!r} "
                               f"starts at offset {info.header_offset}, before the file; the "
                               "archive is corrupt")
        if info.flag_bits & 0x1:
            raise ArchiveError(f"member {info.filename!r} of {archive} is encrypted; "
                               "drivestage cannot extract encrypted zips: decrypt it first")
        perm = unix_mode & 0o777 or None
        # is_dir() reads filename[-1]: an IndexError for a member with no name at all
        if info.filename.endswith("/") or fmt == stat.S_IFDIR:
            entries.append(Entry(path, "dir", mode=perm, mtime=_zip_mtime(info), source=info))
            continue
        if info.compress_type not in ZIP_METHODS:
            raise ArchiveError(
                f"member {info.filename!r} of {archive} uses zip compression method "
                f"{info.compress_type}, which cannot be read here; recompress the archive "
                "with standard deflate (zip -r)")
        if fmt == stat.S_IFLNK:
            if fd < 0:
                raise NeedsData(info.filename)
            target = _link_target(fd, info, archive)
            entries.append(Entry(path, "symlink", target=target, source=info))
            continue
        if fmt not in (0, stat.S_IFREG):
            raise UnsafeArchiveError(f"member {info.filename!r} of {archive} is a special file "
                                     f"(mode {oct(unix_mode)}); refusing the archive")
        entries.append(Entry(path, "file", size=info.file_size, mode=perm,
                              mtime=_zip_mtime(info), source=info, comp_size=info.compress_size))
    return entries


def _link_target(fd: int, info: zipfile.ZipInfo, archive: str) -> str:
    """A zip symlink member's target, its member data (``zipfile.read`` inflated it whole
    first, however short the target it declares: a bomb's gigabytes: attackpull33)."""
    if info.file_size > MAX_LINK_TARGET:
        raise ArchiveError(f"symlink member {info.filename!r} of {archive} has a "
                           f"{info.file_size}-byte target; the archive looks corrupt")
    start = zip_data_offset(fd, info.header_offset, info.filename, archive)
    data = b"".join(decoded(lambda n, pos: os.pread(fd, n, pos), start, info.compress_size,
                            info.compress_type, info.file_size, info.filename, archive))
    if len(data) != info.file_size or zlib.crc32(data) != info.CRC:
        raise ArchiveError(f"symlink member {info.filename!r} of {archive} cannot be read "
                           "(its size or CRC-32 is not the one its directory says); the "
                           "archive is corrupt")
    return data.decode("utf-8", "surrogateescape")


def _tar_entries(tf: tarfile.TarFile, archive: str, plain: bool, fd: int) -> list[Entry]:
    archive_size = os.fstat(fd).st_size
    entries: list[Entry] = []
    for m in tf:
        entries.append(tar_entry(m, archive, plain, archive_size))
        check_count(len(entries), archive)
    return entries


def check_count(members: int, archive: str) -> None:
    """Refuse an archive once its ``members``-th member is past :data:`MAX_MEMBERS`."""
    if members > MAX_MEMBERS:
        raise UnsafeArchiveError(
            f"{archive} has more than {MAX_MEMBERS:,} members, more than drivestage extracts "
            "from one archive; split it into smaller archives")


def _tar_time(m: tarfile.TarInfo) -> Optional[float]:
    """``m``'s mtime, or None (the time of writing) where no file can have it: a pax
    ``mtime=1e30`` or ``nan`` of a hostile or broken archive raised from ``os.utime`` out of
    the pull, a traceback (a time_t holds [-2**63, 2**63) seconds)."""
    t = float(m.mtime)
    return t if -2.0**63 <= t < 2.0**63 else None   # (False for NaN)


def tar_entry(m: tarfile.TarInfo, archive: str, plain: bool = False,
              archive_size: int = 0) -> Entry:
    """One tar member as an :class:`Entry` (``plain``: an uncompressed tar of
    ``archive_size`` bytes, whose file members are copied at their offsets)."""
    path = clean_name(m.name)
    mode = m.mode & 0o777
    if m.isdir():
        return Entry(path, "dir", mode=mode, mtime=_tar_time(m), source=m)
    if m.issym():
        return Entry(path, "symlink", target=m.linkname, source=m)
    if m.islnk():
        target = clean_name(m.linkname, what=f"hard link {m.name!r} to")
        return Entry(path, "hardlink", target=target, mtime=_tar_time(m), mode=mode,
                     source=m)
    if m.isreg():
        offset = m.offset_data if plain and not m.issparse() else -1
        if plain and not m.issparse() and m.offset_data + m.size > archive_size:
            raise ArchiveError(
                f"{archive} is truncated: member {m.name!r} needs bytes up to "
                f"{m.offset_data + m.size}, the file has {archive_size}; make the archive "
                "again and upload it")
        return Entry(path, "file", size=m.size, mode=mode, mtime=_tar_time(m), source=m,
                     raw_offset=offset, comp_size=m.size)
    raise UnsafeArchiveError(f"member {m.name!r} of {archive} is a device file or "
                             "FIFO; refusing the archive")


def zip_directory(archive: str, fd: int = -1,
                  wait: Optional[Callable[[int, int], None]] = None) -> list[Entry]:
    """The members of a zip read from its central directory only (the member data may not
    be there yet); raises :class:`NeedsData` for a zip with links, ArchiveError when the
    directory cannot be read. ``fd``: the zip open already (read through it, not by the
    name ``archive``, which messages show); ``wait``: see :class:`ArrivingFile`."""
    check_zip_directory(archive, fd, wait)
    try:
        if fd < 0:
            with zipfile.ZipFile(archive) as zf:
                return _zip_entries(zf, archive)
        if wait is not None:  # (closing it leaves fd open)
            with zipfile.ZipFile(cast(IO[bytes], ArrivingFile(fd, wait))) as zf:
                return _zip_entries(zf, archive)
        # A Ctrl-C between the dup and the file object that closes it left the duplicate
        # open for the notebook's lifetime; held back until the `finally` holds it.
        fh: Optional[IO[bytes]] = None
        try:
            with deferred():
                fh = os.fdopen(os.dup(fd), "rb")
            with zipfile.ZipFile(fh) as zf:
                return _zip_entries(zf, archive)
        finally:
            if fh is not None:
                fh.close()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ArchiveError(f"cannot read the zip {archive}: {exc}") from exc


def check_zip_directory(archive: str, fd: int = -1,
                        wait: Optional[Callable[[int, int], None]] = None) -> None:
    """Refuse a zip whose central directory is larger than :data:`MAX_ZIP_DIRECTORY`, before
    ``zipfile`` reads it whole (a hostile archive would otherwise take all the memory).
    ``fd``, ``wait``: see :func:`zip_directory`."""
    if fd >= 0 and wait is not None:   # (its failure is no unreadable file: raised)
        end = os.fstat(fd).st_size
        wait(max(0, end - EOCD_TAIL), end)
    try:
        if fd >= 0:
            size = os.fstat(fd).st_size
            tail = os.pread(fd, EOCD_TAIL, max(0, size - EOCD_TAIL))
        else:
            size = os.path.getsize(archive)
            with open(archive, "rb") as fh:
                fh.seek(max(0, size - EOCD_TAIL))
                tail = fh.read(EOCD_TAIL)
    except OSError:
        return  # zipfile says what is wrong with it
    declared = declared_directory_size(tail, size)
    if declared > MAX_ZIP_DIRECTORY:
        raise UnsafeArchiveError(
            f"{archive}: its central directory takes {format_size(declared)}, more than the "
            f"{format_size(MAX_ZIP_DIRECTORY)} drivestage reads (about a million members); "
            "split it into smaller archives")


def _end_records(tail: bytes) -> list[int]:
    """Where an end-of-central-directory record may start in ``tail``: zipfile looks for one
    without a comment in the last 22 bytes first, then takes the last signature (whose
    record's own fields may hold the signature again)."""
    found = []
    if len(tail) >= 22 and tail[-22:-18] == b"PK\x05\x06" and tail[-2:] == b"\0\0":
        found.append(len(tail) - 22)
    at = tail.rfind(b"PK\x05\x06")
    if at >= 0 and len(tail) - at >= 22 and at not in found:
        found.append(at)
    return found


def _zip64_record(tail: bytes, at: int, size: int) -> list[int]:
    """Where the zip64 end record of the end record at ``at`` may be: right before its
    locator (where zipfile reads it) and where the locator points."""
    loc = at - 20
    if loc < 0 or tail[loc:loc + 4] != b"PK\x06\x07":
        return []
    (pointed,) = struct.unpack_from("<Q", tail, loc + 8)
    out = []
    for rec in (loc - 56, pointed - (size - len(tail))):
        if 0 <= rec <= len(tail) - 56 and tail[rec:rec + 4] == b"PK\x06\x06" and rec not in out:
            out.append(rec)
    return out


def _declared_directory_sizes(tail: bytes, size: int) -> list[int]:
    """Every central directory size the end records in ``tail`` declare (zip readers of
    different Python versions pick among them differently)."""
    sizes = []
    for at in _end_records(tail):
        wide = [struct.unpack_from("<Q", tail, rec + 40)[0]
                for rec in _zip64_record(tail, at, size)]
        (own,) = struct.unpack_from("<I", tail, at + 12)
        # 0xFFFFFFFF says "see the zip64 record" (Go's archive/zip writes it in every field
        # of a zip64 archive: refused as a 4 GiB directory, attackpull33); zipfile reads
        # the zip64 record's where there is one.
        if own != 0xFFFFFFFF or not wide:
            sizes.append(own)
        sizes += wide
    return sizes


def declared_directory_size(tail: bytes, size: int) -> int:
    """The largest central directory size the end records in ``tail`` (a zip's last bytes,
    ending at ``size``) declare: what :func:`check_zip_directory` holds to the cap."""
    return max(_declared_directory_sizes(tail, size), default=0)


def zip_directory_start(tail: bytes, size: int) -> Optional[int]:
    """Where a zip's central directory starts, from the file's last bytes (``tail``, which
    end at ``size``); None when they hold no end-of-central-directory record. With zip64
    end records (a zip of more than 65,535 members has them even when the end record's own
    fields are exact), zip readers take the directory from those: the earliest start any
    of them gives, so that the bytes fetched from there hold the directory either way."""
    ends = _end_records(tail)
    if not ends:
        return None
    at = ends[0]
    cd_size, cd_offset = struct.unpack_from("<II", tail, at + 12)
    base = size - len(tail)
    starts = [base + rec - struct.unpack_from("<Q", tail, rec + 40)[0]
              for rec in _zip64_record(tail, at, size)]
    if cd_offset != 0xFFFFFFFF and cd_size != 0xFFFFFFFF:
        starts.append(base + at - cd_size)  # (data before the zip shifts all of them)
    valid = [s for s in starts if 0 <= s <= base + at]
    return min(valid) if valid else None


class _StreamedTar(tarfile.TarFile):
    """A tar read front to back that closes what it reads from (see :func:`open_tar_stream`)."""

    owned: "list[io.IOBase]" = []
    tarinfo = BoundedInfo

    def close(self) -> None:
        try:
            super().close()
        finally:
            for f in reversed(self.owned):
                f.close()


def open_tar_stream(src: "str | io.RawIOBase") -> tarfile.TarFile:
    """A tar (plain, gzip, bzip2 or xz) read front to back from a path or a raw file object,
    decompressed by the gzip / bz2 / lzma readers, whose output per read is bounded:
    tarfile's own stream (``r|*``) decompresses each block of input whole and copies what
    is left of it on every read, minutes of CPU for a small archive of a few hundred MB of
    zeros (a bomb the free-space check would refuse). Closing it closes what it opened."""
    raw = open(src, "rb", buffering=0) if isinstance(src, str) else src
    owned: list[io.IOBase] = [io.BufferedReader(raw, TAR_BUFSIZE)]
    try:
        buffered = owned[0]
        assert isinstance(buffered, io.BufferedReader)
        kind = compression(buffered.peek(6)[:6])
        if kind == "gz":
            owned.append(gzip.GzipFile(fileobj=buffered, mode="rb"))
        elif kind == "bz2":
            owned.append(bz2.BZ2File(buffered))
        elif kind == "xz":
            owned.append(lzma.LZMAFile(buffered))
        tf = _StreamedTar.open(fileobj=cast(IO[bytes], owned[-1]), mode="r|",
                               bufsize=TAR_BUFSIZE)
    except BaseException:
        for f in reversed(owned):
            f.close()
        raise
    assert isinstance(tf, _StreamedTar)
    tf.owned = owned
    return tf


_Key = tuple[str, int, int, int, int]
_LISTINGS: "dict[_Key, tuple[str, list[Entry]]]" = {}
_LISTINGS_LOCK = free_in_forks(threading.Lock())


def list_members(archive: str, fd: int = -1) -> tuple[str, list[Entry]]:
    """``(how to read it, members)``; remembered per file version, so that
    :func:`extracted_size` followed by :func:`extract_archive` reads a compressed
    tar's member list once, not twice. ``fd``: the archive open already (read through it
    alone: the file its caller checked; ``archive`` only names it)."""
    if fd < 0:
        try:
            fd = open_archive(archive)
        except OSError:
            _open_listing(archive, -1)  # says what is wrong with it
            raise
        try:
            return list_members_of(archive, fd)
        finally:
            os.close(fd)
    return list_members_of(archive, fd)


def list_members_of(archive: str, fd: int) -> tuple[str, list[Entry]]:
    try:
        st = os.fstat(fd)
        # The ctime too: a local original extracted where it lies (stage_original) may be
        # rewritten in place with its old mtime put back; no user sets a ctime.
        key: Optional[_Key] = (os.path.abspath(archive), st.st_size, st.st_mtime_ns, st.st_ino,
                               st.st_ctime_ns)
    except OSError:
        key = None
    with _LISTINGS_LOCK:
        if key is not None and key in _LISTINGS:
            kind, entries = _LISTINGS[key]
            return kind, [copy.copy(e) for e in entries]  # each extraction notes its own
    kind, handle, entries = _open_listing(archive, fd)
    handle.close()  # type: ignore[attr-defined]
    if key is not None:
        with _LISTINGS_LOCK:
            while len(_LISTINGS) >= 4:
                _LISTINGS.pop(next(iter(_LISTINGS)))
            _LISTINGS[key] = (kind, [copy.copy(e) for e in entries])
    return kind, entries


def _open_listing(archive: str, fd: int) -> tuple[str, object, list[Entry]]:
    """Read ``archive``'s whole member list through ``fd`` (-1: it could not be opened,
    which is said); the caller closes the handle."""
    kind = archive_kind(archive, fd) if fd >= 0 else None  # (-1: it could not be opened)
    if kind is None:
        if not os.path.exists(archive):
            raise ArchiveError(f"archive {archive} does not exist")
        raise ArchiveError(f"{archive} is not a zip or tar archive (nor tar.gz/.tgz, .tar.bz2, "
                           ".tar.xz) or it is corrupt; check the file, or make it again and "
                           "upload it")
    if kind == "zip":
        check_zip_directory(archive, fd)
        try:
            zf = zipfile.ZipFile(cast(IO[bytes], ArchiveFile(fd)))
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise ArchiveError(f"cannot read the zip {archive}: {exc}; it is probably truncated "
                               "or corrupt: make the archive again and upload it") from exc
        try:
            return kind, zf, _zip_entries(zf, archive, fd)
        except BaseException:
            zf.close()
            raise
    compressed = compression(os.pread(fd, 6, 0)) is not None
    # Plain tars: headers read with seeks, members copied at known offsets (in parallel).
    # Compressed tars: one pass to list and validate, a second to write (both streamed).
    try:
        # A plain tar's headers are read with seeks past the members: unbuffered, each
        # read takes its 512-byte blocks alone (a 64 KiB buffer read 16x the bytes).
        tf = open_tar_stream(ArchiveFile(fd)) if compressed else tarfile.open(
            fileobj=cast(IO[bytes], ArchiveFile(fd)), mode="r:", tarinfo=BoundedInfo)
    except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
        raise ArchiveError(f"cannot read the tar {archive}: {exc}; {advice(exc)}") from exc
    try:
        try:
            entries = _tar_entries(tf, archive, not compressed, fd)
        except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError) as exc:
            if isinstance(exc, (ArchiveError, UnsafeArchiveError)):
                raise
            raise ArchiveError(f"cannot read the tar {archive}: {exc}; {advice(exc)}") from exc
        # GNU sparse members have no single byte range: stream such a tar too.
        streamed = compressed or any(e.kind == "file" and e.raw_offset < 0 for e in entries)
        return ("stream" if streamed else "tar"), tf, entries
    except BaseException:
        tf.close()
        raise
