"""Safe, streaming extraction of zip, tar and compressed tar archives.

:func:`extract` is all-or-nothing as far as DEST is concerned:

1. The whole member list is read and validated first (:mod:`.validation`). Absolute paths,
   ``..`` components, NUL bytes, names drivestage keeps for its own state at any depth
   (``.drivestage``, ``.drivestage-*``, partial downloads ``.<name>.<16 hex>.partial``, their
   records and the records' temporary files; any letter case), names over 255 bytes, members
   more than 256 folders deep, members written through a symlink member, hard links
   to anything but an earlier file of the same archive, device/FIFO members, and links that
   break the link rule below raise :class:`UnsafeArchiveError` (or :class:`ArchiveError`)
   naming the member; encrypted or unsupported members raise :class:`ArchiveError`. A member
   that is not a folder where DEST has a folder raises :class:`ArchiveError` (unless that
   folder holds exactly what an earlier extraction of the archive wrote: ``replaceable``,
   see :mod:`.owned`). Nothing has been written at that point.
2. Free disk space is checked against the member sizes (each rounded up to a 4 KiB block):
   :class:`DiskSpaceError` with the numbers, before writing.
3. Members are streamed (1 MiB buffers, bounded memory even for a zip bomb, whose output is
   capped at the declared size) into a hidden temporary folder inside DEST
   (``.drivestage-extract-<pid>-<random>``, private, reached only by its descriptor: see
   :mod:`.tempdir`) by :mod:`.writing`, or for a big zip or tar by worker processes
   (:mod:`.workers`); CRC-32 is checked for zips.
4. Under DEST's merge lock (``DEST/.drivestage/merge.flock``, see :mod:`.merging`), the
   members are checked against DEST again as it is then, links are judged (below), and the
   tree is merged into DEST as ``unzip`` does: a path DEST lacks arrives by one rename (a
   whole new ``VOCdevkit/`` at once), folders present on both sides are merged (VOC2007's and
   VOC2012's archives share ``VOCdevkit/``), a file or link replaces the file or link at its
   path by one atomic rename, and a folder replaces a file or link. A folder of DEST is never
   replaced (but one ``replaceable`` holds whole, put aside first), nothing the archive does
   not contain is touched, and no link of DEST is ever followed. Decompression runs outside
   the lock, so extractions into one DEST overlap; merges happen one at a time, from threads
   and processes alike. A crash leaves at most a hidden temporary folder, which the next
   extraction into DEST removes, and some members already in place; the caller's stamp is
   what says "complete".

The link rule (what makes "nothing is written or resolved outside DEST" hold across
archives, orders and links already in DEST):

* A symlink member's target is relative and of the form ``../`` (any number) followed by
  names only - never ``..`` after a name - and stays inside DEST read from the link's folder.
  Such a link climbs only through real folders (no member is ever written through a link), so
  however the links it then meets are laid out, if each of them obeys the rule it ends inside
  DEST: by induction, a DEST whose links all obey it has every path inside DEST, in any order
  of extraction. ``esc -> d/up/..`` is refused even while ``d/up`` is no link.
* Links DEST already has may obey nothing (the user's own, or an older drivestage's). Under
  the merge lock every link of the archive is resolved against DEST as it will be after the
  merge (following DEST's links), and, when the archive adds or replaces any link, so is every
  link already in DEST that leads inside DEST now: if one of them would lead outside after
  the merge, the archive is refused. Resolution is ``realpath``'s: a link is followed,
  anything else is a name, so only a change of links can move a path - which is exactly
  when the judgement runs again (see :mod:`.links`).

:func:`extract` returns an :class:`ExtractResult` whose records say what was written (kind,
size, mtime, inode); :func:`remove_members` removes an old version's members only while they
are still exactly those files. File modes are kept without setuid/setgid/sticky bits (and
always owner read/write); mtimes come from the archive. No per-file fsync: durability against
power loss is the stamp's job, not the extractor's.
"""
from __future__ import annotations

import logging
import os
from typing import Callable, Iterable, Mapping, Optional, Union

from drivestage.errors import DriveStageError
from drivestage.extract.formats import ARCHIVE_SUFFIXES, archive_kind, check_unchanged, \
    open_archive
from drivestage.extract.job import Job, Turn
from drivestage.extract.members import list_members
from drivestage.extract.merging import MERGE_LOCK
from drivestage.extract.occupied import Recorded
from drivestage.extract.tempdir import OLD_PREFIX, TEMP_PREFIX
from drivestage.extract.records import ExtractResult, MemberRecord, remove_folders, \
    remove_members
from drivestage.extract.workers import worth_processes, write_in_processes
from drivestage.extract.copying import Progress
from drivestage.extract.writing import write_files
from drivestage.store import ProgressFn

__all__ = ["ARCHIVE_SUFFIXES", "MERGE_LOCK", "OLD_PREFIX", "TEMP_PREFIX", "ExtractResult",
           "MemberRecord", "Recorded", "archive_kind", "extract", "extract_archive",
           "extracted_size", "remove_folders", "remove_members"]

log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]


def extracted_size(path: PathLike) -> int:
    """Total bytes of the files the archive holds (from the member list)."""
    kind, entries = list_members(os.fspath(path))
    return sum(e.size for e in entries if e.kind == "file")


def extract(archive_path: PathLike, dest_dir: PathLike, *,
            progress: Optional[ProgressFn] = None,
            free_bytes: Optional[Callable[[str], int]] = None,
            jobs: int = 2, lock_dir: Optional[PathLike] = None,
            protected: Iterable[str] = (),
            replaceable: Iterable[MemberRecord] = (),
            kept: Mapping[str, MemberRecord] = {},
            identity: Optional[os.stat_result] = None,
            turn: Optional[Turn] = None,
            recorded: Optional[Recorded] = None,
            progress_of: Optional[Callable[[int], Optional[ProgressFn]]] = None
            ) -> ExtractResult:
    """Extract a zip / tar / tar.gz (.tgz) / tar.bz2 / tar.xz safely into ``dest_dir``.

    Returns what was written, member by member, in archive order. ``progress`` receives byte
    counts as they are written (from worker threads, serialised). ``free_bytes(dest_dir)``
    reports free space (default ``shutil.disk_usage``; injectable for tests). ``lock_dir`` is
    the folder whose merge lock serialises the merge (default ``dest_dir``; a folder pull
    passes its root, so that extractions into nested folders of one tree merge one at a
    time too). No member may replace the archive itself, nor a path in ``protected`` (files
    staged from Drive), or turn one into a folder. ``replaceable``: the records of what an
    earlier extraction of this archive wrote, whose folders a file or link member may
    replace when they hold nothing else (an update in which a member changed kind).
    ``kept``: the records of members an earlier extraction of this very archive wrote that
    are in place in DEST (a rerun after one was deleted by hand): every rule is still
    checked on the whole member list, but those that the archive has as recorded (kind, a
    file's size, a link's target) are not written again, and the result lists them with
    their records as given; only the rest is written and merged. ``identity``: the file
    whose checksum was verified (a local original): the archive opened must be that very
    file, unchanged from the moment it is opened until its members are written, else
    :class:`DestChangedError` and nothing merged. ``turn``: what the merge waits on (a
    folder pull's archives that share a path merge one after the other). ``recorded``: which
    member paths earlier extractions wrote (a pull's stamps); given, what DEST holds at a
    member's path and it does not list (the user's own) is never replaced: adopted when it
    is the member's very bytes, else :class:`UserFilesError` (see :mod:`.occupied`);
    without it such files are replaced, as ``unzip -o`` does. Raises UnsafeArchiveError,
    ArchiveError or DiskSpaceError; on any error DEST is left as it was. ``progress_of(total)``:
    ``progress`` made once the bytes to write are known (a bar sized by them; the member
    list read once, where a total asked of :func:`extracted_size` first read it twice).
    """
    archive = os.fspath(archive_path)
    # Opened once, and read through that descriptor alone: a file renamed over it (or its
    # folder swapped) while it is extracted is never read; with ``identity``, the file
    # opened must be that one, and still unchanged once the members are written.
    try:
        afd = open_archive(archive, identity)
    except DriveStageError:
        raise
    except OSError:
        list_members(archive)  # says what is wrong with it (absent, not an archive)
        raise
    try:
        kind, entries = list_members(archive, afd, keep=False)
        job = Job(archive, os.fspath(dest_dir), free_bytes=free_bytes,
                  lock_dir=os.fspath(lock_dir) if lock_dir is not None else None,
                  protected=protected, replaceable=replaceable, kept=kept, turn=turn,
                  recorded=recorded)
        try:
            files = job.check(entries)
            if progress_of is not None:
                progress = progress_of(sum(e.size for e in files))
            if worth_processes(kind, files, jobs):
                write_in_processes(kind, afd, os.fstat(afd).st_size, job.root, files, jobs,
                                   Progress(progress), label=archive, hold_fd=job.owner_fd)
            else:
                write_files(kind, archive, afd, job.root, files, jobs, Progress(progress))
            if identity is not None:  # a write into it meanwhile: its ctime moved
                check_unchanged(afd, archive, identity)
            return job.finish()
        finally:
            job.close()
    finally:
        os.close(afd)


def extract_archive(archive_path: PathLike, dest_dir: PathLike, *,
                    progress: Optional[ProgressFn] = None,
                    free_bytes: Optional[Callable[[str], int]] = None,
                    jobs: int = 2) -> list[str]:
    """:func:`extract`, returning only the relative paths written (files, folders, links),
    in archive order."""
    return extract(archive_path, dest_dir, progress=progress, free_bytes=free_bytes,
                   jobs=jobs).paths
