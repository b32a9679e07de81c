"""``pull``: stage one remote file (and optionally its extracted contents) into a local folder.

Each pull first decides what to do and logs that verb (nothing on a cache hit):

* ``cached``   - the stamp says this exact file (id, md5, size) is staged and the local copy
  is intact: one metadata call, no download;
* ``verified`` - a file with the right size already sits at the target without a stamp, and
  its md5 matches: adopted without a download;
* ``download`` / ``resume`` / ``update`` - fetch it (:mod:`drivestage.download`);
* ``extract``  - only the extraction is missing.

The stamp (``DEST/.drivestage/<name>.json``) records what was staged: remote id, md5, size,
the local file's size and mtime, and the extracted members with their sizes. It is written
last, so an interrupted pull never looks complete. A file lock beside it makes concurrent
pulls of one file on one machine (DDP ranks, notebook cells) download it once: the others
wait, then find the stamp.
"""
from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import stat as _stat
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence, Union

from drivestage import paths
from drivestage.localfs import atomic_write, drive_mount
from drivestage.sizes import format_size
from drivestage.errors import (ArchiveError, DiskSpaceError, DriveStageError, LocalFileError,
                               NotFoundError, UsageError)
from drivestage.store import RemoteEntry

if TYPE_CHECKING:
    from drivestage.stage_tree import FolderPullResult

log = logging.getLogger(__name__)

STAMP_DIR = ".drivestage"
STAMP_VERSION = 1


@dataclass
class PullResult:
    """What :func:`pull` did (``--json`` prints it)."""

    src: str
    path: str                 # the local file
    dest: str                 # the folder it was staged into
    id: str
    name: str
    size: int
    md5: Optional[str]
    action: str               # cached | verified | download | resume | update | extract
    fetched: int = 0          # bytes downloaded by this run
    resumed_from: int = 0
    extracted: bool = False
    members: int = 0          # extracted members (files, folders, links)
    seconds: float = 0.0
    member_paths: list = field(default_factory=list, repr=False)

    def to_json(self) -> dict:
        """The summary without the (possibly long) member list."""
        out = asdict(self)
        out.pop("member_paths")
        return out


def pull(src: str, dest: str, *, extract: bool = False, jobs: Optional[int] = None,
         force: bool = False, quiet: bool = False, store: Any = None,
         api_root: Optional[str] = None, credentials: Optional[str] = None,
         reserve: int = 0, chunk_size: Optional[int] = None, retries: Optional[int] = None,
         progress: Optional[Callable[[str, int, int], Callable[[int], None]]] = None,
         include: Sequence[str] = (), exclude: Sequence[str] = ()
         ) -> Union[PullResult, "FolderPullResult"]:
    """Stage ``src`` (``drive:a/b.zip``, ``drive:id:X``, a path in ``store``) into folder ``dest``.

    The file lands at ``dest/<name>``; with ``extract`` a zip / tar / tar.gz is then extracted
    into ``dest`` (atomically, see :mod:`drivestage.extract`). A folder lands at
    ``dest/<name>/`` with its whole tree, each archive in it extracted where it lies, and the
    result is a :class:`~drivestage.stage_tree.FolderPullResult`. ``jobs`` parallel ranged
    streams (default 4). ``force`` stages again even when the stamp says it is done. ``reserve``
    bytes of local disk are kept free. ``retries`` is the number of attempts per Drive request
    (default ``$DRIVESTAGE_RETRY_ATTEMPTS`` or 8). ``progress(label, total, initial)`` may return a
    per-byte callback (the CLI's tqdm); ``quiet`` turns the default tqdm bars off. ``include``
    and ``exclude`` (globs on paths inside the folder, or names) select what a folder pull
    stages; given for a single file, they are a usage error.
    """
    began = time.monotonic()
    dest = os.path.abspath(os.path.expanduser(os.fspath(dest)))
    if os.path.exists(dest) and not os.path.isdir(dest):
        raise UsageError(f"DEST {dest} is a file; give the folder to stage into")
    if reserve < 0:
        raise UsageError(f"reserve must not be negative, got {reserve}")
    mount = drive_mount(dest)
    if mount is not None:
        log.warning("DEST %s is inside the Google Drive mount %s: staging there sends every byte "
                    "back to Drive through the slow mount. Pull to local disk instead (e.g. "
                    "/content/data)", dest, mount)
    if store is None:
        from drivestage.remote import open_store

        store, rel = open_store(src, api_root=api_root, credentials=credentials)
    else:
        rel = paths.parse(src).store_path if paths.is_drive(src) else src
    if retries is not None:
        if retries < 1:
            raise UsageError(f"retries must be at least 1, got {retries}")
        store.set_retries(retries)
    if progress is None:
        progress = _no_progress if quiet else tqdm_progress
    stage = _Stage(src, rel, dest, store, extract=extract, jobs=jobs, force=force,
                   reserve=reserve, chunk_size=chunk_size, progress=progress,
                   folder_only=bool(include or exclude))
    try:
        try:
            result = stage.run()
        except _IsFolder as found:
            from drivestage.stage_tree import pull_folder

            result = pull_folder(found.entry, src=src, rel=rel, dest=dest, store=store,
                                 extract=extract, jobs=jobs, force=force, reserve=reserve,
                                 chunk_size=chunk_size, progress=progress, include=include,
                                 exclude=exclude)
    except DriveStageError:
        raise
    except OSError as exc:
        # Local trouble (a full disk mid-download, permissions): one clear line, and the
        # partial file stays for the next run.
        where = exc.filename or dest
        if exc.errno == errno.ENOSPC:
            raise DiskSpaceError(f"the disk filled up while staging {src} into {dest} "
                                 f"({where}); free some space and run again: the download "
                                 "resumes where it stopped") from exc
        raise LocalFileError(f"cannot stage {src} into {dest}: {exc.strerror or exc} "
                             f"({where})") from exc
    result.seconds = round(time.monotonic() - began, 3)
    return result


def _no_progress(label: str, total: int, initial: int) -> None:
    return None


def tqdm_progress(label: str, total: int, initial: int) -> Callable[[int], None]:
    """A tqdm bar on stderr (bytes, rate, ETA); closed when the last byte arrives."""
    from tqdm import tqdm

    bar = tqdm(total=total, initial=0, unit="B", unit_scale=True, unit_divisor=1024,
               desc=label, file=sys.stderr, leave=False, dynamic_ncols=True)
    seen = [0]

    def update(n: int) -> None:
        seen[0] += n
        bar.update(n)
        if seen[0] >= total:
            bar.close()

    if total == 0:
        bar.close()
    return update


def safe_name(name: str, where: str) -> str:
    """A remote title usable as a local file name."""
    if name in ("", ".", ".."):
        raise UsageError(f"{where}: the remote name {name!r} cannot be a local file name")
    if name == STAMP_DIR:
        raise UsageError(f"{where}: the name {STAMP_DIR}"
                         " is where drivestage keeps its stamps and locks; rename that item on "
                         "Drive")
    return name.replace("/", "_").replace("\0", "_")


def check_space(dest: str, reserve: int, needed: int, what: str) -> None:
    """Raise DiskSpaceError unless ``dest`` has ``needed`` bytes free beyond ``reserve``."""
    free = shutil.disk_usage(dest).free - reserve
    if needed > free:
        kept = f" (keeping {format_size(reserve)} in reserve)" if reserve else ""
        raise DiskSpaceError(
            f"not enough free disk space in {dest} to {what}: needs {format_size(needed)} "
            f"({needed} bytes), only {format_size(max(free, 0))} ({max(free, 0)} bytes) free"
            f"{kept}; free some space or pull elsewhere", needed=needed, free=max(free, 0))


class _IsFolder(Exception):
    """SRC names a folder: :func:`pull` stages its tree instead (internal)."""

    def __init__(self, entry: RemoteEntry):
        super().__init__(entry.name)
        self.entry = entry


class _Stage:
    def __init__(self, src: str, rel: str, dest: str, store: Any, *, extract: bool,
                 jobs: Optional[int], force: bool, reserve: int, chunk_size: Optional[int],
                 progress: Callable[[str, int, int], Optional[Callable[[int], None]]],
                 folder_only: bool = False):
        self.src, self.rel, self.dest, self.store = src, rel, dest, store
        self.extract, self.jobs, self.force, self.reserve = extract, jobs, force, reserve
        self.chunk_size, self.progress = chunk_size, progress
        self.folder_only = folder_only  # --include/--exclude given: SRC must be a folder

    # --------------------------------------------------------------- stamp and lock

    def _stamp_path(self, name: str) -> str:
        return os.path.join(self.dest, STAMP_DIR, name + ".json")

    def _read_stamp(self, name: str) -> Optional[dict]:
        try:
            with open(self._stamp_path(name), encoding="utf-8") as fh:
                stamp = json.load(fh)
        except (OSError, ValueError):
            return None
        if not isinstance(stamp, dict) or stamp.get("version") != STAMP_VERSION:
            return None
        return stamp

    def _write_stamp(self, name: str, stamp: dict) -> None:
        atomic_write(self._stamp_path(name), json.dumps(stamp, separators=(",", ":")).encode())

    def _drop_stamp(self, name: str) -> None:
        try:
            os.unlink(self._stamp_path(name))
        except FileNotFoundError:
            pass

    def _lock(self, name: str) -> Any:
        from filelock import FileLock, Timeout

        folder = os.path.join(self.dest, STAMP_DIR)
        os.makedirs(folder, exist_ok=True)
        lock = FileLock(os.path.join(folder, name + ".lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.warning("another pull of %s into %s is running; waiting for it", self.src,
                        self.dest)
            lock.acquire()
        return lock

    # --------------------------------------------------------------- remote lookups

    def _expected_name(self) -> Optional[str]:
        return _split(self.rel)[1][-1] if _split(self.rel)[1] else None

    def _resolve(self) -> RemoteEntry:
        entry = self.store.resolve(self.rel)
        if entry.is_dir:
            raise _IsFolder(entry)
        self._check_downloadable(entry)
        return entry

    def _check_downloadable(self, entry: RemoteEntry) -> None:
        if not entry.has_content:
            raise UsageError(f"{self.src} has no binary content (a Google Docs, Sheets or "
                             "Slides file?); export it to a file on Drive first")

    def _recheck(self, stamp: dict, name: str) -> Optional[RemoteEntry]:
        """The stamped remote file, fetched by id in one call, if it is still what SRC names."""
        try:
            entry = self.store.stat(RemoteEntry(id=stamp["id"], name=stamp["name"],
                                                is_dir=False, parent_id=stamp.get("parent_id")))
        except NotFoundError:
            return None
        start, names = _split(self.rel)
        if names:  # addressed by path: the id must still sit at that path
            if entry.name != names[-1] or (stamp.get("parent_id") and
                                           entry.parent_id != stamp["parent_id"]):
                return None
        if entry.is_dir:
            return None
        return entry

    # --------------------------------------------------------------- local checks

    def _intact(self, stamp: dict, entry: RemoteEntry, target: str) -> bool:
        if stamp.get("md5") != entry.md5 or stamp.get("size") != entry.size:
            return False
        try:
            st = os.stat(target)
        except FileNotFoundError:
            return False
        if st.st_size != entry.size or st.st_mtime_ns != stamp.get("mtime_ns"):
            return False
        return True

    def _members_intact(self, stamp: dict) -> bool:
        if not stamp.get("extracted"):
            return False
        for rel, size in stamp.get("members", []):
            try:
                st = os.lstat(os.path.join(self.dest, rel))
            except FileNotFoundError:
                return False
            if size >= 0 and st.st_size != size:
                return False
        return True

    # --------------------------------------------------------------- the run

    def run(self) -> PullResult:
        """Stage SRC (raises :class:`_IsFolder` when it names a folder)."""
        name = self._expected_name()
        entry: Optional[RemoteEntry] = None
        if name is None:  # drive:id:X - the id's title names the local file
            entry = self._resolve()
            name = entry.name
        return self._locked(name, entry)

    def run_entry(self, entry: RemoteEntry) -> PullResult:
        """Stage ``entry``, already listed (a folder pull): no metadata call of its own."""
        return self._locked(entry.name, entry)

    def _locked(self, name: str, entry: Optional[RemoteEntry]) -> PullResult:
        os.makedirs(self.dest, exist_ok=True)
        name = safe_name(name, self.src)
        lock = self._lock(name)
        try:
            return self._run_locked(name, entry)
        finally:
            lock.release()

    def _run_locked(self, name: str, entry: Optional[RemoteEntry]) -> PullResult:
        target = os.path.join(self.dest, name)
        if os.path.isdir(target) and not os.path.islink(target):
            if entry is None:
                entry = self._resolve()  # SRC may be that folder, pulled before
            raise UsageError(f"{target} is a folder; {self.src} would be saved there as a "
                             "file. Move the folder away or pull into another DEST")
        stamp = None if self.force else self._read_stamp(name)
        # What the staged version extracted: members the new version lacks go when it lands.
        previous = [m[0] for m in stamp.get("members", [])] \
            if stamp is not None and stamp.get("extracted") else []
        if self.force:
            self._drop_stamp(name)
        if stamp is not None and stamp.get("src") == self.src and entry is None:
            entry = self._recheck(stamp, name)
        if entry is None:
            entry = self._resolve()
        elif stamp is not None and stamp.get("id") != entry.id:
            stamp = None
        if self.folder_only:
            raise UsageError(f"--include/--exclude choose files inside a folder, and {self.src} "
                             "is one file; pull it without them")
        self._check_downloadable(entry)

        have_file = stamp is not None and self._intact(stamp, entry, target)
        if have_file and (not self.extract or self._members_intact(stamp)):
            assert stamp is not None
            members = [m[0] for m in stamp.get("members", [])] if self.extract else []
            return self._result(entry, target, "cached", members=members,
                                extracted=bool(self.extract))

        from drivestage import download as dl

        fetched = resumed = 0
        if have_file:
            action = "extract"
        else:
            action = self._decide(stamp, entry, target)
            if action == "verified":
                log.info("verified %s: the file already at %s matches", self.src, target)
            else:
                partial = dl.partial_path(target, entry)
                if self.force:
                    for path in [partial] + dl.stale_partials(target):
                        _unlink(path)
                have = dl.partial_size(target, entry)
                action = "resume" if have else action
                check_space(self.dest, self.reserve, entry.size - have, f"download {self.src}")
                log.info("%s %s (%s) to %s%s", action, self.src, format_size(entry.size), target,
                         f" from byte {have}" if have else "")
                self._drop_stamp(name)  # the old copy is about to be replaced
                bar = self.progress(name, entry.size, have)
                res = dl.download(self.store, entry, target, jobs=self.jobs,
                                  chunk_size=self.chunk_size, progress=bar, describe=self.src)
                fetched, resumed = res.fetched, res.resumed_from
        st = os.stat(target)
        stamp = {"version": STAMP_VERSION, "src": self.src, "id": entry.id, "name": entry.name,
                 "parent_id": entry.parent_id, "md5": entry.md5, "size": entry.size,
                 "mtime_ns": st.st_mtime_ns, "extracted": False, "members": []}
        members: list[str] = []
        self._write_stamp(name, stamp)  # the download is done, whatever extraction does
        if self.extract:
            members = self._extract(target, stamp, previous)
            self._write_stamp(name, stamp)
        return self._result(entry, target, action, fetched=fetched, resumed=resumed,
                            members=members, extracted=self.extract)

    def _decide(self, stamp: Optional[dict], entry: RemoteEntry, target: str) -> str:
        """download, update (an older copy is staged) or verified (a matching file is there)."""
        from drivestage import download as dl

        if stamp is not None and stamp.get("md5") != entry.md5:
            return "update"
        if not self.force and os.path.isfile(target) and \
                os.path.getsize(target) == entry.size and entry.md5:
            if dl.verify_file(target, entry.md5, entry.size) is None:
                return "verified"
            return "update"
        return "download"

    def _extract(self, target: str, stamp: dict, previous: list[str]) -> list[str]:
        from drivestage.extract import archive_kind, extract_archive, remove_members

        if archive_kind(target) is None:
            raise ArchiveError(f"--extract: {self.src} is not a zip or tar archive "
                               f"(downloaded to {target}); pull it without --extract")
        log.info("extract %s into %s", target, self.dest)
        bar = None
        if self.progress is not _no_progress:
            bar = self.progress("extract", _extracted_total(target), 0)
        reserve = self.reserve
        members = extract_archive(target, self.dest, progress=bar,
                                  free_bytes=lambda p: shutil.disk_usage(p).free - reserve)
        if previous:
            gone = remove_members(self.dest, previous, keep=set(members))
            if gone:
                log.info("removed %d members of the previous version of %s", gone, self.src)
        rows = []
        for rel in members:
            try:
                st = os.lstat(os.path.join(self.dest, rel))
            except FileNotFoundError:  # pragma: no cover - extract just wrote it
                continue
            rows.append([rel, st.st_size if _stat.S_ISREG(st.st_mode) else -1])
        stamp["extracted"] = True
        stamp["members"] = rows
        return members

    def _result(self, entry: RemoteEntry, target: str, action: str, *, fetched: int = 0,
                resumed: int = 0, members: Optional[list[str]] = None,
                extracted: bool = False) -> PullResult:
        members = members or []
        return PullResult(src=self.src, path=target, dest=self.dest, id=entry.id,
                          name=entry.name, size=entry.size, md5=entry.md5, action=action,
                          fetched=fetched, resumed_from=resumed, extracted=extracted,
                          members=len(members), member_paths=list(members))


def _extracted_total(path: str) -> int:
    try:
        from drivestage.extract import extracted_size

        return extracted_size(path)
    except DriveStageError:
        return 0


def _split(rel: str) -> tuple[Optional[str], tuple[str, ...]]:
    if os.path.isabs(rel):
        return None, (os.path.basename(rel),)
    return paths.split_store_path(rel)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
