"""``push``: mirror a local folder into a store, incrementally and verified, then prune it.

:func:`push` mirrors ``src`` into ``dest`` recursively: one listing per folder,
a file is sent only when its size or md5 differs from the remote copy (local
md5s come from :class:`~drivestage.state.Md5Cache`, so unchanged checkpoints
are not hashed again), and every upload is md5-verified
(:meth:`drivestage.store.RemoteStore.upload` returns a verified entry).

**Replacing.** A checkpoint (a file with a sidecar beside it, a name the policy manages, or a
``.pt``/``.pth``/``.ckpt`` file) is never overwritten: its new version is uploaded as a new
file under the same name, its md5 checked, then its sidecar updated, and only once that
sidecar vouches for it (one written after its checkpoint may still name the old md5) is the
old copy deleted. A failed replacement leaves the old copy and its sidecar. A copy this
account may neither delete nor trash (a shared drive's Contributor) is updated in place, as
other files are: a new copy beside it could never be removed; its sidecar first vouches for
both the copy there and the one coming (:mod:`drivestage.sidecar_phases`). Between the new file's arrival
and the old one's deletion the name has two files, and readers take the one the sidecar
vouches for (:func:`drivestage.sidecar.vouched`): the old one until the sidecar is updated,
the new one after. So a process killed at any step leaves a copy its sidecar vouches for, and
the newest *verified* checkpoint is never one whose bytes are not the sidecar's
(:mod:`drivestage.old_copies` decides which old copies may go). Other files
(logs, ``results.csv``, sidecars) are updated in place, keeping their id, with no old
revision kept on Drive. The steps of one push are :class:`drivestage.push_job.PushJob`'s.

**Duplicates.** Pushes into one place are serialised on this machine
(:func:`drivestage.locks.place_lock`). Same-named files another machine left are repaired once
the local file's copy is verified: the newest copy is kept and older ones are deleted (a
push only ever deletes copies older than the one it keeps, so two machines repairing at once
never delete each other's). Two machines making one folder at the same moment end with one
(:meth:`~drivestage.drive.store.DriveStore.make_folders`); same-named folders left otherwise
are explained, and every push picks the same one (the oldest). A folder trashed while a push
sent files into it (Drive takes them there without a word) is found before anything is
deleted, and the push runs once more into the folder the path leads to then.

**Left as they are.** A checkpoint on the store that is further on in the push's own run,
or (``keep_other_runs``) another run's, is not replaced, and the plan sees it as it is
there; one the plan deletes anyway is replaced after all (:mod:`drivestage.other_runs`). A
run folder inside ``dest`` (a training run's own DEST, or another push's with a policy) keeps
its checkpoints to that push: none is sent or deleted here (:mod:`drivestage.run_folders`).

Retention (:mod:`drivestage.retention`, applied by :mod:`drivestage.pruning`) covers the
files directly inside ``dest`` that the policy manages. The plan is made over the union of
what is remote and what is about to be sent, so a local checkpoint the policy would delete
anyway is never uploaded (except the newest local checkpoint and autosave of every run, the
ones just written: :func:`drivestage.retention.just_written`), and remote deletions happen
only after every upload of the push was verified. A sidecar is uploaded only after its checkpoint's md5 matched the remote's, which is
why a remote checkpoint with its sidecar counts as verified. ``--delete``
(:mod:`drivestage.extra`) is decided, counted and checked before a byte is sent.
"""
from __future__ import annotations

import logging
import os
import stat
from typing import Any, Iterable, Optional, Sequence

from drivestage import extra, unread_memory
from drivestage.errors import DriveStageError, FolderGoneError, NotFoundError, TrashedError, \
    UsageError
from drivestage.local_tree import DEFAULT_EXCLUDES, LocalFile, walk  # noqa: F401 (re-export)
from drivestage.locks import place_lock
from drivestage.paths import StorePath, patterns, refuse_empty
from drivestage.pool import MAX_JOBS
from drivestage.push_job import CHECKPOINT_SUFFIXES as CHECKPOINT_SUFFIXES  # (re-exported)
from drivestage.push_fence import Guard
from drivestage.push_job import PushJob
from drivestage.push_result import Outstanding, PushResult as PushResult, \
    attach  # (PushResult re-exported)
from drivestage.remote import Where, open_store
from drivestage.retention import RetentionPolicy
from drivestage.state import Md5Cache
from drivestage.store import ProgressFn, RemoteStore

log = logging.getLogger(__name__)


def push(src: str, dest: Where, policy: Optional[RetentionPolicy] = None, *,
         store: Optional[RemoteStore] = None, include: Sequence[str] = (),
         exclude: Sequence[str] = (), delete: bool = False, delete_permanently: bool = False,
         max_delete: Optional[int] = None, follow_symlinks: bool = False,
         chunk_size: Optional[int] = None, protect: Iterable[str] = (), use_trash: bool = False,
         jobs: int = 4, progress: Optional[ProgressFn] = None,
         md5_cache: Optional[Md5Cache] = None, keep_other_runs: bool = True,
         outstanding: Optional[Outstanding] = None, run_folder: bool = False,
         guard: Optional[Guard] = None, emptied: Iterable[str] = ()) -> PushResult:
    """Mirror the local folder ``src`` into ``dest`` (incremental, verified), then prune.

    ``dest`` is a spec (``drive:Models/logs``, ``/mnt/nas/logs``), a ``(store, path)`` pair
    or, with ``store``, a path inside that store. ``protect`` names files the policy must
    never delete (the checkpoint a run resumed from). ``delete`` moves remote files that are
    not in ``src`` to the trash (``delete_permanently``: deletes them), refusing the top of a
    drive and more than ``max_delete`` items (default :func:`drivestage.extra.default_limit`).
    Links leaving ``src`` are skipped unless ``follow_symlinks``. Raises
    :class:`~drivestage.errors.QuotaExceededError` before sending a byte when the uploads
    cannot fit even after pruning. ``keep_other_runs`` (the default; the CLI's ``--force``
    turns it off): a checkpoint of another run is never replaced, nor pruned through its
    name (:mod:`drivestage.other_runs`); it stays, named in ``other_run`` and ``left``, with
    a warning (:class:`~drivestage.mirror.Mirror` goes on so; the CLI and ``CheckpointSync``
    fail naming it once the rest is pushed). ``outstanding`` learns, as the push goes, what it
    has still to send (``mirror --grace`` names it when it must leave first), and holds the
    push's result as it fills: what a push that failed later on had verified by then.
    ``run_folder``: ``dest`` is a training run's folder (as with a policy): a push of a folder
    above it leaves its checkpoints to this push (:mod:`drivestage.run_folders`).
    ``guard``: the caller's check that it may still write there (a trainer's run lease),
    called at each point the push commits on the store; raised, the push removes the new
    copies nothing vouches for yet and raises it (:mod:`drivestage.push_fence`).
    ``emptied``: folders of ``src`` (or ``src``) emptied on purpose: a folder a push could not
    read that reads empty now is kept as unread (an unmounted mount point) unless named here
    (:mod:`drivestage.unread_memory`).
    """
    try:   # (a mount that stopped is no folder to stat, nor absent: ENOTCONN, EIO)
        is_dir = stat.S_ISDIR(os.stat(src).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        is_dir = False
    except OSError as exc:
        raise unread_memory.src_unread(src, exc.errno or 0) from None
    if not is_dir:
        raise NotFoundError(f"{src} is not a local folder; give the folder to push "
                            "(e.g. logs/)")
    for folder in emptied:   # (only folders a push walks can have been unread)
        # ("": the working folder, taken as emptied on purpose: attack52)
        refuse_empty("--emptied", folder, "the folder of SRC that was emptied on purpose")
        if os.path.relpath(os.path.abspath(folder), os.path.abspath(src)).startswith(".."):
            raise UsageError(f"--emptied {folder} is not SRC {src} or a folder in it; name "
                             "the folder of SRC that was emptied on purpose")
    if not 1 <= jobs <= MAX_JOBS:
        raise UsageError(f"jobs={jobs} is invalid; use 1 to {MAX_JOBS}")
    if max_delete is not None and max_delete < 0:
        raise UsageError(f"max_delete={max_delete} is invalid; use 0 or more")
    cache = md5_cache or Md5Cache()
    include, exclude, protect = patterns(include), patterns(exclude), patterns(protect)
    target, path = open_store((store, str(dest)) if store is not None else dest,
                              md5_cache=cache)
    exclude = (*exclude, *_dest_inside(src, target, path))
    if delete or delete_permanently:
        _refuse_deleting_src(src, target, path)

    def new_job() -> PushJob:
        made = PushJob(target, policy or RetentionPolicy(), include=include, exclude=exclude,
                       chunk_size=chunk_size, protect=set(protect), use_trash=use_trash,
                       jobs=jobs, progress=progress, cache=cache, keep_other_runs=keep_other_runs,
                       outstanding=outstanding or Outstanding(), run_folder=run_folder,
                       guard=guard)
        made.emptied = {os.path.abspath(p) for p in emptied}
        made.outstanding.begin(made.result)   # (read by a caller when the push fails)
        return made
    job = new_job()
    removal = None
    if delete or delete_permanently:
        removal = extra.Removal(permanent=delete_permanently, limit=max_delete)
    try:
        with place_lock(target.place(path), str(dest) if isinstance(dest, str) else str(path)):
            try:
                job.run(src, path, removal, follow_symlinks)
            except FolderGoneError as exc:
                _dest_trashed(target, path, exc)   # (named by id: no path leads elsewhere)
                # Once: the path now leads to a live folder (the one dedupe kept, or one made
                # anew: the store no longer trusts the id it knew), and this push's files go
                # there. A folder trashed again at once is said, not chased.
                log.warning("%s; pushing again into the folder the path leads to now", exc)
                target.forget_folders()  # the one it knew may be live, but not the path's
                job = new_job()
                try:
                    job.run(src, path, removal, follow_symlinks)
                except FolderGoneError as again:
                    raise FolderGoneError(f"{again}, twice; stop {again.stop} and push again",
                                          stop=again.stop) from again
    except BaseException as exc:   # (what went, for the caller's line: push_result.attach)
        attach(exc, job.result)
        raise
    finally:
        cache.save()
    return job.result


def _dest_trashed(target: RemoteStore, path: Any, gone: FolderGoneError) -> None:
    """FolderGoneError in one line for a DEST named by id alone (``drive:id:X``) that is in
    the trash now: pushed again, it failed at once on "restore it first", after a warning
    that it pushed into "the folder the path leads to now", of a DEST with no path. What
    this push sent there stays in the trash with it, restored with it as it was (one
    files.get, only after a push met a trashed folder). One deleted for good (or no longer
    shared) ends so too: it warned of pushing again "into the folder the path leads to
    now", then failed on a 404 that spoke of a link's resourcekey (attackpush41)."""
    if not isinstance(path, StorePath) or path.start is None or path.names:
        return
    try:
        target.resolve(path)   # (by id: read anew, never from a cache)
    except TrashedError:
        raise FolderGoneError(f"drive:id:{path.start} is in Drive's trash: restore it or "
                              "choose another folder (the files this push sent there are in "
                              "the trash with it)") from gone
    except NotFoundError:
        said = str(gone)   # (its own words where it names DEST: whose the files are now)
        if not said.startswith(f"drive:id:{path.start} "):
            said = (f"drive:id:{path.start} was deleted for good while this push wrote into "
                    "it (or is no longer shared with you)")
        raise FolderGoneError(f"{said}. Choose another folder", stop=gone.stop) from gone
    except DriveStageError:
        return   # (unreadable now: the push again says what it meets)


def _refuse_deleting_src(src: str, target: RemoteStore, path: Any) -> None:
    """UsageError for a --delete into a local DEST that holds SRC (``push runs/exp1 runs
    --delete``): SRC's own folder is not in SRC, and the push moved SRC itself, with all
    beside it, into DEST's trash, exit 0 (attackcli39)."""
    local = getattr(target, "local_path", None)
    if local is None:
        return
    where = local(path)
    here, there = os.path.realpath(src), os.path.realpath(where)
    if here == there or os.path.commonpath([here, there]) != there:
        return
    rel = os.path.relpath(here, there).replace(os.sep, "/")
    raise UsageError(f"--delete would remove SRC itself: DEST {where} holds SRC {src} (as "
                     f"{rel}/), and --delete removes from DEST what SRC lacks; push into a "
                     "folder that does not hold SRC, or leave --delete out")


def _dest_inside(src: str, target: RemoteStore, path: Any) -> tuple[str, ...]:
    """The ``--exclude`` pattern of a local DEST that lies inside SRC (``push /x /x/mirror``,
    a mirror's every period): DEST's own folder is never sent into itself. Without it each
    push copied what the earlier ones had copied there, one level deeper, until the disk was
    full. None for a Drive DEST or one outside SRC."""
    import glob

    local = getattr(target, "local_path", None)
    if local is None:
        return ()
    here = os.path.realpath(src)
    there = os.path.realpath(local(path))
    if there == here or os.path.commonpath([here, there]) != here:
        return ()
    rel = os.path.relpath(there, here).replace(os.sep, "/")
    log.warning("DEST %s lies inside SRC %s: its own folder (%s/) is left out of what is "
                "pushed", there, src, rel)
    return (glob.escape(rel) + "/*",)
