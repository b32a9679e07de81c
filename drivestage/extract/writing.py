"""Writing a validated member list into a fresh temporary folder (streamed, bounded memory).

Zip members and plain tar members are written by ``jobs`` threads over contiguous member
ranges (zlib and file I/O release the GIL); compressed tars are one stream. Every file is
created with ``O_EXCL | O_NOFOLLOW`` under folders this module made, reached from the
temporary folder's descriptor (:mod:`.tempdir`: never through its name in DEST), and links
are made last, so nothing is ever written through a link. CRC-32 is checked for zip members
(:mod:`.copying`); a short read or an overlong member is :class:`ArchiveError`.
"""
from __future__ import annotations

import errno
import lzma
import os
import stat
import tarfile
import zipfile
import zlib
from typing import IO, Optional

from drivestage.errors import ArchiveError
from drivestage.extract.copying import CHUNK, NEW_FILE, Progress, copy_raw, create, \
    finish_member, write_all, zip_data_offset
from drivestage.extract.formats import ArchiveFile
from drivestage.extract.members import Entry, ancestors, open_tar_stream
from drivestage.extract.tarinfo import each_member
from drivestage.extract.tempdir import TempDir
from drivestage.interrupts import Flag
from drivestage.pool import check, each

def copy_stream(src: Optional[IO[bytes]], fd: int, e: Entry, archive: str, progress: Progress) -> int:
    """Copy a file-like member stream into ``fd``; returns bytes written."""
    if src is None:  # pragma: no cover - only file members are copied
        raise ArchiveError(f"member {e.path!r} of {archive} has no data; the archive is corrupt")
    written = 0
    while True:
        buf = src.read(CHUNK)
        if not buf:
            return written
        written += len(buf)
        if written > e.size:
            raise ArchiveError(f"member {e.path!r} of {archive} holds more than its declared "
                               f"{e.size} bytes; the archive is corrupt")
        write_all(fd, buf)
        progress(len(buf))


#: What creating one file costs, in bytes written (file creation is most of an extraction's
#: time on some file systems: a share of files, not only of bytes, balances the workers).
PER_FILE = 256 * 1024


def _partition(files: list[Entry], parts: int) -> list[list[Entry]]:
    """Contiguous slices of about equal work (sequential reads per worker): compressed bytes
    plus a fixed cost per file."""
    def weight(e: Entry) -> int:
        return e.comp_size + PER_FILE

    total = sum(weight(e) for e in files)
    out: list[list[Entry]] = [[] for _ in range(parts)]
    acc = 0
    for e in files:
        idx = min(parts - 1, acc * parts // max(total, 1))
        out[idx].append(e)
        acc += weight(e)
    return [p for p in out if p]


def _write_files_random_access(kind: str, archive: str, afd: int, root: TempDir,
                               files: list[Entry], jobs: int, progress: Progress) -> None:
    """zip and plain tar: members at known offsets (read by position from ``afd``),
    written by ``jobs`` threads."""
    stop = Flag()

    def work(chunk: list[Entry]) -> None:
        try:
            for e in chunk:
                if stop.is_set():
                    return
                check()
                fd = create(root, e)
                try:
                    if kind == "tar":
                        copy_raw(afd, fd, e, e.raw_offset, e.size, zipfile.ZIP_STORED, None,
                                  archive, progress)
                        continue
                    # bzip2 and lzma too: zipfile decompresses a read of them whole (a zip
                    # bomb's gigabytes in memory: attackpull33); this never more than 1 MiB.
                    start = zip_data_offset(afd, e.offset, e.name, archive)
                    copy_raw(afd, fd, e, start, e.comp_size, e.method, e.crc, archive,
                              progress)
                finally:
                    os.close(fd)
        except BaseException:
            stop.set()
            raise

    chunks = _partition(files, max(1, jobs))
    if len(chunks) <= 1:
        for c in chunks:
            work(c)
        return
    # A Ctrl-C: the threads stop after their current member (each()), and the temporary
    # folder is removed only once they have.
    for outcome in each(work, chunks, len(chunks), "drivestage-extract"):
        if isinstance(outcome, BaseException):
            raise outcome


def _write_files_stream(archive: str, afd: int, root: TempDir, files: list[Entry],
                        progress: Progress) -> None:
    """Compressed tar: a second streamed pass, writing the validated members in order."""
    wanted = {e.offset: e for e in files}
    try:
        tf = open_tar_stream(ArchiveFile(afd))
    except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
        raise ArchiveError(f"cannot read the tar {archive}: {exc}; make the archive again "
                           "and upload it") from exc
    with tf:
        members = each_member(tf)
        while wanted:
            try:
                m = next(members, None)
            except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError) as exc:
                raise ArchiveError(f"cannot read the tar {archive}: {exc}; the archive is "
                                   "truncated or corrupt: make the archive again and upload "
                                   "it") from exc
            if m is None:
                missing = sorted(e.path for e in wanted.values())[:3]
                raise ArchiveError(f"{archive} changed while it was extracted (members "
                                   f"{missing} vanished); extract it again")
            e = wanted.pop(m.offset, None)
            if e is None:
                continue  # not a file, or a duplicate replaced by a later member
            fd = create(root, e)
            try:
                try:
                    n = copy_stream(tf.extractfile(m), fd, e, archive, progress)
                except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError) as exc:
                    if isinstance(exc, ArchiveError):
                        raise
                    raise ArchiveError(f"member {e.path!r} of {archive} cannot be read ({exc}); "
                                       "the archive is truncated or corrupt: download it "
                                       "again") from exc
                finish_member(fd, e, n, archive)
            finally:
                os.close(fd)



def make_dirs(root: TempDir, entries: list[Entry]) -> None:
    """Every folder the members need in the temporary folder ``root`` (parents first)."""
    for d in sorted(_folders(entries)):  # a parent sorts before its children
        os.mkdir(d, dir_fd=root.fd)


def _folders(entries: list[Entry]) -> set[str]:
    return {e.path for e in entries if e.kind == "dir"} | ancestors(e.path for e in entries)


def write_files(kind: str, archive: str, afd: int, root: TempDir, files: list[Entry],
                jobs: int, progress: Progress) -> None:
    """Write the file members in the temporary folder ``root`` (their folders made
    already), read from ``afd`` alone: the archive as its caller opened (and checked) it;
    ``archive`` names it in messages."""
    if kind in ("zip", "tar"):
        _write_files_random_access(kind, archive, afd, root, files, jobs, progress)
    else:
        _write_files_stream(archive, afd, root, files, progress)


def write_zip_member(afd: int, root: TempDir, e: Entry, start: int, archive: str,
                     progress: Progress) -> None:
    """One stored or deflated zip member from the open archive ``afd``, its data at ``start``
    (:func:`zip_data_start`), CRC checked."""
    fd = create(root, e)
    try:
        copy_raw(afd, fd, e, start, e.comp_size, e.method, e.crc, archive, progress)
    finally:
        os.close(fd)


def zip_data_start(afd: int, e: Entry, archive: str) -> int:
    """Where member ``e``'s compressed bytes start (its local header must be readable)."""
    return zip_data_offset(afd, e.offset, e.name, archive)


#: What a file system without symbolic links answers ``os.symlink``: vfat EPERM, a FUSE
#: mount that does not make them ENOSYS, others EOPNOTSUPP.
NO_SYMLINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS})


class SymlinksRefused(OSError):
    """The file system of the temporary folder (DEST's) makes no symbolic links; ``member``
    is the first link member."""

    def __init__(self, member: str, exc: OSError):
        super().__init__(exc.errno, exc.strerror)
        self.member = member


def finish_tree(root: TempDir, entries: list[Entry]) -> None:
    """Links last (nothing was ever written through one), then folder modes and times.
    :class:`SymlinksRefused` where the file system makes no symbolic links."""
    fd = root.fd
    for e in entries:
        if e.kind in ("hardlink", "symlink"):
            _clear(fd, e.path)
        if e.kind == "hardlink":
            try:
                os.link(e.target, e.path, src_dir_fd=fd, dst_dir_fd=fd, follow_symlinks=False)
            except OSError:  # e.g. a FUSE mount without hard links: copy instead
                _copy_at(root, e.target, e.path)
        elif e.kind == "symlink":
            try:
                os.symlink(e.target, e.path, dir_fd=fd)
            except OSError as exc:
                # The kernel's error names the link's target: a message made of it named
                # "(a.txt)" as if that file were the trouble.
                if exc.errno in NO_SYMLINKS:
                    raise SymlinksRefused(e.path, exc) from None
                raise
    explicit = {e.path: e for e in entries if e.kind == "dir"}
    for d in sorted(_folders(entries), key=lambda p: p.count("/"), reverse=True):
        folder = explicit.get(d)
        if folder is not None and folder.mode is not None:
            os.chmod(d, (folder.mode & 0o777) | 0o700, dir_fd=fd)
        if folder is not None and folder.mtime is not None:
            os.utime(d, (folder.mtime, folder.mtime), dir_fd=fd)


def _clear(fd: int, path: str) -> None:
    """What an earlier member of ``path``'s name put in the temporary folder (a file, an
    empty folder), gone before the link that replaced it is made: the last member of a name
    wins, and a tar read as it arrives wrote the earlier one (``tar --append`` of a file
    that became a link: `File exists`, naming the link's target, for a local tar)."""
    try:
        st = os.stat(path, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        os.rmdir(path, dir_fd=fd)   # (only an empty one: a member below it is refused)
    else:
        os.unlink(path, dir_fd=fd)


def _copy_at(root: TempDir, src: str, dst: str) -> None:
    """``shutil.copy2`` of a file of the temporary folder to a new name in it (bytes, mode
    and times), never through a link."""
    sfd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=root.fd)
    try:
        st = os.fstat(sfd)
        dfd = os.open(dst, NEW_FILE, stat.S_IMODE(st.st_mode), dir_fd=root.fd)
        try:
            while True:
                buf = os.read(sfd, CHUNK)
                if not buf:
                    break
                write_all(dfd, buf)
            os.utime(dfd, ns=(st.st_atime_ns, st.st_mtime_ns))
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)

