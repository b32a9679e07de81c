"""Hooks for training loops: mirror checkpoints to Drive in the background, resume from it.

Plain Python (no torch)::

    sync = CheckpointSync("drive:Models/yolov4-tiny/logs",
                          RetentionPolicy(keep_last=3, keep_best=1, metric="map50", mode="max"),
                          local_dir="runs/x")
    entry = sync.latest_remote_checkpoint()        # resuming on a fresh machine?
    if entry is not None:
        sync.fetch(entry, "runs/x/" + entry.name)
        sync.protect(entry.name)
    ...
    save(...)                                      # writes epoch_004.pt atomically
    sync.on_save("runs/x/epoch_004.pt", 4, {"map50": 0.41})   # returns at once
    ...
    sync.on_train_end()                            # flush; raises if the mirror failed

A checkpoint counts as *verified* on the remote when its sidecar is there (``epoch_004.json``,
or drivestage 0.1.0's ``epoch_004.pt.json``) and vouches for its md5: push uploads a sidecar
only after its checkpoint's md5 matched Drive's (:mod:`drivestage.sidecar`).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional, Sequence

from drivestage import localfs, other_runs, sidecar, unread
from drivestage.download import download
from drivestage.errors import DriveStageError, NotFoundError, RemoteChangedError, UsageError
from drivestage.mirror import Mirror
from drivestage.old_copies import newest
from drivestage.paths import patterns, refuse_empty, refuse_empty_patterns
from drivestage.pruning import with_name_epoch
from drivestage.remote import Where, open_store
from drivestage.retention import RetentionPolicy
from drivestage.sidecar import Described, Sidecar
from drivestage.state import Md5Cache
from drivestage.store import RemoteEntry, RemoteStore
from drivestage.upload_tree import PushResult

log = logging.getLogger(__name__)


#: Times :meth:`CheckpointSync.fetch` (and ``latest_remote_checkpoint``) lists the folder
#: again because what it chose changed on Drive meanwhile (another machine pushing the same
#: names): bounded, as the trainer's resume (``trainer.resume.MAX_RELISTS``).
MAX_RELISTS = 3


@dataclass
class _Listed:
    """One listing's verified checkpoints (name -> the copy to fetch, and as described), the
    names it showed, and whether a sidecar changed since it (a reason to list again)."""

    chosen: dict[str, RemoteEntry] = field(default_factory=dict)
    described: list[Described] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    changed: bool = False
    #: The run each chosen copy's sidecar names (name -> run; None: it names none).
    runs: dict[str, Optional[str]] = field(default_factory=dict)


def _not_written_over(side: str, why: str, path: str) -> bool:
    """Say that the sidecar ``side`` of ``path``, unread (``why``), is left as it is; True:
    it counts as the checkpoint's (pull50: one taken for none was replaced, and lost)."""
    log.warning("could not read the sidecar %s (%s): not written over, and %s is not "
                "mirrored until it can be read (a checkpoint goes only with its sidecar)",
                side, why, path)
    return True


def _drop_partials(target: str) -> None:
    """What a failed fetch of bytes gone from Drive left beside ``target``."""
    from drivestage.partials import remove_partial, stale_partials

    for partial in stale_partials(target):
        remove_partial(partial)


def _push_leaving_other_runs(*args: Any, **kwargs: Any) -> PushResult:
    """:func:`drivestage.upload_tree.push` leaving another run's checkpoints on the store (a
    loop's ``last.pt`` sent over them replaced another run's newest verified one, as the CLI
    did before ``--force``), then failing: the mirror logs it and retries each period, and
    ``flush``/``on_train_end`` raise it."""
    from drivestage.upload_tree import push

    result = push(*args, keep_other_runs=True, run_folder=True, **kwargs)
    other_runs.refuse(result.left, "pass replace_other_runs=True")
    return result


def _push_replacing(*args: Any, **kwargs: Any) -> PushResult:
    """:func:`drivestage.upload_tree.push` replacing another run's checkpoints
    (``replace_other_runs=True``)."""
    from drivestage.upload_tree import push

    return push(*args, keep_other_runs=False, run_folder=True, **kwargs)


class CheckpointSync:
    """Mirror ``local_dir`` to ``dest`` with ``policy``, driven by a training loop's saves.

    A checkpoint on ``dest`` of another run (its sidecar names a run, and the loop's sidecar
    names another or none) is left as it is, the rest mirrored, and the mirror fails naming
    it (:mod:`drivestage.other_runs`); ``replace_other_runs=True`` replaces it.
    """

    def __init__(self, dest: Where, policy: Optional[RetentionPolicy] = None, *,
                 local_dir: str, every: Optional[float] = None,
                 store: Optional[RemoteStore] = None, include: Sequence[str] = (),
                 exclude: Sequence[str] = (), use_trash: bool = False,
                 chunk_size: Optional[int] = None, protect: Iterable[str] = (),
                 write_sidecars: bool = True, replace_other_runs: bool = False):
        if not local_dir:
            raise UsageError("CheckpointSync needs local_dir, the folder the checkpoints are "
                             "written to")
        if isinstance(dest, str):   # (before local_dir is made: nothing written)
            refuse_empty("CheckpointSync's dest", dest)
        include, exclude, protect = patterns(include), patterns(exclude), patterns(protect)
        for what, given in (("include", include), ("exclude", exclude), ("protect", protect)):
            refuse_empty_patterns(f"CheckpointSync's {what}", given)
        os.makedirs(local_dir, exist_ok=True)
        self.local_dir = os.path.abspath(local_dir)
        self.policy = policy or RetentionPolicy()
        self._cache = Md5Cache()
        self._store, self._path = open_store((store, str(dest)) if store is not None else dest,
                                             md5_cache=self._cache)
        self.write_sidecars = write_sidecars
        # The run named by the sidecar of each entry answered (entry id -> run): a fetch
        # listing again never takes another run's copy of the name (attackload37).
        self._runs: dict[str, Optional[str]] = {}
        self.mirror = Mirror(self.local_dir, (self._store, self._path), self.policy,
                             every=every, include=include, exclude=exclude,
                             use_trash=use_trash, chunk_size=chunk_size,
                             protect=protect, md5_cache=self._cache,
                             label=dest if isinstance(dest, str) else None,
                             push_fn=_push_replacing if replace_other_runs
                             else _push_leaving_other_runs).start()

    # -- training-loop events
    def on_save(self, path: str, epoch: Optional[int] = None,
                metrics: Optional[Mapping[str, Any]] = None) -> None:
        """A checkpoint was written (atomically) to ``path``: mirror the folder soon.

        Returns at once. Writes the sidecar ``<stem>.json`` (epoch, metrics, the checkpoint's
        md5 and size, its mtime as ``saved``) unless the checkpoint has one that vouches for its bytes (the trainer
        writes its own; ``last.pt`` saved again gets a new one).
        """
        full = os.path.abspath(path)
        if os.path.commonpath([full, self.local_dir]) != self.local_dir:
            log.warning("%s is outside %s; it will not be mirrored", path, self.local_dir)
        elif self.write_sidecars and (epoch is not None or metrics):
            self._ensure_sidecar(full, epoch, metrics or {})
        self.mirror.sync_now()

    def on_train_end(self, timeout: Optional[float] = None) -> Optional[PushResult]:
        """Flush the last saves and stop the background thread; raises MirrorError on failure."""
        return self.mirror.stop(timeout)

    def flush(self, timeout: Optional[float] = None) -> Optional[PushResult]:
        """Wait until everything saved so far is on the remote (raises MirrorError)."""
        return self.mirror.flush(timeout)

    def protect(self, name: str) -> None:
        """Never let the policy delete ``name`` (the checkpoint this run resumed from)."""
        self.mirror.protect(name)

    # -- resuming
    def latest_remote_checkpoint(self, run: Optional[str] = None) -> Optional[RemoteEntry]:
        """The newest verified checkpoint on the remote, or None
        (:func:`drivestage.sidecar.newest`: the most training progress by its sidecar, else
        the epoch in its name; on a tie a name matching the policy's pattern wins over
        ``last.pt``-style names, then the newer file). With ``run``, only that run's.

        A sidecar replaced since the listing (another machine's push) makes the folder
        listed again, at most :data:`MAX_RELISTS` times: its checkpoint, newer, counted as
        none, and a resume went back to an older one or started afresh (walk37). Still so
        after that: :class:`RemoteChangedError`, never an answer without it (attackload37)."""
        try:
            folder = self._store.resolve(self._path)
        except NotFoundError:
            return None
        for relisted in range(MAX_RELISTS + 1):
            listed = self._listed(folder)
            if not listed.changed:
                break
            if relisted == MAX_RELISTS:
                # Never an answer from a listing out of step: the pair replaced counted as
                # none, and None (a fresh start) or an older one came back (attackload37).
                raise RemoteChangedError(
                    f"a checkpoint's sidecar in {self._store.describe(folder)} was replaced "
                    f"on Drive {MAX_RELISTS + 1} times while it was listed (another machine "
                    "pushing it); nothing was chosen: ask again once that machine is done")
            log.info("a sidecar in %s changed on Drive since it was listed; listing it again",
                     self._store.describe(folder))
        best = sidecar.newest(listed.described, run=run, prefer=self.policy.regex)
        if best is None:
            return None
        self._runs[listed.chosen[best.name].id] = best.sidecar.run
        return listed.chosen[best.name]

    def fetch(self, remote: RemoteEntry, local_path: str) -> str:
        """Download ``remote`` to ``local_path``, verified with Drive's checksum; the target
        appears only when complete. Returns ``local_path``.

        Where ``remote`` changed on Drive since it was listed (another machine's push
        replaced it: a new copy sent, the old one deleted), the folder is listed again and
        the copy of that name its sidecar vouches for now is fetched instead, at most
        :data:`MAX_RELISTS` times (:class:`RemoteChangedError` then); a name no longer on
        Drive is :class:`NotFoundError`. Never bytes another name's, nor bytes the sidecar
        on Drive does not vouch for; nothing at ``local_path`` when it fails (walk37). The
        bytes then fetched are newer than ``remote`` says (same name, another md5). Nor
        another run's copy of the name, where ``remote`` came from
        :meth:`latest_remote_checkpoint` (its sidecar named a run): NotFoundError then."""
        folder = os.path.dirname(os.path.abspath(local_path))
        os.makedirs(folder, exist_ok=True)
        where = self._store.describe(remote)
        entry = remote
        for relisted in range(MAX_RELISTS + 1):
            try:
                download(self._store, entry, local_path, describe=where)
                return local_path
            except (NotFoundError, RemoteChangedError) as exc:
                _drop_partials(local_path)   # (of bytes gone from Drive: never of use again)
                if relisted == MAX_RELISTS:
                    raise RemoteChangedError(
                        f"{where} was replaced on Drive {MAX_RELISTS + 1} times while it was "
                        "fetched (another machine pushing it); nothing was fetched: ask "
                        "latest_remote_checkpoint() again, or fetch it once that machine is "
                        "done") from exc
                log.warning("%s changed on Drive since it was listed (%s); listing it again",
                            where, exc)
                entry = self._now(remote, where, exc) or entry
        raise AssertionError("unreachable")   # (the loop returns or raises)

    def _now(self, remote: RemoteEntry, where: str, exc: Exception) -> Optional[RemoteEntry]:
        """The copy of ``remote``'s name that its sidecar vouches for in a new listing of
        the folder; None where the listing shows that name but no such pair (its sidecar
        changed meanwhile too: the next try lists again); :class:`NotFoundError` where the
        name is gone (never another checkpoint under the name the caller asked for)."""
        try:
            listed = self._listed(self._store.resolve(self._path))
        except NotFoundError:
            listed = _Listed()
        if remote.name in listed.chosen:
            was, now = self._runs.get(remote.id), listed.runs.get(remote.name)
            if was is not None and now != was:
                # (Another run's push replaced it: replace_other_runs, push --force.) Its
                # bytes under the name the caller chose for run ``was`` went on from
                # another run's state, said nowhere.
                names = f"run {now}" if now is not None else "no run"
                raise NotFoundError(
                    f"{where} is no longer run {was}'s on Drive (another run's push replaced "
                    f"it: its sidecar names {names}); nothing was fetched: ask "
                    "latest_remote_checkpoint() again") from exc
            self._runs[listed.chosen[remote.name].id] = was
            return listed.chosen[remote.name]
        if remote.name not in listed.names:
            raise NotFoundError(
                f"{where} is no longer on Drive (deleted since it was listed: another "
                "machine's push or retention); nothing was fetched: ask "
                "latest_remote_checkpoint() again") from exc
        return None

    def _listed(self, folder: RemoteEntry) -> "_Listed":
        """One listing of ``folder``: its verified checkpoints (those a sidecar vouches
        for), and whether a sidecar read changed since the listing."""
        out = _Listed()
        by_name: dict[str, list[RemoteEntry]] = {}
        for e in self._store.list(folder):
            if not e.is_dir:
                by_name.setdefault(e.name, []).append(e)
        out.names = set(by_name)
        for name, side_name in sidecar.pairs(by_name).items():
            try:
                read = self._read_sidecar(newest(by_name[side_name]))
            except (NotFoundError, RemoteChangedError):
                out.changed = True   # (replaced or removed since the listing: list again)
                continue
            side = with_name_epoch(read, name, self.policy)
            if side is None:
                continue
            # Same-named copies (a replacement under way, or another machine's).
            copies = [e for e in by_name[name] if e.has_content]
            if not copies:
                continue
            entry = sidecar.vouched(copies, side)
            described = Described(name, side, entry.md5, entry.modified)
            if not described.verified:
                continue   # (a pair out of step: never fetched as one)
            out.chosen[name] = entry
            out.runs[name] = side.run
            out.described.append(described)
        return out

    # -- internals
    def _read_sidecar(self, side: RemoteEntry) -> Optional[Sidecar]:
        """``side`` parsed (None: unreadable, said); raises NotFoundError and
        RemoteChangedError: gone or replaced since the listing."""
        try:
            data = sidecar.fetch(self._store, side)
        except (NotFoundError, RemoteChangedError):
            raise
        except DriveStageError as exc:
            log.warning("could not read sidecar %s: %s", side.name, exc)
            return None
        return sidecar.parse(data, side.name) if data is not None else None

    def _described(self, path: str) -> bool:
        """Whether ``path`` has a sidecar (the trainer's, a 0.1.0 one) that vouches for its
        bytes: a checkpoint saved again under its name (``last.pt``) needs a new one. One
        that could not be read (EACCES, EIO) counts too: never written over (it was taken for
        none, and replaced, pull50); push holds its checkpoint with it (:mod:`sidecar_unread`)."""
        for name in (sidecar.name_for(path), path + sidecar.SUFFIX):
            if os.path.exists(name):  # the current form wins, as in sidecar.pairs
                try:
                    # (a regular file only, opened without waiting: a FIFO there held the
                    # training loop's save until a writer came, forever: attackb50)
                    with os.fdopen(localfs.open_regular(name), "rb") as fh:
                        said = sidecar.parse(fh.read(sidecar.MAX_BYTES), name)
                except localfs.NotRegularFileError:
                    # (no sidecar's bytes there to wait for: push sends the checkpoint as
                    # one without a sidecar, which a resume does not take; said so, where
                    # the line said "not mirrored until it can be read": attack51)
                    log.warning("the sidecar's name %s holds no regular file (a FIFO, a "
                                "folder, a device): not written over, and %s is mirrored "
                                "without a sidecar, which a resume does not take; remove what "
                                "is at that name, and the next save writes the sidecar",
                                name, path)
                    return True
                except OSError as exc:
                    failed = unread.of(exc, name, [name])
                    if failed is None:
                        return False    # (gone meanwhile: none)
                    return _not_written_over(name, failed.why, path)
                try:
                    return said is not None and said.vouches_for(self._cache.md5(path))
                except OSError:
                    return False
        return False

    def _ensure_sidecar(self, path: str, epoch: Optional[int],
                        metrics: Mapping[str, Any]) -> None:
        if self._described(path):
            return
        plain = {}
        for k, v in metrics.items():
            try:
                plain[str(k)] = float(v)
            except (TypeError, ValueError):
                continue
        try:
            md5, size = self._cache.md5(path), os.path.getsize(path)
            saved = os.path.getmtime(path)  # when the loop wrote it (written atomically)
        except OSError as exc:
            log.warning("no sidecar for %s: %s", path, exc)
            return
        # Written atomically: push never mirrors a half-written sidecar.
        try:
            sidecar.write(path, Sidecar(epoch=epoch, metrics=plain, md5=md5, size=size,
                                        saved=saved))
        except OSError as exc:
            # (A full disk.) The loop's own save went through: a missing sidecar must not
            # end its training from inside on_save; the checkpoint is mirrored unverified.
            log.warning("no sidecar for %s: %s", path, exc)
