"""Stage one remote file (and optionally its extracted contents) into a local folder.

Each file is staged in three steps, as pooch does:

1. what is on disk is gathered (:class:`Local`: the target, the stamp's members, a partial);
2. :func:`decide` - a pure function of the stamp, the remote entry and that - picks the verb,
   which is logged (nothing on a cache hit):

   * ``cached``   - the stamp says this exact file (id, md5, size) is staged and the local copy
     is intact: no download;
   * ``verified`` - a file with the right size already sits at the target without a stamp,
     and its md5 matches (:func:`decide` answers ``check`` until that md5 is known): adopted
     without a download;
   * ``download`` / ``resume`` / ``update`` - fetch it (:mod:`drivestage.download`);
   * ``extract``  - only the extraction is missing;

3. the extraction step receives that decision (:class:`_Extraction`).

The stamp (``DEST/.drivestage/<name>.json``) records what was staged: remote id, md5, size,
the local file's size and mtime, and the extracted members with their sizes. It is written
last, so an interrupted pull never looks complete. A file lock beside it makes concurrent
pulls of one file on one machine (DDP ranks, notebook cells) download it once: the others
wait, then find the stamp.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import stat as _stat
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional

from drivestage import download as dl
from drivestage.errors import ArchiveError, DiskSpaceError, DriveStageError, NotFoundError, \
    UsageError
from drivestage.localfs import atomic_write
from drivestage.paths import StorePath
from drivestage.sizes import format_size
from drivestage.store import RemoteEntry, RemoteStore

log = logging.getLogger(__name__)

STAMP_DIR = ".drivestage"
STAMP_VERSION = 1

#: ``progress(label, total, initial)`` -> a per-byte callback, or None for no progress.
ProgressFactory = Callable[[str, int, int], Optional[Callable[[int], None]]]
Stamp = dict[str, Any]


@dataclass
class PullResult:
    """What a pull of one file did (``--json`` prints it)."""

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
    member_paths: list[str] = field(default_factory=list, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The summary without the (possibly long) member list."""
        out = asdict(self)
        out.pop("member_paths")
        return out


def no_progress(label: str, total: int, initial: int) -> None:
    """The progress factory that shows nothing."""
    return None


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


# ------------------------------------------------------------------------------ stamps

def stamp_path(dest: str, name: str) -> str:
    """Where the stamp of ``dest/<name>`` lives."""
    return os.path.join(dest, STAMP_DIR, name + ".json")


def read_stamp(dest: str, name: str) -> Optional[Stamp]:
    """The stamp of ``dest/<name>``, or None (missing, unreadable, another version)."""
    try:
        with open(stamp_path(dest, name), encoding="utf-8") as fh:
            stamp = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(stamp, dict) or stamp.get("version") != STAMP_VERSION:
        return None
    return stamp


def recheck(store: RemoteStore, stamp: Stamp, path: StorePath) -> Optional[RemoteEntry]:
    """The stamped remote file, fetched by id in one call, if it is still what ``path`` names
    (addressed by path: the id must still sit at that path)."""
    try:
        entry = store.stat(RemoteEntry(id=stamp["id"], name=stamp["name"], is_dir=False,
                                       parent_id=stamp.get("parent_id")))
    except NotFoundError:
        return None
    if path.names and (entry.name != path.names[-1] or (
            stamp.get("parent_id") and entry.parent_id != stamp["parent_id"])):
        return None
    return None if entry.is_dir else entry


# ------------------------------------------------------------------------------ the decision

@dataclass(frozen=True)
class Local:
    """What is on local disk for one file to stage (gathered before :func:`decide`)."""

    size: Optional[int] = None       # the file at the target; None when there is none
    mtime_ns: Optional[int] = None
    members_intact: bool = False     # every member the stamp lists is in place
    partial: int = 0                 # bytes of a partial download of this very version
    md5_ok: Optional[bool] = None    # the target's md5 is the remote one (None: not checked)


def decide(stamp: Optional[Stamp], entry: RemoteEntry, local: Local, *, extract: bool,
           force: bool = False) -> str:
    """What to do for ``entry``: ``cached``, ``extract``, ``verified``, ``resume``, ``update``
    or ``download``; or ``check`` when the answer depends on the target's md5 (hash it, then
    ask again with ``local.md5_ok`` set). Pure: no I/O. ``stamp`` is None with ``force``; a
    stamp of another remote file of that name (another id) counts for its content: same md5
    and size is the same file, another md5 an older version (``update``)."""
    intact = (stamp is not None and stamp.get("md5") == entry.md5
              and stamp.get("size") == entry.size and local.size == entry.size
              and local.mtime_ns == stamp.get("mtime_ns"))
    if intact and not force:
        return "cached" if not extract or local.members_intact else "extract"
    if stamp is not None and stamp.get("md5") != entry.md5:
        action = "update"
    elif not force and local.size == entry.size and entry.md5:
        if local.md5_ok is None:
            return "check"
        if local.md5_ok:
            return "verified"
        action = "update"
    else:
        action = "download"
    return "resume" if local.partial and not force else action


# ------------------------------------------------------------------------------ one file

class FileStager:
    """Stages remote files into ``dest`` (one :meth:`stage` call per file)."""

    def __init__(self, src: str, dest: str, store: RemoteStore, *, extract: bool,
                 jobs: Optional[int], force: bool, reserve: int, chunk_size: Optional[int],
                 progress: ProgressFactory, extract_progress: ProgressFactory = no_progress):
        self.src, self.dest, self.store = src, dest, store
        self.extract, self.jobs, self.force, self.reserve = extract, jobs, force, reserve
        self.chunk_size, self.progress = chunk_size, progress
        self.extract_progress = extract_progress

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

    def stage(self, entry: RemoteEntry) -> PullResult:
        """Stage the file ``entry`` as ``dest/<its name>`` (under the file's lock)."""
        if entry.unreadable:
            raise NotFoundError(entry.unreadable)
        if not entry.has_content:
            raise UsageError(f"{self.src} has no binary content (a Google Docs, Sheets or "
                             f"Slides file? its type is {entry.kind or 'unknown'}); export it "
                             "to a file on Drive first")
        os.makedirs(self.dest, exist_ok=True)
        name = safe_name(entry.name, self.src)
        lock = self._lock(name)
        try:
            return self._stage_locked(name, entry)
        finally:
            lock.release()

    def _local(self, stamp: Optional[Stamp], entry: RemoteEntry, target: str) -> Local:
        try:
            st: Optional[os.stat_result] = os.stat(target)
        except FileNotFoundError:
            st = None
        return Local(size=st.st_size if st else None, mtime_ns=st.st_mtime_ns if st else None,
                     members_intact=stamp is not None and self._members_intact(stamp),
                     partial=0 if self.force else dl.partial_size(target, entry))

    def _members_intact(self, stamp: Stamp) -> bool:
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

    def _stage_locked(self, name: str, entry: RemoteEntry) -> PullResult:
        target = os.path.join(self.dest, name)
        if os.path.isdir(target) and not os.path.islink(target):
            raise UsageError(f"{target} is a folder; {self.src} would be saved there as a "
                             "file. Move the folder away or pull into another DEST")
        stamp = None if self.force else read_stamp(self.dest, name)
        # What the staged version extracted: members the new version lacks go when it lands.
        previous = [m[0] for m in stamp.get("members", [])] \
            if stamp is not None and stamp.get("extracted") else []
        if self.force:
            self._drop_stamp(name)
            for path in [dl.partial_path(target, entry)] + dl.stale_partials(target):
                _unlink(path)
        local = self._local(stamp, entry, target)
        action = decide(stamp, entry, local, extract=self.extract, force=self.force)
        if action == "check":
            local = Local(local.size, local.mtime_ns, local.members_intact, local.partial,
                          md5_ok=dl.verify_file(target, entry.md5, entry.size) is None)
            action = decide(stamp, entry, local, extract=self.extract, force=self.force)
        if action == "cached":
            assert stamp is not None
            staged = [m[0] for m in stamp.get("members", [])] if self.extract else []
            return self._result(entry, target, action, members=staged,
                                extracted=self.extract)
        fetched = resumed = 0
        if action == "verified":
            log.info("verified %s: the file already at %s matches", self.src, target)
        elif action != "extract":
            have = local.partial
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
        self._write_stamp(name, stamp)  # the download is done, whatever extraction does
        members: list[str] = []
        if self.extract:
            members = _Extraction(self, previous)(target, action, stamp)
            self._write_stamp(name, stamp)
        return self._result(entry, target, action, fetched=fetched, resumed=resumed,
                            members=members, extracted=self.extract)

    def _write_stamp(self, name: str, stamp: Stamp) -> None:
        atomic_write(stamp_path(self.dest, name),
                     json.dumps(stamp, separators=(",", ":")).encode())

    def _drop_stamp(self, name: str) -> None:
        _unlink(stamp_path(self.dest, name))

    def _result(self, entry: RemoteEntry, target: str, action: str, *, fetched: int = 0,
                resumed: int = 0, members: Optional[list[str]] = None,
                extracted: bool = False) -> PullResult:
        members = members or []
        return PullResult(src=self.src, path=target, dest=self.dest, id=entry.id,
                          name=entry.name, size=entry.size, md5=entry.md5, action=action,
                          fetched=fetched, resumed_from=resumed, extracted=extracted,
                          members=len(members), member_paths=list(members))


class _Extraction:
    """The extraction step: receives the decision and the staged archive (as pooch's
    processors do), extracts it into DEST and records the members in the stamp."""

    def __init__(self, stager: FileStager, previous: list[str]):
        self.stager, self.previous = stager, previous

    def __call__(self, target: str, action: str, stamp: Stamp) -> list[str]:
        from drivestage.extract import archive_kind, extract_archive, remove_members

        src, dest, reserve = self.stager.src, self.stager.dest, self.stager.reserve
        if archive_kind(target) is None:
            raise ArchiveError(f"--extract: {src} is not a zip or tar archive "
                               f"(downloaded to {target}); pull it without --extract")
        log.info("extract %s into %s (%s)", target, dest, action)
        bar = None
        if self.stager.extract_progress is not no_progress:
            bar = self.stager.extract_progress("extract", _extracted_total(target), 0)
        members = extract_archive(target, dest, progress=bar,
                                  free_bytes=lambda p: shutil.disk_usage(p).free - reserve)
        if self.previous:
            gone = remove_members(dest, self.previous, keep=set(members))
            if gone:
                log.info("removed %d members of the previous version of %s", gone, src)
        rows = []
        for rel in members:
            try:
                st = os.lstat(os.path.join(dest, rel))
            except FileNotFoundError:  # pragma: no cover - extract just wrote it
                continue
            rows.append([rel, st.st_size if _stat.S_ISREG(st.st_mode) else -1])
        stamp["extracted"] = True
        stamp["members"] = rows
        return list(members)


def _extracted_total(path: str) -> int:
    try:
        from drivestage.extract import extracted_size

        return int(extracted_size(path))
    except DriveStageError:
        return 0


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
