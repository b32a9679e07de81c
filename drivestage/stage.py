"""``pull``: stage a remote file or folder into a local folder.

SRC goes through the one door (:func:`drivestage.remote.open_store`), then one lookup finds
what it names: the stamp of an earlier pull of that file, re-checked by id in one call, or
else a resolve of the path. A file is staged by :mod:`drivestage.stage_file`, a folder's tree
by :mod:`drivestage.stage_tree`.
"""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import sys
import time
from typing import Any, Callable, Optional, Sequence, Union

from drivestage import checksums, folder_record, paths, stamp_cache
from drivestage.errors import DiskSpaceError, DriveStageError, LocalFileError, NotFoundError, \
    TrashedError, UsageError
from drivestage.held_choice import file_at
from drivestage.localfs import UNMOUNTED_DRIVE, drive_mount, unmounted_drive_path
from drivestage.lost_mounts import LOST_MOUNT, lost_mount, lost_mount_message
from drivestage.paths import DrivePath, StorePath, patterns, printable
from drivestage.remote import open_store
from drivestage import stamps
from drivestage.stage_file import (FileStager, ProgressFactory, PullResult, no_progress,
                                   safe_name)
from drivestage.stage_original import defer, vouch
from drivestage.sizes import too_large
from drivestage.stamps import Stamp
from drivestage.stage_tree import FolderPullResult, pull_folder
from drivestage.stage_walk import check_dest_path, check_file_path
from drivestage.store import RemoteEntry, RemoteStore

log = logging.getLogger(__name__)

__all__ = ["pull", "PullResult", "FolderPullResult", "tqdm_progress"]


def pull(src: Union[str, DrivePath], dest: str, *, extract: bool = False,
         jobs: Optional[int] = None, force: bool = False, quiet: bool = False,
         store: Optional[RemoteStore] = None, api_root: Optional[str] = None,
         credentials: Optional[str] = None, reserve: int = 0, chunk_size: Optional[int] = None,
         retries: Optional[int] = None, progress: Optional[ProgressFactory] = None,
         include: Sequence[str] = (), exclude: Sequence[str] = (), folders: bool = True,
         remove_archive: bool = False) -> Union[PullResult, FolderPullResult]:
    """Stage ``src`` (``drive:a/b.zip``, ``drive:id:X``, a parsed ``drive:`` path, a local
    path, or a path in ``store``) into folder ``dest``.

    The file lands at ``dest/<name>``; with ``extract`` a zip / tar / tar.gz is then extracted
    into ``dest`` (atomically, see :mod:`drivestage.extract`). A folder lands at
    ``dest/<name>/`` with its whole tree, each archive in it extracted where it lies, and the
    result is a :class:`~drivestage.stage_tree.FolderPullResult`. ``jobs`` parallel ranged
    streams (default: found by measuring). ``force`` stages again even when the stamp says
    it is done. ``reserve`` bytes of local disk are kept free. ``retries`` is the number of attempts per Drive request
    (default ``$DRIVESTAGE_RETRY_ATTEMPTS`` or 8). ``progress(label, total, initial)`` may return a
    per-byte callback (the CLI's tqdm); ``quiet`` turns the default tqdm bars off. ``include``
    and ``exclude`` (globs on paths inside the folder, or names) select what a folder pull
    stages; given for a single file, they are a usage error. ``folders=False`` refuses a
    folder SRC before a byte is pulled (:class:`UsageError`): a caller that needs one file
    (weights) would otherwise pull a whole run folder, then find no file.
    ``remove_archive`` (with ``extract``) removes each downloaded archive once its members
    are extracted and verified; the stamp then stands for it, and a rerun downloads it again
    only when a member is gone or changed (a local archive extracted where it lies stays).
    """
    began = time.monotonic()
    # (os.path.abspath("") is the working folder: dest=os.environ.get("DATA", "") staged there)
    paths.refuse_empty("pull's dest", os.fspath(dest), "the local folder to stage into, "
                       "e.g. './data'")
    _refuse_a_drive_dest(src, os.fspath(dest))
    dest = os.path.abspath(os.path.expanduser(os.fspath(dest)))
    check_dest_path(dest)   # (said "File name too long" of 4 KB of DEST, exit 1)
    if os.path.exists(dest) and not os.path.isdir(dest):
        raise UsageError(f"DEST {dest} is a file; give the folder to stage into")
    if reserve < 0:
        raise UsageError(f"reserve must not be negative, got {reserve}")
    if retries is not None and retries < 1:
        raise UsageError(f"retries must be at least 1, got {retries}")
    if remove_archive and not extract:
        raise UsageError("remove_archive removes an archive once it is extracted; pass "
                         "extract=True too, or leave remove_archive out to keep the archive")
    checksums.preference()  # a misspelt DRIVESTAGE_CHECKSUM, before anything is asked
    lost = lost_mount(dest)
    if lost is not None:
        raise LocalFileError(f"cannot stage {src} into {dest}: {lost_mount_message(lost)}")
    unmounted = unmounted_drive_path(dest)
    if unmounted is not None:
        # Staged on local disk, told it was the Drive mount (below); and drive.mount() then
        # refuses the folder: "Mountpoint must not already contain files".
        raise UsageError(f"DEST {dest} is under {unmounted[0]}, {UNMOUNTED_DRIVE} (a folder "
                         "made there stays on this machine); write a folder on local disk "
                         "(e.g. /content/data) instead: drivestage needs no mount")
    paths.refuse_dangling_link("DEST", dest)   # (said "File exists"; Colab's mount: above)
    mount = drive_mount(dest)
    if mount is not None:
        log.warning("DEST %s is inside the Google Drive mount %s: staging there sends every byte "
                    "back to Drive through the slow mount. Pull to local disk instead (e.g. "
                    "/content/data)", dest, mount)
    label = str(src)
    # A plain path names a local folder (a Drive mount, a NAS); one that is not there was
    # often meant for Drive, which the message then says.
    local_src = store is None and not (isinstance(src, DrivePath) or paths.is_drive(label))
    if store is None:
        store, path = open_store(src, api_root=api_root, credentials=credentials)
    elif isinstance(src, DrivePath) or paths.is_drive(label):
        path = (src if isinstance(src, DrivePath) else paths.parse(label)).store_path
    else:
        path = StorePath.parse(label)
    if retries is not None:
        store.set_retries(retries)
    bars: Optional[_Bars] = None
    if progress is None:
        progress = no_progress if quiet else (bars := _Bars())
    calls = store.requests_made()
    try:
        result = _stage(store, path, label, dest, extract=extract, jobs=jobs, force=force,
                        reserve=reserve, chunk_size=chunk_size, progress=progress,
                        include=patterns(include), exclude=patterns(exclude), folders=folders,
                        remove_archive=remove_archive)
    except NotFoundError as exc:
        _say_trashed(store, path, label, exc)
        hint = paths.drive_hint(label) if local_src and not os.path.lexists(
            os.path.abspath(os.path.expanduser(label))) else None
        if hint is None:
            raise
        raise NotFoundError(f"{exc}; {hint}") from exc
    except BaseException as exc:
        if isinstance(exc, OSError) and not isinstance(exc, DriveStageError):
            raise _local_error(exc, label, dest) from exc
        raise
    finally:
        if bars is not None:
            bars.close()  # so that an error message starts on a line of its own
    if calls is not None:
        result.api_calls = (store.requests_made() or 0) - calls
    result.seconds = round(time.monotonic() - began, 3)
    return result


def _say_trashed(store: RemoteStore, path: StorePath, label: str, exc: NotFoundError) -> None:
    """TrashedError, one line, for a path that led nowhere because a step of it is in the
    trash (one listing, only then). Refused, not pulled with a warning: bytes the user threw
    away (a checkpoint, data found wrong) staged as live are worse than a line that says
    "restore it first", one click in Drive's trash (an id into the trash: refused so too)."""
    if isinstance(exc, TrashedError):
        return
    where = store.in_trash(path)
    if where is None:
        return
    # (The path goes through it; whether what it names is in it, only a restore shows: a
    # folder trashed and made anew since holds other items: attackpush41.)
    inside = "" if where == label.rstrip("/") else f" (the path {label} goes through it)"
    raise TrashedError(f"{where} is in the trash; restore it first{inside}") from exc


def _stage(store: RemoteStore, path: StorePath, label: str, dest: str, *, extract: bool,
           jobs: Optional[int], force: bool, reserve: int, chunk_size: Optional[int],
           progress: ProgressFactory, include: Sequence[str], exclude: Sequence[str],
           folders: bool = True, remove_archive: bool = False
           ) -> Union[PullResult, FolderPullResult]:
    if extract:
        defer(store, path)  # a local archive: hashed by the read that extracts it
    entry = _find(store, path, label, dest, force)
    if entry.is_dir and not folders:
        # Decided on the lookup every pull makes: no extra call, nothing downloaded.
        raise UsageError(f"{label} is a folder on Drive, not a file; name a file in it "
                         f"({label.rstrip('/')}/<name>)")
    if entry.is_dir:
        pulled = pull_folder(entry, src=label, path=path, dest=dest, store=store,
                             extract=extract, jobs=jobs, force=force, reserve=reserve,
                             chunk_size=chunk_size, progress=progress, include=include,
                             exclude=exclude, remove_archive=remove_archive)
        if path.name is not None:   # (what its rerun asks Drive about: one request)
            folder_record.write(store, pulled.path, label, entry)
        return pulled
    if include or exclude:
        raise UsageError(f"--include/--exclude choose files inside a folder, and "
                         f"{label} is one file; pull it without them")
    if entry.has_content and not entry.unreadable:   # (FileStager says those first)
        # A file that would land too deep: the folder pull's line, not "File name too long".
        check_file_path(os.path.join(dest, safe_name(entry.name, label, entry.id)), label)
    # Each stamp read and its rows parsed once, as a folder pull's are: a pull -x that puts
    # back one member of 60,000 read its stamp 6 times and parsed its rows 6 (attackpull40).
    with stamp_cache.scope():
        return FileStager(label, dest, store, extract=extract, jobs=jobs, force=force,
                          reserve=reserve, chunk_size=chunk_size, progress=progress,
                          extract_progress=progress, in_place=True,
                          remove_archive=remove_archive).stage(entry)


def _local_error(exc: OSError, label: str, dest: str) -> DriveStageError:
    """Local trouble (a full disk mid-download, permissions) as one clear line; the partial
    file stays for the next run."""
    # The file the OS named, when it named one other than DEST itself.
    where = f" ({exc.filename})" if exc.filename and exc.filename != dest else ""
    if exc.errno == errno.ENOSPC:
        return DiskSpaceError(f"the disk filled up while staging {label} into {dest}{where}; "
                              "free some space and run again: the download resumes where it "
                              "stopped")
    if exc.errno == errno.EFBIG:   # ("File too large" said nothing of what to do)
        return LocalFileError(f"cannot stage {label} into {dest}: {exc.strerror}: "
                              f"{too_large()}, and run again: the download resumes where it "
                              "stopped")
    lost = lost_mount(dest) if exc.errno in LOST_MOUNT else None
    if lost is not None:  # it went away during the pull
        return LocalFileError(f"cannot stage {label} into {dest}: {lost_mount_message(lost)}")
    mount = _mount_inside(dest, exc.filename) if exc.errno == errno.EXDEV else None
    if mount is not None:
        return LocalFileError(
            f"cannot stage {label} into {dest}: {mount} is another file system mounted inside "
            f"{dest}; extracted members move into place by renames, which cannot cross file "
            f"systems ({exc.strerror}). Pull into a folder with no mount inside it, or "
            "unmount it")
    if exc.errno == errno.EISDIR and exc.filename and \
            paths.is_reserved(os.path.basename(str(exc.filename))):
        # A folder another program made at a partial download's name or its record's: "Is a
        # directory (….partial)" named a file the user never made (attackpull35).
        return LocalFileError(f"cannot stage {label} into {dest}: {exc.filename} is a folder, "
                              "at a name drivestage keeps for a partial download (another "
                              "program made it there); move it away and pull again")
    blocking = _file_above(dest) if exc.errno == errno.ENOTDIR else None
    if blocking is not None:  # `./configs/demo.yaml/data`: "Not a directory" named no file
        return LocalFileError(f"cannot stage {label} into {dest}: {blocking} is a file, not a "
                              "folder; choose a folder that is not inside a file")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):   # (said nothing of what to do)
        return LocalFileError(f"cannot stage {label} into {dest}: {exc.strerror}{where}; pull "
                              "into a folder this user can write")
    return LocalFileError(f"cannot stage {label} into {dest}: {exc.strerror or exc}{where}")


def _file_above(dest: str) -> Optional[str]:
    """The nearest existing path on the way to ``dest`` when it is no folder, or None."""
    here = os.path.abspath(dest)
    while not os.path.lexists(here) and os.path.dirname(here) != here:
        here = os.path.dirname(here)
    return None if os.path.isdir(here) else here


def _refuse_a_drive_dest(src: Any, dest: str) -> None:
    """``pull ./synth drive:VOC`` (push meant, or the arguments swapped) made a local folder
    named ``drive:VOC`` and exited 0: refused, with the command that sends SRC to Drive."""
    if not paths.is_drive(dest):
        return
    label = str(src)
    local = not (isinstance(src, DrivePath) or paths.is_drive(label))
    way = (f"to send {label} to Drive: drivestage push {label} {dest}" if local
           else "give a local folder as DEST (e.g. ./data)")
    raise UsageError(f"DEST {dest} is a path on Google Drive, and pull writes to this "
                     f"machine; {way}")


def _mount_inside(dest: str, path: object) -> Optional[str]:
    """The first folder on the way from ``dest`` to ``path`` (inside it) that is on another
    file system than ``dest``, or None."""
    if not isinstance(path, str):
        return None
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(dest))
    if rel == "." or rel.startswith(".." + os.sep) or rel == "..":
        return None
    try:
        device = os.stat(dest).st_dev
        here = os.path.abspath(dest)
        for part in rel.split(os.sep)[:-1]:
            here = os.path.join(here, part)
            if os.lstat(here).st_dev != device:
                return here
    except OSError:
        return None
    return None


def recheck(store: RemoteStore, stamp: Stamp, path: StorePath) -> Optional[RemoteEntry]:
    """The stamped remote file, fetched by id in one call, if it is still what ``path`` names
    (addressed by path: the id must still sit at that path)."""
    hint = stamp.get("access")
    if isinstance(hint, str):  # a link-shared file's resource keys: else Drive answers 404
        store.use_access_hint(stamp["id"], hint)
    try:
        entry = store.stat(RemoteEntry(id=stamp["id"], name=stamp["name"], is_dir=False,
                                       parent_id=stamp.get("parent_id")))
    except NotFoundError:
        return None
    if path.names and (entry.name != path.names[-1] or (
            stamp.get("parent_id") and entry.parent_id != stamp["parent_id"])):
        return None
    return None if entry.is_dir else entry


def _find(store: RemoteStore, path: StorePath, src: str, dest: str,
          force: bool) -> RemoteEntry:
    """What ``path`` names, in one lookup: a file staged before from the same SRC is checked
    by id (one call); anything else is resolved. In a local DEST, a checkpoint whose old copy
    a push keeps aside: the copy its sidecar vouches for (:func:`held_choice.file_at`)."""
    try:
        entry = _lookup(store, path, src, dest, force)
    except NotFoundError:
        found = file_at(store, path, None)   # (only its copy aside there: a push killed)
        if found is None:
            raise
        return found
    return file_at(store, path, entry) or entry


def _lookup(store: RemoteStore, path: StorePath, src: str, dest: str,
            force: bool) -> RemoteEntry:
    if path.name is not None and not force:
        stamp = stamps.find(dest, safe_name(path.name, src), src)
        if stamp is not None:
            vouch(store, stamp)  # a local original's md5: its rerun hashes nothing
            entry = recheck(store, stamp, path)
            if entry is not None:
                return entry
        # A folder pulled before: found with its listing in one request (folder_record).
        record = folder_record.read(os.path.join(dest, safe_name(path.name, src)), src)
        found = folder_record.find(store, record, path) if record is not None else None
        if found is not None:
            return found
    return store.resolve(path)


class _Bars:
    """The default progress factory: tqdm bars, all closed at once at the end. While any is
    open, drivestage's log lines go through tqdm so that they do not land in the middle of a
    bar; tqdm is imported only when a first bar is needed (not by a rerun on a staged copy)."""

    def __init__(self) -> None:
        self.bars: list[Any] = []
        self.redirect: Optional[contextlib.ExitStack] = None

    def __call__(self, label: str, total: int, initial: int) -> Callable[[int], None]:
        if self.redirect is None:
            from tqdm.contrib.logging import logging_redirect_tqdm

            self.redirect = contextlib.ExitStack()
            self.redirect.enter_context(
                logging_redirect_tqdm(loggers=[logging.getLogger("drivestage")]))
        return tqdm_progress(label, total, initial, opened=self.bars)

    def close(self) -> None:
        for bar in self.bars:
            bar.close()
        if self.redirect is not None:
            self.redirect.close()
            self.redirect = None


def tqdm_progress(label: str, total: int, initial: int,
                  opened: Optional[list[Any]] = None) -> Callable[[int], None]:
    """A tqdm bar on stderr (bytes, rate, ETA); closed when the last byte arrives."""
    from tqdm import tqdm

    bar = tqdm(total=total, initial=0, unit="B", unit_scale=True, unit_divisor=1024,
               desc=printable(label), file=sys.stderr, leave=False, dynamic_ncols=True)
    if opened is not None:
        opened.append(bar)
    seen = [0]

    def update(n: int) -> None:
        seen[0] += n
        bar.update(n)
        if seen[0] >= total:
            bar.close()

    if total == 0:
        bar.close()
    return update
