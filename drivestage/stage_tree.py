"""``pull`` of a folder: stage every file of a remote folder tree into ``DEST/<folder>/``.

Each file goes through the same staging as a single pull (:class:`drivestage.stage_file.FileStager`:
partial + resume, md5, stamp, lock, ``--extract``), placed at its path in the tree, so a rerun
costs one listing per folder and no download for what is already staged. The whole tree is
listed before the first byte moves: duplicate names fail early, naming the ids, and the free
disk space is checked against everything still to download. Google Docs and other files
without binary content are skipped with a warning. Local files Drive no longer has are left
alone (pull never deletes). Archives whose members overlap merge one after the other, in
tree order (:mod:`drivestage.stage_order`): the later by name holds a path both have, a rule
of the folder's contents alone.

Small files (up to 8 MiB, or ``chunk_size``) are fetched ``jobs`` at a time (default 4), one
stream each; larger ones one after another, each with ``jobs`` streams when given, else as
many as measuring finds worth it (:mod:`drivestage.download`). With ``--extract``, small
archives after a larger one in tree order are fetched after it (several at once again
until the next larger one), so that archives start in tree order.
"""
from __future__ import annotations

import logging
import os
import stat
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from drivestage import download as dl
from drivestage import partials, stage_recheck, stamp_cache, stamps
from drivestage.errors import HeldBackError, LocalFileError, NotFoundError, UsageError, \
    UserFilesError
from drivestage.extract.statedir import state_lock
from drivestage.extract.validation import STATE_DIR
from drivestage.pool import each
from drivestage.no_match import refuse_nothing_chosen
from drivestage.paths import StorePath, is_reserved
from drivestage.shell_words import exclude_pattern
from drivestage.sizes import check_space, format_size
from drivestage.localdir import LocalDirStore
from drivestage.stage_file import FileStager, ProgressFactory, PullResult, safe_name
from drivestage.stage_clash import drive_folders, refuse_member_clash
from drivestage.stage_failed import ALONE, Refusals
from drivestage.stage_order import MergeOrder
from drivestage.stage_walk import Item, walk
from drivestage.store import RemoteEntry, RemoteStore

log = logging.getLogger(__name__)


@dataclass
class FolderPullResult:
    """What a pull of a folder did (``--json`` prints it)."""

    src: str
    path: str                 # the local folder: DEST/<folder name>
    dest: str
    id: str
    files: list[PullResult] = field(default_factory=list)  # one per file, in tree order
    skipped: list[str] = field(default_factory=list)       # remote files without content
    seconds: float = 0.0
    api_calls: Optional[int] = None  # requests sent to Drive by the whole pull

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def fetched(self) -> int:
        return sum(f.fetched for f in self.files)

    def actions(self) -> dict[str, int]:
        """How many files each action staged (``{"download": 3, "cached": 9}``)."""
        out: dict[str, int] = {}
        for f in self.files:
            out[f.action] = out.get(f.action, 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {"src": self.src, "path": self.path, "dest": self.dest, "id": self.id,
                "folder": True, "size": self.size, "fetched": self.fetched,
                "actions": self.actions(), "skipped": list(self.skipped),
                "seconds": self.seconds, "api_calls": self.api_calls,
                "files": [f.to_json() for f in self.files]}


class _NotStarted(Exception):
    """A file of a folder pull not started because another one failed."""


def pull_folder(folder: RemoteEntry, *, src: str, path: StorePath, dest: str,
                store: RemoteStore, extract: bool, jobs: Optional[int], force: bool,
                reserve: int, chunk_size: Optional[int], progress: ProgressFactory,
                include: Sequence[str] = (), exclude: Sequence[str] = (),
                remove_archive: bool = False) -> FolderPullResult:
    """Stage the tree under ``folder`` (found at ``path``) into ``dest/<folder name>`` (see
    the module doc)."""
    # Each stamp read once per version, not once per archive asking (stampcache36).
    with stamp_cache.scope():
        return _pull_folder(folder, src=src, path=path, dest=dest, store=store,
                            extract=extract, jobs=jobs, force=force, reserve=reserve,
                            chunk_size=chunk_size, progress=progress, include=include,
                            exclude=exclude, remove_archive=remove_archive)


def _pull_folder(folder: RemoteEntry, *, src: str, path: StorePath, dest: str,
                 store: RemoteStore, extract: bool, jobs: Optional[int], force: bool,
                 reserve: int, chunk_size: Optional[int], progress: ProgressFactory,
                 include: Sequence[str], exclude: Sequence[str],
                 remove_archive: bool) -> FolderPullResult:
    if not folder.name:
        raise UsageError(f"{src} is the root of the drive; name a folder in it to pull")
    began = time.monotonic()
    root = os.path.join(dest, safe_name(folder.name, src, folder.id))
    _refuse_into_itself(store, folder, src, dest, root)
    streams = jobs  # per large file (None: found by measuring)
    jobs = max(1, int(jobs or dl.DEFAULT_JOBS))
    walked = time.time_ns()  # a stamp written since may be of a newer version than listed
    items, skipped, listed = walk(store, folder, src.rstrip("/"), root, jobs, include,
                                  exclude, force, extract)
    if not items and not skipped and (include or exclude):
        _refuse_nothing_chosen(src.rstrip("/"), root, listed, include, exclude)
    os.makedirs(dest, exist_ok=True)
    if extract:   # (before a folder's own check: "move the file away" was no way out)
        refuse_member_clash(root, items, _is_archive)
    for where in sorted({it.folder for it in items} | {root}):
        _real_folders(root, where, dest, create=False)  # a link there: refused before a byte
    missing = [it for it in items if not _looks_staged(it, extract and _is_archive(it))]
    todo = sum(it.entry.size - dl.partial_size(it.target, it.entry) for it in missing)
    _real_folders(root, root, dest, create=True)
    # On disk, not in bytes: a dataset kept as a folder is many small files, each taking
    # whole blocks, and so does each one's stamp. Counting bytes passed a 600 KiB folder of
    # 607 files on a 3 MiB disk, where it took 4.8 MiB, and the pull died half-way.
    block = _block_size(root)
    on_disk = sum(_blocks(it.entry.size, block) - _blocks(dl.partial_size(it.target, it.entry),
                                                          block) + block for it in missing)
    check_space(root, reserve, on_disk, f"download {src}",
                f" on disk for {len(missing)} files of {format_size(todo)} (each file and its "
                f"stamp take whole {format_size(block)} blocks)")
    log.info("pull %s: %d files, %d skipped, up to %d bytes to download", src, len(items),
             len(skipped), todo)

    limit = int(chunk_size or dl.DEFAULT_CHUNK_SIZE)
    # No archive member may replace a file this pull stages, nor one an earlier pull did,
    # nor be a file where the pull stages a folder (marked by a trailing separator: one
    # extracted there first failed the folder's files, "move the file away": attackorder35).
    staged = frozenset({it.target for it in items}.union(
        *(stamps.staged_files(folder) for folder in {it.folder for it in items}),
        (os.path.join(folder, "") for folder in drive_folders(root, items))))
    bar = _TreeProgress(progress, os.path.basename(root), sum(it.entry.size for it in items))
    # Archives that share a path merge one after the other in tree order (a folder's files
    # by name, then its subfolders'): the later one holds the path, whatever --chunk-size,
    # --jobs or the network do. (By staging order, small files first, a.zip of 9 MiB and
    # b.zip of 1 MiB left a.zip's bytes there, b.zip's with --chunk-size 16MiB: chunkdet35.)
    archives = [i for i, it in enumerate(items) if extract and _is_archive(it)]
    small = _small_first(items, archives, limit)
    names = [(it.src, exclude_pattern(_inside(root, it))) for it in items]
    # Only the stamps of these files, as listed, stand for a member another archive of the
    # pull wrote (stamps.siblings_wrote): not one deleted from Drive or of an older version;
    # ranked in the same tree order.
    current = stamps.Listed({it.entry.id: it.entry.md5 for it in items},
                            {it.entry.id: it.folder for it in items},
                            {it.entry.id: rank for rank, it in enumerate(items)})
    order = MergeOrder(archives, names, current)

    refused = Refusals(names, archives, src)

    def stage(index: int, streams: Optional[int]) -> Optional[PullResult]:
        """Stage file ``index``; None when Drive would not serve it (stage_failed)."""
        it = items[index]
        failed = False
        if refused.capped(index):   # (the account's download cap: stage_failed)
            order.done(index, True)
            return None
        ticket = refused.ticket()
        try:
            _real_folders(root, it.folder, dest, create=True)  # again: DEST may have changed
            result = stager(index, streams, extract and _is_archive(it)
                            and not refused.holds_back(index)).stage(it.entry)
        except ALONE as exc:
            # Drive refuses this file alone (flagged as malware, downloaded too often, bytes
            # that never matched): the rest of the folder still comes (as for a file whose
            # download is restricted); the pull fails at its end, naming it.
            refused.add(index, exc, ticket)
            failed = True
            return None
        except NotFoundError as exc:   # (deleted on Drive since the walk listed it?)
            went = stage_recheck.gone(store, it)
            if went is None:
                raise
            raise went from exc
        except HeldBackError:   # (an archive before it failed while it was downloaded)
            refused.hold(index)
            result = stager(index, streams, False).stage(it.entry)   # (its stamp: no bytes)
        finally:
            order.done(index, failed)  # its stamp written (or it failed): the next may merge
        if extract and _is_archive(it) and not result.extracted:
            refused.hold(index)
        bar.done(index, it.entry.size)
        refused.served(ticket, result.fetched > 0)
        return result

    def stager(index: int, streams: Optional[int], extracting: bool) -> FileStager:
        it = items[index]
        return FileStager(it.src, it.folder, store, extract=extracting, jobs=streams,
                          force=force, reserve=reserve, chunk_size=chunk_size,
                          progress=bar.for_file(index), lock_dir=root, protect=staged,
                          walked=walked, current=current,
                          turn=order.turn(index, it.folder, it.entry.id) if extracting else None,
                          remove_archive=remove_archive)

    results: dict[int, PullResult] = {}

    def stage_some(indices: list[int]) -> None:
        """Stage these small files ``jobs`` at a time, each taken in order."""
        failed: list[int] = []

        def stage_small(index: int) -> Optional[PullResult]:
            if failed:  # one failed: the pull fails with it, no other file starts
                order.done(index)
                raise _NotStarted
            try:
                return stage(index, 1)
            except BaseException:
                failed.append(index)
                raise

        # A Ctrl-C starts no other file and waits for those under way (each())
        outcomes = each(stage_small, indices, min(jobs, len(indices)), "drivestage-pull")
        for i, outcome in zip(indices, outcomes):
            # In file order: a file not started comes after the one that failed.
            if isinstance(outcome, BaseException):
                raise outcome
            if outcome is not None:
                results[i] = outcome

    def stage_all() -> None:
        if small:
            stage_some(small)
        # The rest in tree order: a large file alone with its streams; small archives after
        # a larger one (_small_first) between two of them, several at once again.
        rest = [i for i in range(len(items)) if i not in results and i not in refused.failed
                and i not in refused.unstarted]
        while rest:
            if items[rest[0]].entry.size > limit:
                one = stage(rest[0], streams)
                if one is not None:
                    results[rest[0]] = one
                rest = rest[1:]
                continue
            run = next((n for n, i in enumerate(rest) if items[i].entry.size > limit),
                       len(rest))
            stage_some(rest[:run])
            rest = rest[run:]

    try:
        # A killed run's leftovers and each name's stamps looked for in one listing per folder
        # (and state folder), not one per file.
        folders = {os.path.abspath(it.folder) for it in items}
        with partials.listed_once(folders | {os.path.join(f, STATE_DIR) for f in folders}):
            stage_all()
    finally:
        bar.close()
    _drop_orphan_partials(root, listed)
    error = refused.error()   # (every file Drive would not serve, named, exit 1)
    if error is not None:
        raise error
    _refuse_left([items[i] for i in archives], current)
    # A file replaced on Drive during the pull: the tree staged mixes two versions (attack49).
    stage_recheck.check_unchanged(store, [(it, results[i]) for i, it in enumerate(items)], jobs,
                                  src.rstrip("/"))
    return FolderPullResult(src=src, path=root, dest=dest, id=folder.id,
                            files=[results[i] for i in range(len(items))], skipped=skipped,
                            seconds=round(time.monotonic() - began, 3))


def _small_first(items: list[Item], archives: list[int], limit: int) -> list[int]:
    """The files fetched first, ``jobs`` at a time, in tree order: those up to ``limit``
    bytes, but no archive after a larger one (``archives``: in tree order). An archive
    merges only after the archives before it in tree order that share a path with it
    (:mod:`drivestage.stage_order`), and a wait must be for a file already under way: a
    small archive that waited in the first round for a larger one, fetched after that
    round, would wait for good. So it is fetched after that one (``stage_all``)."""
    larger = next((i for i in archives if items[i].entry.size > limit), len(items))
    later = {i for i in archives if i > larger}
    return [i for i, it in enumerate(items) if it.entry.size <= limit and i not in later]


def _refuse_left(archives: list[Item], current: stamps.Listed) -> None:
    """Refuse the pull when an archive left paths (the user's files there hold other bytes
    than its members: :mod:`drivestage.extract.occupied`) that no archive after it took:
    named as that archive would have refused them. The last such archive is named: the one
    whose members would land there. Its stamp is not in place: the rerun judges it again
    (and writes a path that nothing holds now: a later archive's update took it away)."""
    for it in reversed(archives):
        stamp = stamps.own(it.folder, os.path.basename(it.target), it.entry.id)
        left = stamps.left_over(it.folder, stamp, current) if stamp is not None else []
        left = [p for p in left if os.path.lexists(os.path.join(it.folder, *p.split("/")))]
        if left:
            raise UserFilesError(it.src, it.folder, min(left), len(left), partly=True)


def _refuse_into_itself(store: RemoteStore, folder: RemoteEntry, src: str, dest: str,
                        root: str) -> None:
    """A local folder's copy must lie outside it. Into its parent (its copy is itself), into
    itself or a folder inside it, the first pull wrote DEST's state folder into the folder
    pulled (DEST deeper: copies of its own copies), and every rerun failed on that
    ``.drivestage`` with "rename that item on Drive"."""
    if not isinstance(store, LocalDirStore):
        return
    # (its look at the folder pulled left by a Ctrl-C where a mount hangs: hang52)
    pulled = store.looked(lambda: os.path.realpath(store.describe(folder)))
    copy = os.path.realpath(root)
    if copy == pulled or copy.startswith(pulled.rstrip(os.sep) + os.sep):
        raise UsageError(f"cannot pull {src} into {dest}: its copy {root} would lie inside "
                         f"the folder pulled, {pulled} (its stamps and copies written into "
                         "what is read); pull into a folder outside it")


def _refuse_nothing_chosen(src: str, root: str, listed: dict[str, set[str]],
                          include: Sequence[str], exclude: Sequence[str]) -> None:
    """Stop a pull whose globs chose no file of the folder, before a byte is written
    (:mod:`drivestage.no_match`), naming what the walk saw (a folder left out unlisted), but
    the names drivestage keeps (a mount's synced ``.drivestage``, a partial download: no pull
    takes them, and they took the five names shown before the user's own: attack36)."""
    held = [os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")
            for folder, names in listed.items() for name in names
            if os.path.join(folder, name) not in listed and not is_reserved(name)]
    refuse_nothing_chosen(src, include, exclude, held,
                          [os.path.basename(folder) for folder in listed if folder != root])


def _inside(root: str, item: Item) -> str:
    """Where ``item`` is inside the pulled folder, as ``--exclude`` globs are matched to."""
    rel = os.path.relpath(item.folder, root)
    return "/".join(([] if rel == "." else rel.split(os.sep)) + [item.entry.name])


def _drop_orphan_partials(root: str, listed: dict[str, set[str]]) -> None:
    """Remove the partial downloads (and their records) of files the folders no longer have
    on Drive: a pull killed or failed while it fetched one, then the file deleted or renamed
    on Drive. No rerun would finish or remove them, and they may be large. Each goes under
    its file's lock, taken without waiting: a pull fetching a file of that name right now
    (another folder's, pulled into the same DEST, or a single-file pull there) keeps its
    partial. Only in real folders below ``root``: never through a link."""
    for where, names in listed.items():
        if not _real_below(root, where):
            continue
        for name, found in partials.orphans(where, names).items():
            with state_lock(where, name + ".lock", None, transient=True) as mine:
                if mine:
                    log.info("removing the partial download of %s, which Drive no longer "
                             "has", os.path.join(where, name))
                    for path in found:
                        partials.unlink(path)


def _real_folders(root: str, folder: str, dest: str, *, create: bool) -> None:
    """Check that ``root`` and each folder from it down to ``folder`` is a real folder, made
    when missing (``create``; else the check stops at the first missing one). A link there
    (left by the user, or put there by another program while the pull runs) would take the
    files, their partial downloads and stamps wherever it leads, out of DEST; a file there
    cannot hold them. Either is one line (:class:`LocalFileError`), before anything is
    written below it. DEST itself may be a link: the user named it."""
    rel = os.path.relpath(folder, root)
    path = root
    for part in [""] + ([] if rel == os.curdir else rel.split(os.sep)):
        path = os.path.join(path, part) if part else path
        if create:
            try:
                os.mkdir(path)
            except FileExistsError:
                pass
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            if create:
                raise
            return
        if stat.S_ISLNK(st.st_mode):
            raise LocalFileError(
                f"{path} is a link; a folder pull writes only into real folders inside {dest}, "
                "never through a link, which may lead anywhere. Remove the link (or pull "
                "into the folder it leads to) and run again")
        if not stat.S_ISDIR(st.st_mode):
            raise LocalFileError(
                f"{path} is a file where the folder pull needs a folder (Drive has a folder "
                "of that name); move the file away and run again")


def _real_below(root: str, folder: str) -> bool:
    """Whether ``root`` and every folder from it down to ``folder`` is a real folder (no
    link, nothing missing)."""
    rel = os.path.relpath(folder, root)
    path = root
    for part in [""] + ([] if rel == os.curdir else rel.split(os.sep)):
        path = os.path.join(path, part) if part else path
        try:
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                return False
        except OSError:
            return False
    return True


def _is_archive(item: Item) -> bool:
    """Archives by name: ``--extract`` on a folder extracts those and keeps the rest as is."""
    from drivestage.extract import ARCHIVE_SUFFIXES

    return item.entry.name.lower().endswith(ARCHIVE_SUFFIXES)


def _block_size(path: str) -> int:
    """The allocation unit of the file system holding ``path`` (4 KiB when not told)."""
    try:
        return max(int(os.statvfs(path).f_frsize), 512)
    except (OSError, AttributeError):  # no statvfs on Windows
        return 4096


def _blocks(size: int, block: int) -> int:
    """Bytes a file of ``size`` bytes takes on disk, in whole blocks."""
    return -(-size // block) * block


def _looks_staged(item: Item, extract: bool) -> bool:
    """A file of the right size already at the target (its md5 is checked when staged), or
    with ``extract``, an archive of this version removed once extracted (--remove-archive:
    its rerun downloads nothing unless a member is gone, so it needs no room)."""
    try:
        return os.path.getsize(item.target) == item.entry.size
    except FileNotFoundError:
        stamp = stamps.own(item.folder, os.path.basename(item.target), item.entry.id) \
            if extract else None
        return stamp is not None and stamp.get("removed") is True and \
            stamp.get("md5") == item.entry.md5 and stamp.get("size") == item.entry.size
    except OSError:
        return False


class _TreeProgress:
    """One bar for the whole tree, fed by every file's transfer (from several threads). It
    is made when a first file starts a transfer, counting what was staged before it: a
    rerun that downloads nothing shows no bar (nor imports tqdm), as a single file's does."""

    def __init__(self, progress: ProgressFactory,
                 label: str, total: int):
        self.progress, self.label, self.total = progress, label, total
        self.update: Optional[Callable[[int], None]] = None
        self.started = False
        self.lock = threading.Lock()
        self.seen: dict[int, int] = {}
        self.counted = 0   # bytes counted before the bar was made
        self.closed = False

    def for_file(self, index: int) -> ProgressFactory:
        """A per-file progress factory: the file's transfer bytes go to the tree's bar."""

        def factory(label: str, total: int, initial: int) -> Optional[Callable[[int], None]]:
            with self.lock:
                if not self.started and not self.closed:
                    self.started = True
                    self.update = self.progress(self.label, self.total, 0)
                    if self.update is not None and self.counted:
                        self.update(self.counted)
            if self.update is None:
                return None
            return lambda n: self._add(index, n)

        return factory

    def _add(self, index: int, n: int) -> None:
        with self.lock:
            self.seen[index] = self.seen.get(index, 0) + n
            if self.update is not None and not self.closed:
                self.update(n)
            elif not self.started:
                self.counted += n

    def done(self, index: int, size: int) -> None:
        """A file is staged: count what it did not transfer (already staged, verified)."""
        with self.lock:
            rest = size - self.seen.get(index, 0)
        if rest > 0:
            self._add(index, rest)

    def close(self) -> None:
        with self.lock:
            self.closed = True
