"""Push a local folder to a store incrementally, prune it by policy, and do both periodically.

:func:`push` mirrors ``src`` into ``dest`` recursively: one listing per folder,
a file is sent only when its size or md5 differs from the remote copy (local
md5s come from :class:`~drivestage.state.Md5Cache`, so unchanged checkpoints
are not hashed again), replacements keep the remote id, and every upload is
md5-verified (:func:`drivestage.drive.upload.upload_file`).

Retention (:mod:`drivestage.retention`) applies to the files directly inside
``dest`` whose names match the policy's pattern. The plan is made over the
union of what is remote and what is about to be sent, so a local checkpoint
the policy would delete anyway is never uploaded, and remote deletions happen
only after every upload of the push was verified. "Verified" on the remote
means: a checkpoint whose sidecar is there (``epoch_004.pt.json``, or the
trainer's ``epoch_004.json``), because a sidecar is uploaded only after its
checkpoint's md5 matched Drive's.

:class:`Mirror` runs push + prune in a background thread, periodically and on
request, and reports failures on :meth:`Mirror.flush`.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional, Sequence, Union

from drivestage.errors import (
    DriveStageError,
    MirrorError,
    NotFoundError,
    QuotaExceededError,
    UsageError,
)
from drivestage.paths import matches
from drivestage.retention import (
    Candidate,
    Decision,
    Plan,
    RetentionPolicy,
    parse_sidecar,
    plan,
)
from drivestage.sizes import format_size
from drivestage.paths import StorePath
from drivestage.remote import Where, open_store
from drivestage.store import ProgressFn, RemoteEntry, RemoteStore, quota_error
from drivestage.state import Md5Cache

log = logging.getLogger(__name__)

#: Never mirrored: hidden temporary files (someone's atomic write in progress, e.g. the
#: trainer's checkpoints), partial downloads (download.py) and partial directory-store
#: uploads (localdir.py).
DEFAULT_EXCLUDES = (".*.tmp", ".*.partial", ".drivestage-upload-*")
SIDECAR = ".json"
#: Sidecars (small JSON) larger than this are not read for metrics.
_SIDECAR_MAX = 1 << 20

#: A destination: a spec (``drive:a/b``, ``/mnt/nas/logs``) or ``(store, path)``.
Dest = Where


@dataclass
class PushResult:
    """What one push did (relative ``/``-separated paths)."""

    uploaded: list = field(default_factory=list)     # sent and verified
    unchanged: int = 0                                # already identical on the remote
    skipped_by_policy: list = field(default_factory=list)  # the policy would delete them
    deleted: list = field(default_factory=list)      # removed by --delete
    pruned: list = field(default_factory=list)       # Decisions applied (deleted)
    bytes_sent: int = 0
    folders_created: int = 0
    plan: Optional[Plan] = None                       # retention plan of the DEST folder


# --------------------------------------------------------------------------- helpers

def _open(dest: Dest, store: Optional[RemoteStore], md5_cache: Md5Cache
          ) -> tuple[RemoteStore, StorePath]:
    """``dest`` through the one door (:func:`drivestage.remote.open_store`); with ``store``,
    ``dest`` is a path inside it. A directory store keeps its md5s in ``md5_cache``, so listing
    it does not hash unchanged multi-GB checkpoints on every push."""
    return open_store((store, str(dest)) if store is not None else dest, md5_cache=md5_cache)


def _wanted(rel: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    if matches(rel, DEFAULT_EXCLUDES) or matches(rel, exclude):
        return False
    return not include or matches(rel, include)


def _index(entries: Iterable[RemoteEntry]) -> dict[str, list[RemoteEntry]]:
    out: dict[str, list[RemoteEntry]] = {}
    for e in entries:
        out.setdefault(e.name, []).append(e)
    return out


def _pick(dups: list[RemoteEntry], where: str, md5: Optional[str] = None) -> RemoteEntry:
    """One entry among same-named ones (Drive allows duplicates): say which ids collide."""
    if len(dups) > 1:
        log.warning("%s: %d items share this name (ids %s); using the newest", where,
                    len(dups), ", ".join(e.id for e in dups))
    if md5:
        for e in dups:
            if e.md5 == md5:
                return e
    return max(dups, key=lambda e: (e.modified, e.id))


@dataclass
class _LocalFile:
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


def sidecar_map(names: Iterable[str]) -> dict[str, str]:
    """Checkpoint name -> its sidecar's name, for both conventions in use:
    ``epoch_004.pt.json`` (drivestage's) and ``epoch_004.json`` (stem + ``.json``)."""
    names = set(names)
    out: dict[str, str] = {}
    for n in names:
        if n.endswith(SIDECAR):
            continue
        if n + SIDECAR in names:
            out[n] = n + SIDECAR
        else:
            stem = os.path.splitext(n)[0]
            if stem != n and stem + SIDECAR in names:
                out[n] = stem + SIDECAR
    return out


def _read_remote_sidecar(store: Any, entry: RemoteEntry) -> tuple[Optional[int], dict]:
    if entry.size > _SIDECAR_MAX:
        return None, {}
    try:
        data = b"".join(store.read_range(entry, 0, entry.size)) if entry.size else b""
    except DriveStageError as exc:
        log.warning("could not read sidecar %s: %s", entry.name, exc)
        return None, {}
    return parse_sidecar(data)


def _read_local_sidecar(path: str) -> tuple[Optional[int], dict]:
    try:
        if os.path.getsize(path) > _SIDECAR_MAX:
            return None, {}
        with open(path, "rb") as fh:
            return parse_sidecar(fh.read())
    except OSError:
        return None, {}


def _candidates(remote: dict[str, list[RemoteEntry]], local: dict[str, _LocalFile],
                policy: RetentionPolicy, store: Any) -> list[Candidate]:
    """Everything in the DEST folder after this push (remote files, local ones replacing them).

    Checkpoints get the epoch and metrics of their sidecar (the local one when
    there is one, else the remote one)."""
    regex = policy.regex
    out: list[Candidate] = []
    # Folders are never candidates: retention manages the files directly inside DEST.
    remote = {n: fs for n, fs in ((n, [e for e in es if not e.is_dir])
                                  for n, es in remote.items()) if fs}
    local_side = sidecar_map(local)
    remote_side = sidecar_map(set(remote) | set(local))
    for name in sorted(set(remote) | set(local)):
        epoch, metrics = None, {}
        if not name.endswith(SIDECAR) and regex.search(name) is not None:
            if name in local_side:
                epoch, metrics = _read_local_sidecar(local[local_side[name]].path)
            elif remote_side.get(name) in remote:
                side = remote_side[name]
                epoch, metrics = _read_remote_sidecar(store, _pick(remote[side], side))
        if name in local:
            # Same name on the remote: the local file replaces it (keeps its id).
            rid = _pick(remote[name], name).id if name in remote else None
            out.append(Candidate(name, local[name].size, time.time(), metrics, epoch, rid))
            continue
        for e in remote[name]:
            out.append(Candidate(name, e.size, e.modified, metrics, epoch, e.id))
    return out


def _with_stem_sidecars(decision: Plan, names: Iterable[str]) -> Plan:
    """The plan, with ``stem.json`` sidecars deleted along with their checkpoint.

    Retention pairs ``X.json`` with ``X``; the trainer's sidecars are named
    ``epoch_004.json`` for ``epoch_004.pt``, which it would leave as "not a checkpoint"."""
    side = sidecar_map(names)
    gone, kept = decision.deleted_names, decision.kept_names
    follow: dict[str, str] = {}
    for ckpt, sc in side.items():
        if ckpt in gone and sc != ckpt + SIDECAR \
                and not any(side.get(k) == sc for k in kept if k != sc):
            follow[sc] = ckpt
    if not follow:
        return decision
    rows = tuple(Decision(d.name, False, f"sidecar of {follow[d.name]} (deleted with it)",
                          d.size, d.id) if d.keep and d.name in follow else d
                 for d in decision)
    return dataclasses.replace(decision, decisions=rows)


def newest_verified(entries: Iterable[RemoteEntry], policy: RetentionPolicy) -> Optional[str]:
    """Name of the newest checkpoint that has its sidecar (by the pattern's epoch, else mtime)."""
    entries = [e for e in entries if not e.is_dir]
    side = sidecar_map(e.name for e in entries)
    best = None
    for e in entries:
        if e.name not in side:
            continue
        m = policy.regex.search(e.name)
        if m is None:
            continue
        epoch = None
        if "epoch" in policy.regex.groupindex and m.group("epoch") is not None:
            try:
                epoch = int(m.group("epoch"))
            except ValueError:
                epoch = None
        key = (epoch if epoch is not None else -1, e.modified)
        if best is None or key > best[0]:
            best = (key, e.name)
    return best[1] if best else None


# --------------------------------------------------------------------------- push

def push(src: str, dest: Dest, policy: Optional[RetentionPolicy] = None, *,
         store: Any = None, include: Sequence[str] = (), exclude: Sequence[str] = (),
         delete: bool = False, chunk_size: Optional[int] = None, protect: Iterable[str] = (),
         use_trash: bool = False, jobs: int = 4, progress: Optional[ProgressFn] = None,
         md5_cache: Optional[Md5Cache] = None) -> PushResult:
    """Mirror the local folder ``src`` into ``dest`` (incremental, verified), then prune.

    ``dest`` is a spec (``drive:Models/logs``, ``/mnt/nas/logs``) or, with
    ``store``, a path inside that store. ``protect`` names files the policy must
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
    store, dest_path = _open(dest, store, cache)
    policy = policy or RetentionPolicy()
    protect = set(protect)
    result = PushResult()
    try:
        _push(src, store, dest_path, policy, include, exclude, delete, chunk_size, protect,
              use_trash, jobs, progress, cache, result)
    finally:
        cache.save()
    return result


def _push(src, store, dest_path, policy, include, exclude, delete, chunk_size, protect,
          use_trash, jobs, progress, cache, result) -> None:
    folders, files = _walk(src, include, exclude)
    root = store.make_folders(dest_path) if dest_path.start or dest_path.names \
        else store.resolve(dest_path)
    if not root.is_dir:
        raise UsageError(f"{store.describe(root)} is a file, not a folder; push needs a folder "
                         "as DEST")
    # One listing per folder. Folders we create are empty: no listing needed.
    remote_folder: dict[str, RemoteEntry] = {"": root}
    listing: dict[str, dict[str, list[RemoteEntry]]] = {"": _index(store.list(root))}
    for rel in folders[1:]:
        parent_rel, name = rel.rsplit("/", 1) if "/" in rel else ("", rel)
        parent = remote_folder[parent_rel]
        found = [e for e in listing[parent_rel].get(name, []) if e.is_dir]
        if found:
            folder = _pick(found, f"{store.describe(parent)}/{name}")
            remote_folder[rel] = folder
            listing[rel] = _index(store.list(folder))
        else:
            remote_folder[rel] = store.make_folders(
                StorePath(dest_path.start, dest_path.names + tuple(rel.split("/"))))
            listing[rel] = {}
            result.folders_created += 1

    by_folder: dict[str, dict[str, _LocalFile]] = {}
    for lf in files:
        by_folder.setdefault(lf.folder_rel, {})[lf.name] = lf

    # Retention over the DEST folder: decided before anything is sent.
    top_local = by_folder.get("", {})
    decision: Optional[Plan] = None
    skip: set[str] = set()
    if policy.active:
        decision = plan(_candidates(listing[""], top_local, policy, store), policy,
                        protect=protect)
        decision = _with_stem_sidecars(decision, set(listing[""]) | set(top_local))
        result.plan = decision
        skip = {d.name for d in decision if not d.keep}
        if not decision.fits:
            raise QuotaExceededError(
                f"the retention budget of {format_size(policy.max_bytes or 0)} cannot hold "
                f"what the policy keeps ({format_size(decision.kept_bytes)}) in "
                f"{store.describe(root)}; raise --max-bytes or keep fewer checkpoints",
                needed=decision.kept_bytes, free=policy.max_bytes)

    # What to send: size differs, or same size and md5 differs.
    todo: list[tuple[_LocalFile, Optional[RemoteEntry]]] = []
    for lf in files:
        if lf.folder_rel == "" and lf.name in skip:
            result.skipped_by_policy.append(lf.rel)
            continue
        remote = listing[lf.folder_rel].get(lf.name)
        remote = [e for e in remote or [] if not e.is_dir]
        if remote:
            try:
                local_md5 = cache.md5(lf.path) if any(e.size == lf.size for e in remote) \
                    else None
            except FileNotFoundError:
                continue
            target = _pick(remote, f"{store.describe(remote_folder[lf.folder_rel])}/{lf.name}",
                           local_md5)
            if local_md5 is not None and target.size == lf.size and target.md5 == local_md5:
                result.unchanged += 1
                continue
            todo.append((lf, target))
        else:
            todo.append((lf, None))

    _check_quota(store, root, todo, decision, listing[""], policy, use_trash, result)

    # Checkpoints first; a sidecar only after its checkpoint is verified on the remote.
    pending = {(lf.folder_rel, lf.name) for lf, _ in todo}
    owners = _sidecar_owners(files)
    after = {k for k, owner in owners.items() if owner in pending}
    first = [t for t in todo if (t[0].folder_rel, t[0].name) not in after]
    second = [t for t in todo if (t[0].folder_rel, t[0].name) in after]
    failed: dict[tuple[str, str], BaseException] = {}
    mutex = threading.Lock()

    def send(item: tuple[_LocalFile, Optional[RemoteEntry]]) -> None:
        lf, target = item
        owner = owners.get((lf.folder_rel, lf.name))
        if owner is not None and owner in failed:
            return  # never a sidecar for a checkpoint that is not verified
        moved = [0]

        def count(n: int) -> None:
            moved[0] += n
            if progress:
                progress(n)
        try:
            store.upload(lf.path, remote_folder[lf.folder_rel], lf.name, replace=target,
                         chunk_size=chunk_size, progress=count, md5_cache=cache)
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
            result.uploaded.append(lf.rel)
            result.bytes_sent += moved[0]
        log.info("uploaded %s (%s)", lf.rel, format_size(lf.size))

    errors: list[BaseException] = []
    for batch in (first, second):
        if not batch:
            continue
        if jobs == 1 or len(batch) == 1:
            for item in batch:
                try:
                    send(item)
                except (QuotaExceededError,) as exc:
                    errors.append(exc)
                    break
                except Exception as exc:
                    errors.append(exc)
        else:
            with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="drivestage-up") as ex:
                for fut in [ex.submit(send, item) for item in batch]:
                    exc = fut.exception()
                    if exc is not None:
                        errors.append(exc)
    if errors:
        first_err = errors[0]
        if len(errors) > 1:
            log.error("%d uploads failed; the first: %s", len(errors), first_err)
        raise first_err

    if delete:
        _delete_extra(store, folders, files, listing, include, exclude, decision, protect,
                      use_trash, result)
    if decision is not None:
        _apply(store, root, decision, use_trash, result, listing[""], policy, protect)


def _sidecar_owners(files: Iterable[_LocalFile]) -> dict[tuple[str, str], tuple[str, str]]:
    """(folder, sidecar name) -> (folder, checkpoint name) for the local files."""
    per: dict[str, set] = {}
    for lf in files:
        per.setdefault(lf.folder_rel, set()).add(lf.name)
    out = {}
    for folder, names in per.items():
        for ckpt, sc in sidecar_map(names).items():
            out[(folder, sc)] = (folder, ckpt)
    return out


def _check_quota(store, root, todo, decision, top_listing, policy, use_trash, result) -> None:
    """Before a byte is sent: make room by pruning what the policy deletes anyway, or fail."""
    needed = sum(lf.size - (target.size if target else 0) for lf, target in todo)
    if needed <= 0:
        return
    q = store.quota()
    if q.free is None or needed <= q.free:
        return
    victims = _pre_prune_victims(decision, top_listing, policy) if decision else []
    freed = 0 if use_trash else sum(d.size for d in victims)
    where = f"{len(todo)} file(s) into {store.describe(root)}"
    if needed > q.free + freed:
        raise quota_error(needed, where, q)
    log.warning("not enough Drive space for %s (%s needed, %s free): pruning first",
                where, format_size(needed), format_size(q.free))
    for d in victims:
        _delete(store, d, use_trash)
        result.pruned.append(d)
    q = store.quota()
    if q.free is not None and needed > q.free:
        raise quota_error(needed, where, q)


def _pre_prune_victims(decision: Plan, top_listing, policy) -> list[Decision]:
    """Remote files the plan deletes that may go before the upload: never the newest verified."""
    keep_now = newest_verified([e for es in top_listing.values() for e in es], policy)
    protected = {keep_now, sidecar_map(top_listing).get(keep_now)} if keep_now else set()
    return [d for d in decision.to_delete if d.id is not None and d.name not in protected]


def _delete(store: Any, d: Decision, use_trash: bool) -> None:
    entry = RemoteEntry(id=d.id, name=d.name, is_dir=False, size=d.size)
    store.delete(entry, trash=use_trash)
    log.info("deleted %s (%s)%s", d.name, format_size(d.size), " to the trash" if use_trash else "")


def _apply(store, root, decision: Plan, use_trash, result: PushResult, top_listing, policy,
           protect) -> None:
    """Apply the plan's remote deletions (after every upload was verified)."""
    done = {d.id for d in result.pruned}
    for d in decision.to_delete:
        if d.id is None or d.id in done:
            continue
        try:
            _delete(store, d, use_trash)
        except NotFoundError:
            pass  # already gone: the goal is reached
        result.pruned.append(d)


def _delete_extra(store, folders, files, listing, include, exclude, decision, protect,
                  use_trash, result) -> None:
    """``--delete``: remove remote files and folders that are not in the local tree.

    Filtered-out names are left alone (as rsync does), and in DEST itself so is
    everything the retention plan keeps as a checkpoint or sidecar, and ``protect``.
    """
    local_files = {lf.rel for lf in files}
    local_folders = set(folders)
    kept = set()
    if decision is not None:
        kept = {d.id for d in decision
                if d.keep and d.id and not d.reason.startswith(("not a checkpoint", "outside"))}
    for folder_rel, index in listing.items():
        for name, entries in index.items():
            rel = f"{folder_rel}/{name}" if folder_rel else name
            for e in entries:
                if e.is_dir:
                    if rel in local_folders or matches(rel, exclude):
                        continue
                elif rel in local_files or not _wanted(rel, include, exclude):
                    continue
                if folder_rel == "" and (e.id in kept or name in protect):
                    continue
                store.delete(e, trash=use_trash)
                result.deleted.append(rel)
                log.info("deleted %s (not in the local tree)", rel)


# --------------------------------------------------------------------------- prune

def prune(dest: Dest, policy: RetentionPolicy, *, store: Any = None, dry_run: bool = False,
          use_trash: bool = False, protect: Iterable[str] = (),
          md5_cache: Optional[Md5Cache] = None) -> Plan:
    """Apply ``policy`` to the files directly inside ``dest``; return the plan.

    Sidecar metrics are read from the remote. The newest verified checkpoint
    and anything in ``protect`` are never deleted; nothing outside ``dest``
    is touched. With ``dry_run`` nothing is deleted.
    """
    cache = md5_cache or Md5Cache()
    try:
        return _prune(*_open(dest, store, cache), policy, dry_run, use_trash, protect)
    finally:
        cache.save()


def _prune(store: Any, path: str, policy: RetentionPolicy, dry_run: bool, use_trash: bool,
           protect: Iterable[str]) -> Plan:
    root = store.resolve(path)
    if not root.is_dir:
        raise UsageError(f"{store.describe(root)} is a file; prune needs the folder that "
                         "holds the checkpoints")
    index = _index(e for e in store.list(root) if not e.is_dir)
    keep = set(protect)
    newest = newest_verified([e for es in index.values() for e in es], policy)
    if newest:
        keep.add(newest)
    decision = plan(_candidates(index, {}, policy, store), policy, protect=keep)
    decision = _with_stem_sidecars(decision, index)
    if not dry_run:
        for d in decision.to_delete:
            try:
                _delete(store, d, use_trash)
            except NotFoundError:
                pass
    return decision


# --------------------------------------------------------------------------- Mirror

class Mirror:
    """Push + prune in a background thread: every ``every`` seconds and on request.

    ``sync_now()`` only hands over a request (bursts coalesce into one run);
    ``flush(timeout)`` waits for a run that started after the call and raises
    :class:`~drivestage.errors.MirrorError` if it failed; ``stop()`` flushes once
    more and ends the thread. A failing run is logged and retried next period:
    the host process never sees an exception from the thread.
    """

    def __init__(self, src: str, dest: Dest, policy: Optional[RetentionPolicy] = None, *,
                 every: Optional[float] = None, store: Any = None,
                 include: Sequence[str] = (), exclude: Sequence[str] = (),
                 delete: bool = False, chunk_size: Optional[int] = None,
                 protect: Iterable[str] = (), use_trash: bool = False, jobs: int = 4,
                 md5_cache: Optional[Md5Cache] = None, label: Optional[str] = None,
                 push_fn: Optional[Callable[..., PushResult]] = None):
        if every is not None and every <= 0:
            raise UsageError(f"every={every!r} is invalid; give a period in seconds > 0")
        self.src, self.dest, self.policy, self.every = src, dest, policy, every
        self.label = label or (str(dest[1]) if isinstance(dest, tuple) else str(dest))
        self._store = store
        self._options = dict(include=tuple(include), exclude=tuple(exclude), delete=delete,
                             chunk_size=chunk_size, use_trash=use_trash, jobs=jobs)
        self._protect = set(protect)
        self._push = push_fn or push
        self._cond = threading.Condition()
        self._requested = 0     # generation of the latest request
        self._started_gen = 0   # generation the running/last run picked up
        self._done_gen = 0      # generation of the last finished run
        self._last_error: Optional[BaseException] = None
        self._last_result: Optional[PushResult] = None
        self._stopping = False
        self._thread: Optional[threading.Thread] = None
        self._cache: Optional[Md5Cache] = md5_cache
        self.runs = 0

    # -- control
    def start(self) -> "Mirror":
        """Start the background thread (idempotent)."""
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="drivestage-mirror",
                                                daemon=True)
                self._thread.start()
        return self

    def protect(self, name: str) -> None:
        """Never let the policy delete ``name`` (e.g. the checkpoint a run resumed from)."""
        with self._cond:
            self._protect.add(name)

    def sync_now(self) -> int:
        """Ask for a run as soon as possible; returns at once (a request generation)."""
        with self._cond:
            if self._stopping:
                raise MirrorError("the mirror is stopped; start a new one")
            self._requested += 1
            self._cond.notify_all()
            return self._requested

    def flush(self, timeout: Optional[float] = None) -> Optional[PushResult]:
        """Run once more and wait for it; raise MirrorError if that run failed."""
        if self._thread is None:
            self.start()
        gen = self.sync_now()
        return self._wait(gen, timeout)

    def stop(self, timeout: Optional[float] = None, *, flush: bool = True
             ) -> Optional[PushResult]:
        """Flush (unless ``flush=False``), then end the thread. Raises like :meth:`flush`."""
        result, error = None, None
        try:
            if flush and self._thread is not None:
                result = self.flush(timeout)
        except MirrorError as exc:
            error = exc
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        if error is not None:
            raise error
        return result

    @property
    def last_error(self) -> Optional[BaseException]:
        """The failure of the last finished run, or None when it succeeded."""
        with self._cond:
            return self._last_error

    # -- internals
    def _wait(self, gen: int, timeout: Optional[float]) -> Optional[PushResult]:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._done_gen < gen:
                if self._thread is None or not self._thread.is_alive():
                    raise MirrorError("the mirror thread is not running")
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise MirrorError(f"mirror of {self.src} did not finish within "
                                      f"{timeout:g}s; it goes on in the background")
                self._cond.wait(left)
            if self._last_error is not None:
                err = self._last_error
                raise MirrorError(f"mirror of {self.src} to {self.label} failed: {err}") from err
            return self._last_result

    def _loop(self) -> None:
        next_due = None if self.every is None else time.monotonic() + self.every
        while True:
            with self._cond:
                while not self._stopping and self._requested <= self._started_gen:
                    if next_due is not None and time.monotonic() >= next_due:
                        break
                    wait = None if next_due is None else max(0.0, next_due - time.monotonic())
                    self._cond.wait(wait)
                if self._stopping and self._requested <= self._done_gen:
                    return
                gen = self._requested
                self._started_gen = gen
                protect = set(self._protect)
            error, result = None, None
            try:
                result = self._run_once(protect)
            except BaseException as exc:  # the host process must never see it here
                error = exc
                log.error("mirror of %s to %s failed (will try again): %s", self.src,
                          self.label, exc)
            with self._cond:
                self.runs += 1
                self._last_error, self._last_result = error, result
                self._done_gen = max(self._done_gen, gen)
                self._cond.notify_all()
            if self.every is not None:
                next_due = time.monotonic() + self.every

    def _run_once(self, protect: set) -> PushResult:
        if self._cache is None:
            self._cache = Md5Cache()
        if self._store is None:
            self._store, self.dest = _open(self.dest, None, self._cache)
        return self._push(self.src, self.dest, self.policy, store=self._store,
                          protect=protect, md5_cache=self._cache, **self._options)
