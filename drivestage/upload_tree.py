"""``push``: mirror a local folder into a store, incrementally and verified, then prune it.

:func:`push` mirrors ``src`` into ``dest`` recursively: one listing per folder,
a file is sent only when its size or md5 differs from the remote copy (local
md5s come from :class:`~drivestage.state.Md5Cache`, so unchanged checkpoints
are not hashed again), replacements keep the remote id, and every upload is
md5-verified (:meth:`drivestage.store.RemoteStore.upload` returns a verified entry).

Retention (:mod:`drivestage.retention`, applied by :mod:`drivestage.pruning`) covers the
files directly inside ``dest`` that the policy manages. The plan is made over the union of
what is remote and what is about to be sent, so a local checkpoint the policy would delete
anyway is never uploaded, and remote deletions happen only after every upload of the push was
verified. A sidecar is uploaded only after its checkpoint's md5 matched the remote's, which is
why a remote checkpoint with its sidecar counts as verified.
"""
from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence

from drivestage import pruning, sidecar
from drivestage.errors import NotFoundError, QuotaExceededError, UsageError
from drivestage.paths import StorePath, matches
from drivestage.pruning import LocalFile, pick
from drivestage.remote import Where, open_store
from drivestage.retention import Decision, Plan, RetentionPolicy, plan
from drivestage.sizes import format_size
from drivestage.state import Md5Cache
from drivestage.store import ProgressFn, RemoteEntry, RemoteStore, quota_error

log = logging.getLogger(__name__)

#: Never mirrored: hidden temporary files (someone's atomic write in progress, e.g. the
#: trainer's checkpoints), partial downloads (download.py) and partial directory-store
#: uploads (localdir.py).
DEFAULT_EXCLUDES = (".*.tmp", ".*.partial", ".drivestage-upload-*")

Listings = dict[str, dict[str, list[RemoteEntry]]]


@dataclass
class PushResult:
    """What one push did (relative ``/``-separated paths)."""

    uploaded: list[str] = field(default_factory=list)    # sent and verified
    unchanged: int = 0                                    # already identical on the remote
    skipped_by_policy: list[str] = field(default_factory=list)  # the policy deletes them
    deleted: list[str] = field(default_factory=list)     # removed by --delete
    pruned: list[Decision] = field(default_factory=list)  # Decisions applied (deleted)
    bytes_sent: int = 0
    folders_created: int = 0
    plan: Optional[Plan] = None                           # retention plan of the DEST folder


def _wanted(rel: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    if matches(rel, DEFAULT_EXCLUDES) or matches(rel, exclude):
        return False
    return not include or matches(rel, include)


def _index(entries: Iterable[RemoteEntry]) -> dict[str, list[RemoteEntry]]:
    out: dict[str, list[RemoteEntry]] = {}
    for e in entries:
        out.setdefault(e.name, []).append(e)
    return out


@dataclass
class _LocalFile:
    """A file of the local tree."""

    rel: str              # relative path, "/"-separated
    path: str             # absolute local path
    size: int
    folder_rel: str       # "" for the top
    name: str


def _walk(src: str, include: Sequence[str], exclude: Sequence[str]
          ) -> tuple[list[str], list[_LocalFile]]:
    """Local folders (relative, parents first) and files that pass the filters."""
    folders: list[str] = [""]
    files: list[_LocalFile] = []
    for root, dirs, names in os.walk(src):
        rel_root = os.path.relpath(root, src).replace(os.sep, "/")
        rel_root = "" if rel_root == "." else rel_root
        keep_dirs = []
        for d in sorted(dirs):
            rel = f"{rel_root}/{d}" if rel_root else d
            if matches(rel, exclude) or os.path.islink(os.path.join(root, d)):
                continue
            keep_dirs.append(d)
            folders.append(rel)
        dirs[:] = keep_dirs
        for n in sorted(names):
            rel = f"{rel_root}/{n}" if rel_root else n
            if not _wanted(rel, include, exclude):
                continue
            full = os.path.join(root, n)
            try:
                st = os.stat(full)
            except FileNotFoundError:
                continue  # vanished between listing and stat (a temp file renamed away)
            if not os.path.isfile(full):
                continue
            files.append(_LocalFile(rel, os.path.abspath(full), st.st_size, rel_root, n))
    return folders, files


def push(src: str, dest: Where, policy: Optional[RetentionPolicy] = None, *,
         store: Optional[RemoteStore] = None, include: Sequence[str] = (),
         exclude: Sequence[str] = (), delete: bool = False, chunk_size: Optional[int] = None,
         protect: Iterable[str] = (), use_trash: bool = False, jobs: int = 4,
         progress: Optional[ProgressFn] = None,
         md5_cache: Optional[Md5Cache] = None) -> PushResult:
    """Mirror the local folder ``src`` into ``dest`` (incremental, verified), then prune.

    ``dest`` is a spec (``drive:Models/logs``, ``/mnt/nas/logs``), a ``(store, path)`` pair
    or, with ``store``, a path inside that store. ``protect`` names files the policy must
    never delete (the checkpoint a run resumed from). Raises
    :class:`~drivestage.errors.QuotaExceededError` before sending a byte when
    the uploads cannot fit even after pruning.
    """
    if not os.path.isdir(src):
        raise NotFoundError(f"{src} is not a local folder; give the folder to push "
                            "(e.g. logs/)")
    if jobs < 1:
        raise UsageError(f"jobs={jobs} is invalid; use 1 or more")
    cache = md5_cache or Md5Cache()
    target, path = open_store((store, str(dest)) if store is not None else dest,
                              md5_cache=cache)
    job = _Push(target, policy or RetentionPolicy(), include=include, exclude=exclude,
                chunk_size=chunk_size, protect=set(protect), use_trash=use_trash, jobs=jobs,
                progress=progress, cache=cache)
    try:
        job.run(src, path, delete)
    finally:
        cache.save()
    return job.result


Todo = tuple[_LocalFile, Optional[RemoteEntry]]


class _Push:
    """One push: the steps of :func:`push`, in order, with what they share."""

    def __init__(self, store: RemoteStore, policy: RetentionPolicy, *, include: Sequence[str],
                 exclude: Sequence[str], chunk_size: Optional[int], protect: set[str],
                 use_trash: bool, jobs: int, progress: Optional[ProgressFn], cache: Md5Cache):
        self.store, self.policy, self.include, self.exclude = store, policy, include, exclude
        self.chunk_size, self.protect, self.use_trash, self.jobs = (chunk_size, protect,
                                                                    use_trash, jobs)
        self.progress, self.cache = progress, cache
        self.result = PushResult()
        self.remote_folder: dict[str, RemoteEntry] = {}
        self.listing: Listings = {}

    def run(self, src: str, path: StorePath, delete: bool) -> None:
        store = self.store
        folders, files = _walk(src, self.include, self.exclude)
        root = store.make_folders(path) if path.start or path.names else store.resolve(path)
        if not root.is_dir:
            raise UsageError(f"{store.describe(root)} is a file, not a folder; push needs a "
                             "folder as DEST")
        self._list(root, path, folders)
        top_local = {lf.name: LocalFile(lf.path, lf.size) for lf in files if not lf.folder_rel}
        # Retention over the DEST folder: decided before anything is sent.
        decision: Optional[Plan] = None
        folder: Optional[pruning.FolderView] = None
        skip: set[str] = set()
        if self.policy.active:
            folder = pruning.view(store, self.listing[""], top_local, self.policy, self.cache)
            decision = plan(folder.candidates, self.policy, protect=self.protect)
            self.result.plan = decision
            skip = {d.name for d in decision if not d.keep}
            if not decision.fits:
                raise QuotaExceededError(
                    f"the retention budget of {format_size(self.policy.max_bytes or 0)} cannot "
                    f"hold what the policy keeps ({format_size(decision.kept_bytes)}) in "
                    f"{store.describe(root)}; raise --max-bytes or keep fewer checkpoints",
                    needed=decision.kept_bytes, free=self.policy.max_bytes)
        todo = self._todo(files, skip)
        self._check_quota(root, todo, decision, folder)
        self._send(files, todo)
        if delete:
            self._delete_extra(folders, files, decision)
        if decision is not None:
            self._apply(decision)

    def _list(self, root: RemoteEntry, path: StorePath, folders: list[str]) -> None:
        """One listing per folder. Folders we create are empty: no listing needed."""
        store = self.store
        self.remote_folder = {"": root}
        self.listing = {"": _index(store.list(root))}
        for rel in folders[1:]:
            parent_rel, name = rel.rsplit("/", 1) if "/" in rel else ("", rel)
            parent = self.remote_folder[parent_rel]
            found = [e for e in self.listing[parent_rel].get(name, []) if e.is_dir]
            if found:
                folder = pick(found, f"{store.describe(parent)}/{name}")
                self.remote_folder[rel] = folder
                self.listing[rel] = _index(store.list(folder))
            else:
                self.remote_folder[rel] = store.make_folders(
                    StorePath(path.start, path.names + tuple(rel.split("/"))))
                self.listing[rel] = {}
                self.result.folders_created += 1

    def _todo(self, files: list[_LocalFile], skip: set[str]) -> list[Todo]:
        """What to send: size differs, or same size and md5 differs."""
        todo: list[Todo] = []
        for lf in files:
            if lf.folder_rel == "" and lf.name in skip:
                self.result.skipped_by_policy.append(lf.rel)
                continue
            remote = [e for e in self.listing[lf.folder_rel].get(lf.name, []) if not e.is_dir]
            if not remote:
                todo.append((lf, None))
                continue
            try:
                local_md5 = self.cache.md5(lf.path) if any(e.size == lf.size for e in remote) \
                    else None
            except FileNotFoundError:
                continue
            where = f"{self.store.describe(self.remote_folder[lf.folder_rel])}/{lf.name}"
            target = pick(remote, where, local_md5)
            if local_md5 is not None and target.size == lf.size and target.md5 == local_md5:
                self.result.unchanged += 1
                continue
            todo.append((lf, target))
        return todo

    def _send(self, files: list[_LocalFile], todo: list[Todo]) -> None:
        """Checkpoints first; a sidecar only after its checkpoints are verified on the store."""
        pending = {(lf.folder_rel, lf.name) for lf, _ in todo}
        owners = _sidecar_owners(files)
        after = {k for k, mine in owners.items() if mine & pending}
        first = [t for t in todo if (t[0].folder_rel, t[0].name) not in after]
        second = [t for t in todo if (t[0].folder_rel, t[0].name) in after]
        failed: dict[tuple[str, str], BaseException] = {}
        mutex = threading.Lock()

        def send(item: Todo) -> None:
            lf, target = item
            if owners.get((lf.folder_rel, lf.name), set()) & set(failed):
                return  # never a sidecar for a checkpoint that is not verified
            moved = [0]

            def count(n: int) -> None:
                moved[0] += n
                if self.progress:
                    self.progress(n)
            try:
                self.store.upload(lf.path, self.remote_folder[lf.folder_rel], lf.name,
                                  replace=target, chunk_size=self.chunk_size, progress=count,
                                  md5_cache=self.cache)
            except FileNotFoundError:
                log.info("%s disappeared before it was uploaded; skipped", lf.path)
                with mutex:
                    failed[(lf.folder_rel, lf.name)] = FileNotFoundError(lf.path)
                return
            except BaseException as exc:
                with mutex:
                    failed[(lf.folder_rel, lf.name)] = exc
                raise
            with mutex:
                self.result.uploaded.append(lf.rel)
                self.result.bytes_sent += moved[0]
            log.info("uploaded %s (%s)", lf.rel, format_size(lf.size))

        errors: list[BaseException] = []
        for batch in (first, second):
            if not batch:
                continue
            if self.jobs == 1 or len(batch) == 1:
                for item in batch:
                    try:
                        send(item)
                    except QuotaExceededError as exc:
                        errors.append(exc)
                        break
                    except Exception as exc:
                        errors.append(exc)
            else:
                with ThreadPoolExecutor(max_workers=self.jobs,
                                        thread_name_prefix="drivestage-up") as ex:
                    for fut in [ex.submit(send, item) for item in batch]:
                        failure = fut.exception()
                        if failure is not None:
                            errors.append(failure)
        if errors:
            if len(errors) > 1:
                log.error("%d uploads failed; the first: %s", len(errors), errors[0])
            raise errors[0]

    def _check_quota(self, root: RemoteEntry, todo: list[Todo], decision: Optional[Plan],
                     folder: Optional[pruning.FolderView]) -> None:
        """Before a byte is sent: make room by pruning what the policy deletes anyway, or
        fail."""
        needed = sum(lf.size - (target.size if target else 0) for lf, target in todo)
        if needed <= 0:
            return
        q = self.store.quota()
        if q.free is None or needed <= q.free:
            return
        victims = _pre_prune_victims(decision, folder, self.policy) \
            if decision is not None and folder is not None else []
        freed = 0 if self.use_trash else sum(d.size for d in victims)
        where = f"{len(todo)} file(s) into {self.store.describe(root)}"
        if needed > q.free + freed:
            raise quota_error(needed, where, q)
        log.warning("not enough Drive space for %s (%s needed, %s free): pruning first",
                    where, format_size(needed), format_size(q.free))
        for d in victims:
            pruning.delete(self.store, d, self.use_trash)
            self.result.pruned.append(d)
        q = self.store.quota()
        if q.free is not None and needed > q.free:
            raise quota_error(needed, where, q)

    def _apply(self, decision: Plan) -> None:
        """Apply the plan's remote deletions (after every upload was verified)."""
        done = {d.id for d in self.result.pruned}
        for d in decision.to_delete:
            if d.id is None or d.id in done:
                continue
            try:
                pruning.delete(self.store, d, self.use_trash)
            except NotFoundError:
                pass  # already gone: the goal is reached
            self.result.pruned.append(d)

    def _delete_extra(self, folders: list[str], files: list[_LocalFile],
                      decision: Optional[Plan]) -> None:
        """``--delete``: remove remote files and folders that are not in the local tree.

        Filtered-out names are left alone (as rsync does), and in DEST itself so is
        everything the retention plan keeps as a checkpoint, autosave or sidecar, and
        ``protect``.
        """
        local_files = {lf.rel for lf in files}
        local_folders = set(folders)
        kept = set()
        if decision is not None:
            kept = {d.id for d in decision if d.keep and d.id and d.managed}
        for folder_rel, index in self.listing.items():
            for name, entries in index.items():
                rel = f"{folder_rel}/{name}" if folder_rel else name
                for e in entries:
                    if e.is_dir:
                        if rel in local_folders or matches(rel, self.exclude):
                            continue
                    elif rel in local_files or not _wanted(rel, self.include, self.exclude):
                        continue
                    if folder_rel == "" and (e.id in kept or name in self.protect):
                        continue
                    self.store.delete(e, trash=self.use_trash)
                    self.result.deleted.append(rel)
                    log.info("deleted %s (not in the local tree)", rel)


def _sidecar_owners(files: Iterable[_LocalFile]) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """(folder, sidecar name) -> {(folder, checkpoint name)} for the local files."""
    per: dict[str, set[str]] = {}
    for lf in files:
        per.setdefault(lf.folder_rel, set()).add(lf.name)
    out = {}
    for folder, names in per.items():
        for side, ckpts in sidecar.owners(names).items():
            out[(folder, side)] = {(folder, c) for c in ckpts}
    return out


def _pre_prune_victims(decision: Plan, folder: pruning.FolderView,
                       policy: RetentionPolicy) -> list[Decision]:
    """Remote files the plan deletes that may go before the upload: never the newest verified
    checkpoint or its sidecars."""
    newest = pruning.newest_verified(folder, policy)
    protected = pruning.with_sidecars(folder, [newest]) if newest else set()
    return [d for d in decision.to_delete if d.id is not None and d.name not in protected]
