"""Safe, streaming extraction of zip, tar and compressed tar archives.

:func:`extract_archive` is all-or-nothing as far as DEST is concerned:

1. The whole member list is read and validated first. Absolute paths, ``..``
   components, NUL bytes, links leading outside DEST, members written through
   a symlink member, hard links to anything but an earlier file of the same
   archive, and device/FIFO members raise :class:`UnsafeArchiveError` naming the
   member; encrypted or unsupported members raise :class:`ArchiveError`.
   A member that is a file where DEST has a folder raises :class:`ArchiveError`.
   Nothing has been written at that point.
2. Free disk space is checked against the member sizes (each rounded up to a
   4 KiB block): :class:`DiskSpaceError` with the numbers, before writing.
3. Members are streamed (1 MiB buffers, bounded memory even for a zip bomb,
   whose output is capped at the declared size) into a hidden temporary folder
   inside DEST (``.drivestage-extract-<pid>-<random>``). Zip members and plain
   tar members are written by ``jobs`` threads over contiguous member ranges
   (zlib and file I/O release the GIL); compressed tars are one stream.
   CRC-32 is checked for zip members; a short read is :class:`ArchiveError`.
4. The tree is then merged into DEST as ``unzip`` does: a path DEST lacks arrives
   by one rename (a whole new ``VOCdevkit/`` at once), folders present on both
   sides are merged (VOC2007's and VOC2012's archives share ``VOCdevkit/``), and
   a file replaces the file at its path (renamed aside first, then deleted). A
   file never replaces a folder of DEST: that is refused in step 1. Nothing the
   archive does not contain is touched. A crash leaves at most a hidden
   temporary folder, which the next extraction into DEST removes, and some
   members already in place; the caller's stamp is what says "complete".

Symlinks whose target stays inside DEST are extracted as symlinks (this is
checked lexically up front, and again with ``realpath`` once they exist).
File modes are kept without setuid/setgid/sticky bits (and always owner
read/write); mtimes come from the archive. No per-file fsync: durability
against power loss is the stamp's job, not the extractor's.
"""
from __future__ import annotations

import bz2
import gzip
import logging
import lzma
import os
import posixpath
import re
import secrets
import shutil
import stat
import struct
import tarfile
import threading
import time
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Optional, Union

from drivestage.errors import ArchiveError, DiskSpaceError, UnsafeArchiveError
from drivestage.store import ProgressFn

log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
TEMP_PREFIX = ".drivestage-extract-"
OLD_PREFIX = ".drivestage-replaced-"
_CHUNK = 1 << 20          # read/write buffer: few syscalls, bounded memory
_BLOCK = 4096             # disk allocation unit assumed by the space check
_MAX_LINK_TARGET = 4096
# tarfile's stream slices its buffer on every read: a big buffer makes header reads slow.
_TAR_BUFSIZE = 64 * 1024

_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate",
                zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "lzma"}


# ---------------------------------------------------------------------------------------
# Format detection


def _looks_like_tar_header(block: bytes) -> bool:
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


def _compression(head: bytes) -> Optional[str]:
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


def archive_kind(path: PathLike) -> Optional[str]:
    """``"zip"``, ``"tar"`` (plain, gzip, bzip2 or xz) or None, by content, not by name."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return None
    if head[:4] in _ZIP_MAGICS:
        return "zip"
    opener = {"gz": gzip.open, "bz2": bz2.open, "xz": lzma.open, None: None}[_compression(head)]
    if opener is not None:
        try:
            with opener(path, "rb") as f:
                head = f.read(512)
        except (OSError, EOFError, lzma.LZMAError):
            return None
    if _looks_like_tar_header(head):
        return "tar"
    if opener is None and zipfile.is_zipfile(path):
        return "zip"  # e.g. a self-extracting zip: data before the first member
    return None


# ---------------------------------------------------------------------------------------
# Member list


@dataclass
class _Entry:
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


def _clean_name(raw: str, what: str = "member") -> str:
    """Normalise a member name to ``a/b/c``; refuse anything that could leave DEST."""
    if "\0" in raw:
        raise UnsafeArchiveError(f"{what} {raw!r} has a NUL byte in its name; refusing the archive")
    name = raw.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
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
    try:
        return time.mktime(info.date_time + (0, 0, -1))
    except (OverflowError, ValueError):
        return time.time()


def _zip_entries(zf: zipfile.ZipFile, archive: str) -> list[_Entry]:
    entries = []
    for info in zf.infolist():
        unix_mode = info.external_attr >> 16 if info.create_system == 3 else 0
        fmt = stat.S_IFMT(unix_mode)
        path = _clean_name(info.filename)
        if info.flag_bits & 0x1:
            raise ArchiveError(f"member {info.filename!r} of {archive} is encrypted; "
                               "drivestage cannot extract encrypted zips: decrypt it first")
        perm = unix_mode & 0o777 or None
        if info.is_dir() or fmt == stat.S_IFDIR:
            entries.append(_Entry(path, "dir", mode=perm, mtime=_zip_mtime(info), source=info))
            continue
        if info.compress_type not in _ZIP_METHODS:
            raise ArchiveError(
                f"member {info.filename!r} of {archive} uses zip compression method "
                f"{info.compress_type}, which cannot be read here; recompress the archive "
                "with standard deflate (zip -r)")
        if fmt == stat.S_IFLNK:
            if info.file_size > _MAX_LINK_TARGET:
                raise ArchiveError(f"symlink member {info.filename!r} of {archive} has a "
                                   f"{info.file_size}-byte target; the archive looks corrupt")
            try:
                target = zf.read(info).decode("utf-8", "surrogateescape")
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
                raise ArchiveError(f"symlink member {info.filename!r} of {archive} cannot be "
                                   f"read ({exc}); the archive is corrupt") from exc
            entries.append(_Entry(path, "symlink", target=target, source=info))
            continue
        if fmt not in (0, stat.S_IFREG):
            raise UnsafeArchiveError(f"member {info.filename!r} of {archive} is a special file "
                                     f"(mode {oct(unix_mode)}); refusing the archive")
        entries.append(_Entry(path, "file", size=info.file_size, mode=perm,
                              mtime=_zip_mtime(info), source=info, comp_size=info.compress_size))
    return entries


def _tar_entries(tf: tarfile.TarFile, archive: str, plain: bool) -> list[_Entry]:
    entries = []
    archive_size = os.path.getsize(archive)
    for m in tf.getmembers():
        path = _clean_name(m.name)
        mode = m.mode & 0o777
        if m.isdir():
            entries.append(_Entry(path, "dir", mode=mode, mtime=float(m.mtime), source=m))
        elif m.issym():
            entries.append(_Entry(path, "symlink", target=m.linkname, source=m))
        elif m.islnk():
            target = _clean_name(m.linkname, what=f"hard link {m.name!r} to")
            entries.append(_Entry(path, "hardlink", target=target, mtime=float(m.mtime),
                                  mode=mode, source=m))
        elif m.isreg():
            offset = m.offset_data if plain and not m.issparse() else -1
            if plain and not m.issparse() and m.offset_data + m.size > archive_size:
                raise ArchiveError(
                    f"{archive} is truncated: member {m.name!r} needs bytes up to "
                    f"{m.offset_data + m.size}, the file has {archive_size}; download it again")
            entries.append(_Entry(path, "file", size=m.size, mode=mode, mtime=float(m.mtime),
                                  source=m, raw_offset=offset, comp_size=m.size))
        else:
            raise UnsafeArchiveError(f"member {m.name!r} of {archive} is a device file or "
                                     "FIFO; refusing the archive")
    return entries


_LISTINGS: "dict[tuple, tuple[str, list[_Entry]]]" = {}
_LISTINGS_LOCK = threading.Lock()


def _list_members(archive: str) -> tuple[str, list[_Entry]]:
    """``(how to read it, members)``; remembered per file version, so that
    :func:`extracted_size` followed by :func:`extract_archive` reads a compressed
    tar's member list once, not twice."""
    try:
        st = os.stat(archive)
        key: Optional[tuple] = (os.path.abspath(archive), st.st_size, st.st_mtime_ns, st.st_ino)
    except OSError:
        key = None
    with _LISTINGS_LOCK:
        if key is not None and key in _LISTINGS:
            kind, entries = _LISTINGS[key]
            return kind, list(entries)
    kind, handle, entries = _open_listing(archive)
    handle.close()  # type: ignore[attr-defined]
    if key is not None:
        with _LISTINGS_LOCK:
            while len(_LISTINGS) >= 4:
                _LISTINGS.pop(next(iter(_LISTINGS)))
            _LISTINGS[key] = (kind, list(entries))
    return kind, entries


def _open_listing(archive: str) -> tuple[str, object, list[_Entry]]:
    """Open ``archive`` and read its whole member list; the caller closes the handle."""
    kind = archive_kind(archive)
    if kind is None:
        if not os.path.exists(archive):
            raise ArchiveError(f"archive {archive} does not exist")
        raise ArchiveError(f"{archive} is not a zip or tar archive (nor tar.gz/.tgz, .tar.bz2, "
                           ".tar.xz) or it is corrupt; check the file or download it again")
    if kind == "zip":
        try:
            zf = zipfile.ZipFile(archive)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise ArchiveError(f"cannot read the zip {archive}: {exc}; it is probably truncated "
                               "or corrupt: download it again") from exc
        try:
            return kind, zf, _zip_entries(zf, archive)
        except BaseException:
            zf.close()
            raise
    with open(archive, "rb") as fh:
        compressed = _compression(fh.read(6)) is not None
    # Plain tars: headers read with seeks, members copied at known offsets (in parallel).
    # Compressed tars: one pass to list and validate, a second to write (both streamed).
    try:
        tf = tarfile.open(archive, "r|*" if compressed else "r:", bufsize=_TAR_BUFSIZE)
    except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
        raise ArchiveError(f"cannot read the tar {archive}: {exc}; it is probably truncated or "
                           "corrupt: download it again") from exc
    try:
        try:
            entries = _tar_entries(tf, archive, not compressed)
        except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError) as exc:
            if isinstance(exc, (ArchiveError, UnsafeArchiveError)):
                raise
            raise ArchiveError(f"cannot read the tar {archive}: {exc}; it is probably truncated "
                               "or corrupt: download it again") from exc
        # GNU sparse members have no single byte range: stream such a tar too.
        streamed = compressed or any(e.kind == "file" and e.raw_offset < 0 for e in entries)
        return ("stream" if streamed else "tar"), tf, entries
    except BaseException:
        tf.close()
        raise


def _dedupe_and_check(entries: list[_Entry]) -> list[_Entry]:
    """Last member of a name wins (tar semantics); refuse links and paths that could escape."""
    by_path: dict[str, _Entry] = {}
    for e in entries:
        if not e.path:
            continue  # the archive root ("./")
        by_path.pop(e.path, None)
        by_path[e.path] = e
    final = list(by_path.values())
    links = {e.path for e in final if e.kind == "symlink"}
    leaves = {e.path: e for e in final if e.kind != "dir"}
    seen_files: set[str] = set()
    for e in final:
        parts = e.path.split("/")
        for i in range(1, len(parts)):
            prefix = "/".join(parts[:i])
            if prefix in links:
                raise UnsafeArchiveError(
                    f"member {e.path!r} would be written through the symlink member {prefix!r}; "
                    "refusing the archive")
            if prefix in leaves:
                raise ArchiveError(f"member {e.path!r} needs {prefix!r} to be a folder, but the "
                                   "archive also has a file of that name; the archive is inconsistent")
        if e.kind == "symlink":
            t = e.target
            if not t or "\0" in t or t.startswith("/") or re.match(r"^[A-Za-z]:", t):
                raise UnsafeArchiveError(
                    f"symlink member {e.path!r} points to {t!r}, outside the destination; "
                    "refusing the archive")
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(e.path), t))
            if resolved == ".." or resolved.startswith("../"):
                raise UnsafeArchiveError(
                    f"symlink member {e.path!r} points to {t!r}, outside the destination; "
                    "refusing the archive")
        elif e.kind == "hardlink":
            if e.target not in seen_files or leaves.get(e.target) is None \
                    or leaves[e.target].kind != "file":
                raise UnsafeArchiveError(
                    f"hard link member {e.path!r} points to {e.target!r}, which is not a file "
                    "earlier in the archive; refusing the archive")
        if e.kind == "file":
            seen_files.add(e.path)
    return final


def extracted_size(path: PathLike) -> int:
    """Total bytes of the files the archive holds (from the member list)."""
    kind, entries = _list_members(os.fspath(path))
    return sum(e.size for e in entries if e.kind == "file")


def _needed_bytes(entries: list[_Entry]) -> int:
    files = sum(-(-e.size // _BLOCK) * _BLOCK for e in entries if e.kind == "file")
    return files + _BLOCK * sum(1 for e in entries if e.kind == "dir")


def _fmt(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


# ---------------------------------------------------------------------------------------
# Writing


class _Progress:
    """Thread-safe forwarding of byte counts to the caller's callback."""

    def __init__(self, fn: Optional[ProgressFn]):
        self.fn, self.lock = fn, threading.Lock()

    def __call__(self, n: int) -> None:
        if self.fn is not None and n:
            with self.lock:
                self.fn(n)


def _write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _file_mode(mode: Optional[int]) -> int:
    # No setuid/setgid/sticky; owner can always read and replace it.
    return ((mode if mode is not None else 0o644) & 0o777) | 0o600


def _create(root: str, e: _Entry) -> int:
    return os.open(os.path.join(root, e.path),
                   os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                   _file_mode(e.mode))


def _finish(fd: int, e: _Entry, written: int, archive: str) -> None:
    if written != e.size:
        raise ArchiveError(f"member {e.path!r} of {archive} is truncated: got {written} of "
                           f"{e.size} bytes; the archive is incomplete: download it again")
    if e.mtime is not None:
        os.utime(fd, (e.mtime, e.mtime))


def _copy_stream(src, fd: int, e: _Entry, archive: str, progress: _Progress) -> int:
    """Copy a file-like member stream into ``fd``; returns bytes written."""
    written = 0
    while True:
        buf = src.read(_CHUNK)
        if not buf:
            return written
        written += len(buf)
        if written > e.size:
            raise ArchiveError(f"member {e.path!r} of {archive} holds more than its declared "
                               f"{e.size} bytes; the archive is corrupt")
        _write_all(fd, buf)
        progress(len(buf))


def _zip_data_offset(afd: int, info: zipfile.ZipInfo, archive: str) -> int:
    header = os.pread(afd, 30, info.header_offset)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise ArchiveError(f"member {info.filename!r} of {archive}: bad local header at offset "
                           f"{info.header_offset}; the archive is truncated or corrupt")
    name_len, extra_len = struct.unpack_from("<HH", header, 26)
    return info.header_offset + 30 + name_len + extra_len


def _copy_raw(afd: int, fd: int, e: _Entry, start: int, comp_size: int, method: int,
              crc_expected: Optional[int], archive: str, progress: _Progress) -> None:
    """Stream a stored or raw-deflate byte range of the archive into ``fd``."""
    inflater = zlib.decompressobj(-15) if method == zipfile.ZIP_DEFLATED else None
    crc, written, pos, remaining = 0, 0, start, comp_size

    def emit(data: bytes) -> None:
        nonlocal crc, written
        if not data:
            return
        written += len(data)
        if written > e.size:
            raise ArchiveError(f"member {e.path!r} of {archive} inflates past its declared "
                               f"{e.size} bytes; the archive is corrupt (or a zip bomb)")
        if crc_expected is not None:
            crc = zlib.crc32(data, crc)
        _write_all(fd, data)
        progress(len(data))

    try:
        while remaining:
            buf = os.pread(afd, min(_CHUNK, remaining), pos)
            if not buf:
                break
            pos += len(buf)
            remaining -= len(buf)
            if inflater is None:
                emit(buf)
                continue
            emit(inflater.decompress(buf, _CHUNK))
            while inflater.unconsumed_tail:
                emit(inflater.decompress(inflater.unconsumed_tail, _CHUNK))
        if inflater is not None:
            emit(inflater.flush())
    except zlib.error as exc:
        raise ArchiveError(f"member {e.path!r} of {archive} is corrupt ({exc}); "
                           "download the archive again") from exc
    if remaining or (inflater is not None and not inflater.eof):
        raise ArchiveError(f"member {e.path!r} of {archive} is truncated; the archive is "
                           "incomplete: download it again")
    _finish(fd, e, written, archive)
    if crc_expected is not None and crc != crc_expected:
        raise ArchiveError(f"member {e.path!r} of {archive} fails its CRC-32 check "
                           f"(expected {crc_expected:08x}, got {crc:08x}); the archive is "
                           "corrupt: download it again")


def _partition(files: list[_Entry], parts: int) -> list[list[_Entry]]:
    """Contiguous slices with about equal compressed bytes (sequential reads per worker)."""
    total = sum(max(e.comp_size, 1) for e in files)
    out: list[list[_Entry]] = [[] for _ in range(parts)]
    acc = 0
    for e in files:
        idx = min(parts - 1, acc * parts // max(total, 1))
        out[idx].append(e)
        acc += max(e.comp_size, 1)
    return [p for p in out if p]


def _write_files_random_access(kind: str, archive: str, root: str, files: list[_Entry],
                               jobs: int, progress: _Progress) -> None:
    """zip and plain tar: members at known offsets, written by ``jobs`` threads."""
    stop = threading.Event()

    def work(chunk: list[_Entry]) -> None:
        afd = os.open(archive, os.O_RDONLY | os.O_CLOEXEC)
        zf: Optional[zipfile.ZipFile] = None
        try:
            for e in chunk:
                if stop.is_set():
                    return
                fd = _create(root, e)
                try:
                    if kind == "tar":
                        _copy_raw(afd, fd, e, e.raw_offset, e.size, zipfile.ZIP_STORED, None,
                                  archive, progress)
                        continue
                    info: zipfile.ZipInfo = e.source  # type: ignore[assignment]
                    if info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                        start = _zip_data_offset(afd, info, archive)
                        _copy_raw(afd, fd, e, start, info.compress_size, info.compress_type,
                                  info.CRC, archive, progress)
                    else:  # bzip2 / lzma: let zipfile decompress (it checks the CRC)
                        zf = zf or zipfile.ZipFile(archive)
                        try:
                            with zf.open(info) as src:
                                n = _copy_stream(src, fd, e, archive, progress)
                        except (zipfile.BadZipFile, EOFError, OSError, lzma.LZMAError) as exc:
                            if isinstance(exc, ArchiveError):
                                raise
                            raise ArchiveError(f"member {e.path!r} of {archive} is corrupt "
                                               f"({exc}); download the archive again") from exc
                        _finish(fd, e, n, archive)
                finally:
                    os.close(fd)
        except BaseException:
            stop.set()
            raise
        finally:
            os.close(afd)
            if zf is not None:
                zf.close()

    chunks = _partition(files, max(1, jobs))
    if len(chunks) <= 1:
        for c in chunks:
            work(c)
        return
    with ThreadPoolExecutor(len(chunks), thread_name_prefix="extract") as pool:
        futures = [pool.submit(work, c) for c in chunks]
        try:
            errors = [f.exception() for f in futures]
        except BaseException:  # Ctrl-C: let the workers stop after their current member
            stop.set()
            raise
    for exc in errors:
        if exc is not None:
            raise exc


def _write_files_stream(archive: str, root: str, files: list[_Entry],
                        progress: _Progress) -> None:
    """Compressed tar: a second streamed pass, writing the validated members in order."""
    wanted = {e.source.offset: e for e in files}  # type: ignore[attr-defined]
    try:
        tf = tarfile.open(archive, "r|*", bufsize=_TAR_BUFSIZE)
    except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
        raise ArchiveError(f"cannot read the tar {archive}: {exc}; download it again") from exc
    with tf:
        members = iter(tf)
        while wanted:
            try:
                m = next(members, None)
            except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError) as exc:
                raise ArchiveError(f"cannot read the tar {archive}: {exc}; the archive is "
                                   "truncated or corrupt: download it again") from exc
            if m is None:
                missing = sorted(e.path for e in wanted.values())[:3]
                raise ArchiveError(f"{archive} changed while it was extracted (members "
                                   f"{missing} vanished); extract it again")
            e = wanted.pop(m.offset, None)
            if e is None:
                continue  # not a file, or a duplicate replaced by a later member
            fd = _create(root, e)
            try:
                try:
                    n = _copy_stream(tf.extractfile(m), fd, e, archive, progress)
                except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError) as exc:
                    if isinstance(exc, ArchiveError):
                        raise
                    raise ArchiveError(f"member {e.path!r} of {archive} cannot be read ({exc}); "
                                       "the archive is truncated or corrupt: download it "
                                       "again") from exc
                _finish(fd, e, n, archive)
            finally:
                os.close(fd)


def _inside(root: str, path: str) -> bool:
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root + os.sep)


def _remove_stale_temps(dest: str) -> None:
    """Remove temporary folders left by extractions whose process died."""
    try:
        names = os.listdir(dest)
    except OSError:
        return
    for name in names:
        if not name.startswith((TEMP_PREFIX, OLD_PREFIX)):
            continue
        try:
            pid = int(name.rsplit("-", 2)[-2])
            os.kill(pid, 0)
            continue  # still running: not ours to remove
        except ProcessLookupError:
            pass
        except (ValueError, IndexError, PermissionError):
            continue
        log.info("removing a stale extraction folder %s", os.path.join(dest, name))
        shutil.rmtree(os.path.join(dest, name), ignore_errors=True)


def _move_into_place(tmp: str, dest: str, tops: list[str]) -> None:
    """Merge the extracted tree into DEST, as ``unzip`` and ``tar -x`` do.

    A path DEST lacks arrives by one rename (a whole subtree at once); a folder that exists
    on both sides is merged, so VOC2007's and VOC2012's archives can share ``VOCdevkit/``; a
    file or link replaces what sits at its path, which is renamed aside first and put back if
    the move fails. A symlink in DEST is replaced, never followed."""
    old = os.path.join(dest, f"{OLD_PREFIX}{os.getpid()}-{secrets.token_hex(4)}")
    os.mkdir(old)
    try:
        stack = [(tmp, dest, tops)]
        while stack:
            src_dir, dst_dir, names = stack.pop()
            for name in names:
                src, dst = os.path.join(src_dir, name), os.path.join(dst_dir, name)
                if _real_dir(src) and _real_dir(dst):
                    stack.append((src, dst, sorted(os.listdir(src))))
                    continue
                aside = None
                if os.path.lexists(dst):
                    aside = os.path.join(old, secrets.token_hex(8))
                    os.rename(dst, aside)
                try:
                    os.rename(src, dst)
                except OSError:
                    if aside is not None:
                        os.rename(aside, dst)
                    raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def _refuse_replacing_folders(archive: str, dest: str, entries: list[_Entry]) -> None:
    """A member that is not a folder never replaces a folder of DEST (it could hold anything
    of the user's): refused before anything is written."""
    for e in entries:
        if e.kind != "dir" and _real_dir(os.path.join(dest, e.path)):
            raise ArchiveError(
                f"{os.path.basename(archive)}: member {e.path} is a file, but "
                f"{os.path.join(dest, e.path)}"
                " is a folder; move that folder away or extract elsewhere")


def _real_dir(path: str) -> bool:
    return os.path.isdir(path) and not os.path.islink(path)


def remove_members(dest: PathLike, members: list[str], keep: set[str]) -> int:
    """Remove what an earlier extraction into ``dest`` wrote and a new one did not (files
    and links; then its folders left empty, deepest first). Returns how many were removed."""
    root = os.path.abspath(os.fspath(dest))
    removed = 0
    folders = []
    for rel in members:
        if rel in keep:
            continue
        path = os.path.join(root, rel)
        if not _inside(root, os.path.dirname(path)):
            continue  # never outside DEST, whatever an old stamp says
        if _real_dir(path):
            folders.append(path)
            continue
        try:
            os.unlink(path)
            removed += 1
        except FileNotFoundError:
            pass
    for path in sorted(folders, key=len, reverse=True):
        try:
            os.rmdir(path)  # only when empty: files the user added stay
            removed += 1
        except OSError:
            pass
    return removed


def _default_free_bytes(path: str) -> int:
    return shutil.disk_usage(path).free


def extract_archive(archive_path: PathLike, dest_dir: PathLike, *,
                    progress: Optional[ProgressFn] = None,
                    free_bytes: Optional[Callable[[str], int]] = None,
                    jobs: int = 2) -> list[str]:
    """Extract a zip / tar / tar.gz (.tgz) / tar.bz2 / tar.xz safely into ``dest_dir``.

    Returns the relative paths written (files, folders, links), in archive order.
    ``progress`` receives byte counts as they are written (from worker threads,
    serialised). ``free_bytes(dest_dir)`` reports free space (default
    ``shutil.disk_usage``; injectable for tests). Raises UnsafeArchiveError,
    ArchiveError or DiskSpaceError; on any error DEST is left as it was.
    """
    archive = os.fspath(archive_path)
    dest = os.path.abspath(os.fspath(dest_dir))
    kind, entries = _list_members(archive)
    entries = _dedupe_and_check(entries)
    os.makedirs(dest, exist_ok=True)
    _refuse_replacing_folders(archive, dest, entries)
    _remove_stale_temps(dest)
    needed = _needed_bytes(entries)
    free = (free_bytes or _default_free_bytes)(dest)
    if needed > free:
        raise DiskSpaceError(
            f"not enough free disk space to extract {os.path.basename(archive)} into {dest}: "
            f"needs {_fmt(needed)} ({needed} bytes), only {_fmt(free)} ({free} bytes) free; "
            "free some space or extract elsewhere", needed=needed, free=free)
    files = [e for e in entries if e.kind == "file"]
    log.info("extracting %s: %d members, %s, into %s", archive, len(entries),
             _fmt(sum(e.size for e in files)), dest)
    tmp = os.path.join(dest, f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}")
    os.mkdir(tmp)
    try:
        _populate(kind, archive, tmp, entries, files, jobs, _Progress(progress))
        tops = sorted({e.path.split("/", 1)[0] for e in entries})
        _move_into_place(tmp, dest, tops)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [e.path for e in entries]


def _populate(kind: str, archive: str, tmp: str, entries: list[_Entry],
              files: list[_Entry], jobs: int, progress: _Progress) -> None:
    """Write every member under ``tmp`` (folders first, links last), then fix folder times."""
    dirs = {e.path for e in entries if e.kind == "dir"}
    for e in entries:
        parent = posixpath.dirname(e.path)
        while parent and parent not in dirs:
            dirs.add(parent)
            parent = posixpath.dirname(parent)
    for d in sorted(dirs):  # a parent sorts before its children
        os.mkdir(os.path.join(tmp, d))
    if kind in ("zip", "tar"):
        _write_files_random_access(kind, archive, tmp, files, jobs, progress)
    else:
        _write_files_stream(archive, tmp, files, progress)
    for e in entries:
        if e.kind == "hardlink":
            src, dst = os.path.join(tmp, e.target), os.path.join(tmp, e.path)
            try:
                os.link(src, dst, follow_symlinks=False)
            except OSError:  # e.g. a FUSE mount without hard links: copy instead
                shutil.copy2(src, dst, follow_symlinks=False)
        elif e.kind == "symlink":
            link = os.path.join(tmp, e.path)
            os.symlink(e.target, link)
    for e in entries:
        if e.kind == "symlink" and not _inside(tmp, os.path.join(tmp, e.path)):
            # Lexically inside, but resolves outside through another link: refuse.
            raise UnsafeArchiveError(f"symlink member {e.path!r} points to {e.target!r}, which "
                                     "resolves outside the destination; refusing the archive")
    explicit = {e.path: e for e in entries if e.kind == "dir"}
    for d in sorted(dirs, key=lambda p: p.count("/"), reverse=True):
        e = explicit.get(d)
        full = os.path.join(tmp, d)
        if e is not None and e.mode is not None:
            os.chmod(full, (e.mode & 0o777) | 0o700)
        if e is not None and e.mtime is not None:
            os.utime(full, (e.mtime, e.mtime))
