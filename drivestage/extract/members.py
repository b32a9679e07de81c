"""The member list of an archive: read once, normalised into :class:`Entry` rows.

Names are cleaned as they are read (``a/b/c``; absolute paths, ``..`` and NUL refused, a
path too deep or too long: :mod:`.names`), and counted toward the member cap's memory
(:class:`Tally`); the rules that need the whole list (duplicates, links, reserved names) are
in :mod:`.validation`.
"""
from __future__ import annotations

import lzma
import os
import stat
import sys
import tarfile
import threading
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO, Callable, Iterator, Optional, cast

from drivestage.errors import ArchiveError, DriveStageError, UnsafeArchiveError
from drivestage.extract.copying import Written, decoded, zip_data_offset
from drivestage.extract.formats import ArchiveFile, ArrivingFile, archive_kind, compression, \
    open_archive
from drivestage.extract.tarinfo import BoundedInfo, advice, each_member
from drivestage.extract.zip_times import zip_mtime as _zip_mtime
from drivestage.extract.names import check_reach, new_folders
# (Re-exported: read and patched here by their callers and tests.)
from drivestage.extract.names import ancestors as ancestors, clean_name as clean_name
from drivestage.extract.tarinfo import open_tar_stream as open_tar_stream
from drivestage.extract.zip_ends import EOCD_TAIL as EOCD_TAIL
from drivestage.extract.zip_ends import declared_directory_size as declared_directory_size
from drivestage.extract.zip_ends import zip_directory_start as zip_directory_start
from drivestage.sizes import format_size
from drivestage.fork_drop import free_in_forks
from drivestage.interrupts import deferred

MAX_LINK_TARGET = 4096
#: The largest zip central directory read. ``zipfile`` reads it whole (a member takes 46
#: bytes there and its name: 128 MiB is about a million members with dataset-like names),
#: and each member's ``ZipInfo`` is let go as soon as it is read (:class:`_Entries`).
MAX_ZIP_DIRECTORY = 128 << 20
#: The most members one archive may have: each is an :class:`Entry` in memory until the merge
#: (a tar.gz of millions of empty members is a few MB and would take all the memory), and
#: its record after. An extraction takes at most :data:`BYTES_PER_MEMBER` a member, so that
#: the largest archive accepted stays under 1 GB (a Colab VM has 12 GB); ImageNet's
#: 1,281,167 training images fit in one archive.
MAX_MEMBERS = 1_500_000
#: The most memory an extraction takes per member above its base (peak RSS; names of 20
#: bytes, a longer name costs its length more): 510-550 bytes measured, for a zip and for a
#: tar.gz, held here with margin by ``tests/test_extractmem46_peak.py``. It was 1.8-2.2 KB
#: (each member's ZipInfo or TarInfo kept to the end, a copy of each entry, a stat_result
#: per file: extractmem46). A pull's stamp and journal rows come on top (``pull -x``: about
#: 1 KB a member in all).
BYTES_PER_MEMBER = 640
#: What a member's strings take in that cost: its name of 20 characters, also its path. A
#: longer name, a cleaned path besides it, a link's target are charged what they take more
#: (:class:`Tally`): a tar's pax header names a member in up to 1 MiB, and a tar.gz of 1.4 MB
#: of 20,000 members of 3.8 KB names took 4.5 KB a member, 6 GB at the member cap (attack47).
_STRINGS_COUNTED = sys.getsizeof("x" * 20)
ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate",
               zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "lzma"}


@dataclass(slots=True, weakref_slot=True)   # (8 B: the tests see a tree let go)
class Entry:
    """One member, normalised, with what its checks and its writing need and no more: the
    ``ZipInfo`` or ``TarInfo`` it came from (about 0.5 KB each, with their strings and
    tuples) is let go once it is read (see :data:`MAX_MEMBERS`)."""

    path: str
    kind: str                  # "file" | "dir" | "symlink" | "hardlink"
    size: int = 0              # uncompressed bytes
    mode: Optional[int] = None
    mtime: Optional[float] = None
    target: str = ""           # symlink target as stored; hardlink target, normalised
    raw_offset: int = -1       # tar: where the bytes start (plain tars only)
    comp_size: int = 0
    offset: int = -1           # where its header starts: a zip's local header, a tar's
    method: int = 0            # a zip's compression method (zipfile.ZIP_*); 0 in a tar
    crc: Optional[int] = None  # a zip's CRC-32 of the member's bytes
    name: str = ""             # the name as the archive has it (messages; often ``path``)
    # The file as written, for its record (:attr:`written`): three slots, not a tuple (64
    # bytes more a member; the numbers themselves go on into the record).
    written_size: int = -1
    written_mtime_ns: int = 0
    written_ino: int = 0

    @property
    def written(self) -> Optional[Written]:
        """The file as written (size, mtime_ns, inode), or None before it is."""
        if self.written_size < 0:
            return None
        return (self.written_size, self.written_mtime_ns, self.written_ino)

    @written.setter
    def written(self, st: Optional[Written]) -> None:
        self.written_size, self.written_mtime_ns, self.written_ino = st or (-1, 0, 0)

    def unwritten(self) -> "Entry":
        """A copy with nothing written (a remembered listing, handed to another
        extraction)."""
        return Entry(self.path, self.kind, self.size, self.mode, self.mtime, self.target,
                     self.raw_offset, self.comp_size, self.offset, self.method, self.crc,
                     self.name)


class NeedsData(Exception):
    """A member list that needs member data (a zip's symlink targets are stored as data)."""


class _Entries:
    """What stands for ``ZipFile.filelist`` while a zip is listed (:class:`_ListedZip`):
    each ``ZipInfo`` zipfile reads is made an :class:`Entry` at once and let go. zipfile
    keeps them all, 0.6 KB a member with their names, tuples and extra fields: 1.2 GB for
    the members an archive may have, before any was let go."""

    def __init__(self, archive: str, fd: int):
        self.archive, self.fd, self.tally = archive, fd, Tally(archive)
        self.entries: list[Entry] = []

    def append(self, info: zipfile.ZipInfo) -> None:
        check_count(len(self.entries) + 1, self.archive)
        self.entries.append(self.tally.add(_zip_entry(info, self.archive, self.fd)))

    def __iter__(self) -> Iterator[zipfile.ZipInfo]:
        return iter(())   # (none kept: a zipfile that goes through them finds none)

    def __len__(self) -> int:
        return 0


class _Forgotten(dict[str, zipfile.ZipInfo]):
    """What stands for ``ZipFile.NameToInfo`` while a zip is listed: keeps nothing."""

    def __setitem__(self, name: str, info: zipfile.ZipInfo) -> None:
        pass


class _ListedZip(zipfile.ZipFile):
    """A zip opened only to list its members: ``listing.entries`` once it is open (see
    :class:`_Entries`; ``infolist()`` is empty). An error of a member (unsafe, encrypted,
    its link's target unreadable) is raised as it is, from the constructor."""

    def __init__(self, file: "str | IO[bytes]", listing: _Entries):
        self.listing = listing
        super().__init__(file)

    def _RealGetContents(self) -> None:
        setattr(self, "filelist", self.listing)
        self.NameToInfo = _Forgotten()
        getattr(super(), "_RealGetContents")()


def _zip_listing(file: "str | IO[bytes]", archive: str, fd: int = -1) -> list[Entry]:
    """The members of the zip ``file`` (``archive`` names it), read from its central
    directory (see :func:`_zip_entry` for ``fd``)."""
    listing = _Entries(archive, fd)
    with _ListedZip(file, listing):
        return listing.entries


def _zip_entry(info: zipfile.ZipInfo, archive: str, fd: int = -1) -> Entry:
    """One member of a zip open as ``fd``; ``fd=-1`` raises :class:`NeedsData` at a
    symlink (its target is member data, which a zip read only as far as its central
    directory lacks)."""
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
        return Entry(path, "dir", mode=perm, mtime=_zip_mtime(info), offset=info.header_offset,
                     method=info.compress_type, name=info.filename)
    if info.compress_type not in ZIP_METHODS:
        raise ArchiveError(
            f"member {info.filename!r} of {archive} uses zip compression method "
            f"{info.compress_type}, which cannot be read here; recompress the archive "
            "with standard deflate (zip -r)")
    if fmt == stat.S_IFLNK:
        if fd < 0:
            raise NeedsData(info.filename)
        target = _link_target(fd, info, archive)
        return Entry(path, "symlink", target=target, offset=info.header_offset,
                     method=info.compress_type, crc=info.CRC, name=info.filename)
    if fmt not in (0, stat.S_IFREG):
        raise UnsafeArchiveError(f"member {info.filename!r} of {archive} is a special file "
                                 f"(mode {oct(unix_mode)}); refusing the archive")
    return Entry(path, "file", size=info.file_size, mode=perm, mtime=_zip_mtime(info),
                 comp_size=info.compress_size, offset=info.header_offset,
                 method=info.compress_type, crc=info.CRC, name=info.filename)


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
    tally = Tally(archive)
    for m in each_member(tf):
        entries.append(tally.add(tar_entry(m, archive, plain, archive_size)))
    return entries


def check_count(members: int, archive: str, spent: int = 0) -> None:
    """Refuse an archive once its ``members``-th member is past :data:`MAX_MEMBERS`, or
    once they take more memory than that many of short names (``spent``: what their
    strings take more, :class:`Tally`)."""
    if members > MAX_MEMBERS:
        raise UnsafeArchiveError(
            f"{archive} has more than {MAX_MEMBERS:,} members, more than drivestage extracts "
            "from one archive; split it into smaller archives")
    if members * BYTES_PER_MEMBER + spent > memory_cap():
        raise UnsafeArchiveError(
            f"{archive}: the names of its first {members:,} members (their folders, their "
            f"links' targets) are so long ({format_size(spent)} more than names of 20 characters) "
            f"that they take more than the {format_size(memory_cap())} of "
            f"memory drivestage lists one archive in ({MAX_MEMBERS:,} members of short names); "
            "split it into smaller archives")


def memory_cap() -> int:
    """The memory one archive's member list may take: :data:`MAX_MEMBERS` members of short
    names, and a 32nd more and 1 MiB for longer names and folders (a dataset's few: that
    many members in a thousand folders fit; any archive's few odd ones): under 1 GB."""
    return MAX_MEMBERS * BYTES_PER_MEMBER * 33 // 32 + (1 << 20)


class Tally:
    """The members of one archive listed so far (:meth:`add`), and what their strings take
    beyond :data:`BYTES_PER_MEMBER`: refused by :func:`check_count` past either cap."""

    __slots__ = ("archive", "members", "spent", "folders")

    def __init__(self, archive: str):
        self.archive, self.members, self.spent = archive, 0, 0
        self.folders: set[str] = set()   # (those seen: each charged once)

    def add(self, e: Entry) -> Entry:
        """``e``, counted (its strings' size: O(1), not their text read again), and its
        folders (:func:`~drivestage.extract.names.new_folders`); refused where it lies too
        deep or its path is too long (:func:`~drivestage.extract.names.check_reach`)."""
        check_reach(e.path, self.archive)
        self.members += 1
        self.spent += new_folders(e.path, self.folders)
        extra = sys.getsizeof(e.name) - _STRINGS_COUNTED
        if e.path is not e.name:
            extra += sys.getsizeof(e.path)
        if e.target:
            extra += sys.getsizeof(e.target) - _STRINGS_COUNTED
        self.spent += max(0, extra)
        check_count(self.members, self.archive, self.spent)
        return e


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
        return Entry(path, "dir", mode=mode, mtime=_tar_time(m), offset=m.offset, name=m.name)
    if m.issym():
        return Entry(path, "symlink", target=m.linkname, offset=m.offset, name=m.name)
    if m.islnk():
        target = clean_name(m.linkname, what=f"hard link {m.name!r} to")
        return Entry(path, "hardlink", target=target, mtime=_tar_time(m), mode=mode,
                     offset=m.offset, name=m.name)
    if m.isreg():
        offset = m.offset_data if plain and not m.issparse() else -1
        if plain and not m.issparse() and m.offset_data + m.size > archive_size:
            raise ArchiveError(
                f"{archive} is truncated: member {m.name!r} needs bytes up to "
                f"{m.offset_data + m.size}, the file has {archive_size}; make the archive "
                "again and upload it")
        return Entry(path, "file", size=m.size, mode=mode, mtime=_tar_time(m),
                     raw_offset=offset, comp_size=m.size, offset=m.offset, name=m.name)
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
            return _zip_listing(archive, archive)
        if wait is not None:  # (closing it leaves fd open)
            return _zip_listing(cast(IO[bytes], ArrivingFile(fd, wait)), archive)
        # A Ctrl-C between the dup and the file object that closes it left the duplicate
        # open for the notebook's lifetime; held back until the `finally` holds it.
        fh: Optional[IO[bytes]] = None
        try:
            with deferred():
                fh = os.fdopen(os.dup(fd), "rb")
            return _zip_listing(fh, archive)
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


_Key = tuple[str, int, int, int, int]
_LISTINGS: "dict[_Key, tuple[str, list[Entry]]]" = {}
_LISTINGS_LOCK = free_in_forks(threading.Lock())


def list_members(archive: str, fd: int = -1, keep: bool = True) -> tuple[str, list[Entry]]:
    """``(how to read it, members)``; remembered per file version, so that
    :func:`extracted_size` followed by :func:`extract_archive` reads a compressed
    tar's member list once, not twice. ``fd``: the archive open already (read through it
    alone: the file its caller checked; ``archive`` only names it). ``keep``: see
    :func:`list_members_of`."""
    if fd < 0:
        try:
            fd = open_archive(archive)
        except OSError:
            _open_listing(archive, -1)  # says what is wrong with it
            raise
        try:
            return list_members_of(archive, fd, keep)
        finally:
            os.close(fd)
    return list_members_of(archive, fd, keep)


def list_members_of(archive: str, fd: int, keep: bool = True) -> tuple[str, list[Entry]]:
    """:func:`list_members` of the archive open as ``fd``. ``keep``: remember the list for
    the next reader; an extraction passes False: it takes a remembered list (which is then
    forgotten), and remembers none (a folder pull's archives, one after the other, kept the
    lists of the last four, each up to :data:`MAX_MEMBERS` entries)."""
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
            kind, entries = _LISTINGS[key] if keep else _LISTINGS.pop(key)
            return kind, [e.unwritten() for e in entries]  # each extraction notes its own
    kind, handle, entries = _open_listing(archive, fd)
    handle.close()  # type: ignore[attr-defined]
    if key is not None and keep:
        with _LISTINGS_LOCK:
            while len(_LISTINGS) >= 4:
                _LISTINGS.pop(next(iter(_LISTINGS)))
            # The very entries (no copy of each: a second list of them doubled the peak),
            # which its reader may note what it writes in: a later reader gets copies with
            # nothing written (only ``written`` changes in an entry).
            _LISTINGS[key] = (kind, list(entries))
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
        listing = _Entries(archive, fd)
        try:
            zf = _ListedZip(cast(IO[bytes], ArchiveFile(fd)), listing)
        except DriveStageError:
            raise   # (a member's, said as it is)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise ArchiveError(f"cannot read the zip {archive}: {exc}; it is probably truncated "
                               "or corrupt: make the archive again and upload it") from exc
        return kind, zf, listing.entries
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
