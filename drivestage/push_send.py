"""A push's send loop (:class:`Sends`, a mixin of :class:`drivestage.push_job.PushJob`;
split from push_job.py at its line cap): what to send (:class:`Todo`), checkpoints first and
a sidecar only after its checkpoints are verified on the store, each file guarded at its
commit points (:mod:`drivestage.push_fence`); its old copies settled once all were sent
(:mod:`drivestage.old_copies`)."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional

from drivestage import pool, sidecar, sidecar_phases, snapshots, unread, walk_clock
from drivestage.errors import BecameOtherError, DriveStageError, FolderInTheWayError, \
    MovedAwayError, NotFoundError, QuotaExceededError, TrashedAwayError
from drivestage.local_tree import LocalFile, led_out, linked_folder, said_of
from drivestage.old_copies import Key, Listings, Swap
from drivestage.paths import StorePath, printable
from drivestage.push_folders import at_path
from drivestage.push_resend import Resends
from drivestage.push_result import Outstanding, PushResult
from drivestage.push_watch import Halt, all_live, check_folders
from drivestage.sizes import format_size
from drivestage.store import ProgressFn, RemoteEntry

# The name its lines always had (a user's logging config, or grep, may name it).
log = logging.getLogger("drivestage.upload_tree")

#: What to do about a file at a folder's name (attackpush45's words).
_OR_DELETE = ", or push with --delete to replace the folder"


@dataclass
class Todo:
    """One file to send."""

    lf: LocalFile
    target: Optional[RemoteEntry]   # updated in place (keeps its id); None: a new file
    olds: list[RemoteEntry]         # same-named copies deleted once the new one is verified
    duplicates: bool = False        # the name had several files (another machine's copies)



class Sends(Resends):
    """A push's send loop; the push supplies what it reads."""

    jobs: int
    progress: Optional[ProgressFn]
    outstanding: Outstanding
    result: PushResult
    path: StorePath
    listing: Listings
    vanished: set[str]
    said: set[str]
    # Local files over a folder of their name on the store that --delete is to remove.
    over_folders: list[tuple[LocalFile, list[RemoteEntry]]]
    blocked: dict[Key, FolderInTheWayError]   # not sent: a folder has the name (name_blocked)
    for_run: bool   # a training run's push: its fix never names --delete
    follow_symlinks: bool   # the walk's (a folder link on the way was followed, as asked)

    def _is_checkpoint(self, lf: LocalFile, paired: Mapping[str, str]) -> bool:  # the push's
        raise NotImplementedError

    def _send(self, files: list[LocalFile], todo: list[Todo]) -> None:
        """Checkpoints first; a sidecar only after its checkpoints are verified on the store."""
        pending = {(t.lf.folder_rel, t.lf.name) for t in todo}
        self.outstanding.start(t.lf.rel for t in todo)
        owners = self.copies.learn(files)
        after = {k for k, mine in owners.items() if mine & pending}
        first = [t for t in todo if (t.lf.folder_rel, t.lf.name) not in after]
        second = [t for t in todo if (t.lf.folder_rel, t.lf.name) in after]
        # A name a folder on the store holds is not sent (name_blocked): never a sidecar for
        # it, nor the checkpoints' old copies removed for a sidecar of one.
        failed: dict[Key, BaseException] = dict(self.blocked)
        # Replaced checkpoints: their old copies go only once the sidecars are updated too, so
        # that a copy the sidecar vouches for is on the store at every step.
        swapped: list[Swap] = []
        mutex = self.mutex
        # Once Drive kept failing uploads (or refused for quota or the day), no other
        # starts (push_watch.Halt). What is not sent is left for the next push, its old
        # copies kept.
        halt = Halt()
        left_out: list[str] = []
        created: dict[Key, tuple[LocalFile, RemoteEntry]] = {}   # (new files this push made)

        def send(item: Todo) -> None:
            lf, key = item.lf, (item.lf.folder_rel, item.lf.name)
            if owners.get(key, set()) & set(failed):
                return  # never a sidecar for a checkpoint that is not verified
            if halt.cause is not None:
                with mutex:
                    failed[key] = halt.cause
                    left_out.append(lf.rel)
                return
            moved = [0, 0]   # bytes sent; of them, this file's (its copy made by this push)
            def count(n: int) -> None:
                moved[0] += n
                if self.progress:
                    self.progress(n)
            def made(n: int) -> None:   # (in place: guarded between chunks, the last commits)
                moved[1] += n
                count(n)
                if item.target is not None:
                    self.fence.between(moved[1], lf.size)
            def upload(path: str) -> RemoteEntry:
                def to(folder: RemoteEntry) -> RemoteEntry:
                    return self.store.upload(
                        path, folder, lf.name, replace=item.target, chunk_size=self.chunk_size,
                        progress=made, md5_cache=self.cache if path == lf.path else None,
                        # (else a private copy of ours: in memory, a /proc/self/fd link; a
                        # link the walk let through is read where it led: lf.path)
                        follow=path != lf.path, real=lf.real if path == lf.path else "")
                try:
                    return to(self.remote_folder[lf.folder_rel])
                except MovedAwayError as moved:
                    home = at_path(self.store, self.path, self.remote_folder, moved.parents,
                                   lf.folder_rel)
                    if home is not None:  # a dedupe's move: updated where the path leads
                        return to(home)
                    # The user's: updated by id, their other folder got these bytes.
                    log.warning("%s; left as it is, sent as a new file", moved)
                    item.target = None
                    return to(self.remote_folder[lf.folder_rel])
                except TrashedAwayError:
                    # Drive took the update into the trash the user put it in (after the
                    # files.get before it, _as_listed): left there, the path gets a copy.
                    folder = self.store.describe(self.remote_folder[lf.folder_rel])
                    log.warning("%s%s%s was trashed on Drive while this push updated it in "
                                "place; left in the trash, sent as a new file", folder,
                                "" if folder.endswith((":", "/")) else "/", printable(lf.name))
                    item.target = None
                    return to(self.remote_folder[lf.folder_rel])
            # A sidecar only when it vouches for what is on the store (sidecar_copy); a file
            # that kept changing while it was sent (a log) as it was at one moment (snapshots).
            try:
                # (Before a byte is sent, or a copy updated in place: only a new file goes
                # where the guard is unsure, push_fence.)
                self.fence.check(replaces=item.target is not None)
                if item.target is not None:   # (a sidecar it replaces vouches for a copy)
                    self._send_gone_again(owners.get(key, set()), count, before=True)
                    sidecar_phases.first(self, key, item.target)   # (its sidecar first)
                def again(ck: Key) -> RemoteEntry:   # (into the copy it replaced in place)
                    sidecar_phases.first(self, ck, self.copies.sent[ck])
                    return self._send_again(ck, count, self.copies.sent[ck])
                if os.path.islink(lf.path):
                    # Planted since the walk (which reads a link it let through where it led,
                    # and skips links out of SRC): never followed.
                    raise BecameOtherError(lf.shown, "a link")
                linked = None if self.follow_symlinks else linked_folder(lf)
                if linked is not None:   # (a folder on the way, so too: attack46)
                    raise BecameOtherError(linked, "a link", was="a folder")
                if lf.link and not self.follow_symlinks and led_out(lf):
                    raise BecameOtherError(lf.named, "a link out of SRC",
                                           was="a link inside it")
                with self.copies.sidecar_source(key, lf.path, owners.get(key, set()),
                                                again) as src:
                    entry = None if src is None else snapshots.upload(
                        upload, src, copy=src == lf.path and not self._whole(item),
                        changing=self.cache.changing,  # remembered for the cache's life
                        follow=src != lf.path, real=lf.real if src == lf.path else "")
            except BaseException as exc:
                # Only the local file gone is skipped: NotFoundError (also a
                # FileNotFoundError) is Drive's 404, its folder deleted: a failure, not exit 0.
                # One it could not read (EACCES, EIO) is said at the end, its copies kept.
                if self._unread(lf, exc):
                    with mutex:
                        failed[key] = exc
                    return
                if not isinstance(exc, FileNotFoundError) or isinstance(exc, NotFoundError):
                    said = said_of(lf, exc)   # (a link the walk let through: named too)
                    with mutex:
                        failed[key] = said
                    halt.failed(said)
                    if said is exc:
                        raise
                    raise said from None
                log.info("%s disappeared before it was uploaded; skipped", lf.shown)
                self._vanished(lf)
                entry = None
            if not entry:  # gone, or left for the next push: the old copies stay
                with mutex:
                    failed[key] = FileNotFoundError(lf.path)
                return
            try:   # (a new copy: its own until its sidecar vouches for it; one in place: not)
                if item.target is None:
                    self.fence.made(key, entry, final=key not in self.copies.sides_of,
                                    own=moved[1] > 0)   # (none sent: an earlier push's)
                self.fence.committed(owners.get(key, ()))
            except Exception as exc:
                with mutex:
                    failed[key] = exc
                raise
            if item.target is None and not item.olds and moved[1] > 0:   # (a new name)
                with mutex:
                    created[key] = (lf, entry)
            if item.target is None and item.olds:
                with mutex:
                    swapped.append(Swap(lf.rel, key, entry, item.olds, item.duplicates))
            else:  # updated in place: its duplicates go now that it is verified
                self.copies.remove(lf.rel, entry, item.olds, item.duplicates)
            with mutex:
                self.copies.sent[key] = entry
                self.result.uploaded.append(lf.rel)
                self.result.bytes_sent += moved[0]
            try:
                self._send_gone_again(owners.get(key, set()), count)
            except BaseException:
                with mutex:   # its checkpoints' old copies stay (settle)
                    failed[key] = RuntimeError("a checkpoint it vouches for is not on the store")
                raise
            halt.verified()
            self.outstanding.done(lf.rel)
            log.info("uploaded %s (%s)", lf.rel, format_size(lf.size))

        errors: list[BaseException] = []
        listed: set[str] = set()   # (folders listed again after the uploads)
        for batch in (first, second):
            if not batch:
                continue
            if batch is second:  # a sidecar updated in place vouches for what was sent
                self._check_folders()
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
                # A Ctrl-C stops the uploads under way between chunks and starts no other.
                # (each thread given the push's walk clock: what it lists counts: walk52)
                clock = walk_clock.current()
                errors.extend(r for r in pool.each(lambda t: walk_clock.run(clock, send, t),
                                                   batch, self.jobs, "drivestage-up")
                              if isinstance(r, BaseException))
            # (after the checkpoints: before a sidecar vouches for one that goes again; a name
            # a folder took meanwhile waits as one found before: the rest goes on, exit 1)
            self._no_folder_since(batch, second if batch is first else [], created, failed,
                                  swapped, owners, listed)
        if self.fence.broken is not None:   # (the caller may write no more: nothing goes)
            self.fence.undo(self.store)
            raise self.fence.broken
        # Before an old copy goes, not after: in a folder trashed meanwhile the new copy is
        # in the trash, and the old one may have moved out to the path (dedupe keeps the
        # oldest folder): deleted, the path held no copy the sidecar vouched for.
        self._check_folders({k[0] for k, e in failed.items() if isinstance(e, NotFoundError)})
        self.copies.settle(swapped, set(failed))
        errors = all_live(halt.cause, errors, len(left_out))   # (said; its folders are live)
        if errors:
            if len(errors) > 1:
                log.error("%d uploads failed; the first: %s", len(errors), errors[0])
            raise errors[0]


    def _no_folder_since(self, batch: list[Todo], ahead: list[Todo],
                         created: dict[Key, tuple[LocalFile, RemoteEntry]],
                         failed: dict[Key, BaseException], swapped: list[Swap],
                         owners: Mapping[Key, set[Key]], listed: set[str]
                         ) -> list[FolderInTheWayError]:
        """Each folder ``batch`` made a new name in, not yet ``listed``, listed once more: a
        folder made at such a name since the push's listing (another machine, the user in the
        web page) had the file sent beside it, exit 0, and every pull then refused the name
        (pushgap47; attackpush45 checked only the listing made before a byte was sent). Such a
        copy is removed again and counted as failed (its old copies stay); the error of each
        is returned, and kept in ``blocked`` (said at the end: name_blocked). The same listing checks the new names of the sidecars still to go
        (``ahead``): one in the way is not sent (``ahead`` loses it), and the new copies of
        its checkpoints are removed. Only new names: a folder made beside a file already there
        shared its name before this push. A folder ``--delete`` is to remove
        (``over_folders``) is no such folder. Drive has no "make it unless a folder has the
        name", so a folder made after this listing is still beside the file: made after it."""
        keys = {(t.lf.folder_rel, t.lf.name) for t in batch}
        new = {k: v for k, v in created.items() if k in keys}
        coming = {(t.lf.folder_rel, t.lf.name): t.lf for t in ahead
                  if t.target is None and not t.olds}
        doomed = {f.id for _, folders in self.over_folders for f in folders}
        said: list[FolderInTheWayError] = []
        for rel in sorted({k[0] for k in new} - listed):
            listed.add(rel)
            inway = {e.name for e in self.store.list(self.remote_folder[rel])
                     if e.is_dir and e.id not in doomed}
            for key in sorted(k for k in new if k[0] == rel and k[1] in inway):
                said.append(self._taken_back(key, created, failed, swapped))
                self.blocked[key] = said[-1]
            for key in sorted(k for k in coming if k[0] == rel and k[1] in inway):
                said.append(self._over_folder(coming[key], _OR_DELETE))
                failed[key] = self.blocked[key] = said[-1]
                ahead[:] = [t for t in ahead if (t.lf.folder_rel, t.lf.name) != key]
                for mine in sorted(owners.get(key, set()) & set(created)):
                    self._taken_back(mine, created, failed, swapped)
        return said

    def _taken_back(self, key: Key, created: dict[Key, tuple[LocalFile, RemoteEntry]],
                    failed: dict[Key, BaseException], swapped: list[Swap]
                    ) -> FolderInTheWayError:
        """Remove the new copy this push made at ``key`` (a folder of its name is in the way,
        or of its sidecar's): counted as failed, its old copies kept; its error returned."""
        lf, entry = created.pop(key)
        try:
            self.store.delete(entry)
        except NotFoundError:
            pass
        except DriveStageError as exc:   # (left: the error names the name)
            log.warning("could not remove %s, which this push sent beside a folder of its "
                        "name made meanwhile (%s)", self.store.describe(entry), exc)
        said = failed[key] = self._over_folder(lf, _OR_DELETE)
        self.copies.sent.pop(key, None)
        with self.mutex:
            if lf.rel in self.result.uploaded:
                self.result.uploaded.remove(lf.rel)
        swapped[:] = [s for s in swapped if s.key != key]
        with self.mutex:   # (not on the store after all: retention's re-plan sees it unsent)
            self.vanished |= set() if lf.folder_rel else {lf.name}
        return said

    def _over_folder(self, lf: LocalFile, what_then: str) -> FolderInTheWayError:
        """The line for ``lf``, whose name is a folder's on the store."""
        where = self.store.describe(self.remote_folder[lf.folder_rel])
        return FolderInTheWayError(f"{where}/{lf.name}", lf.shown, "rename that folder on Drive"
                                   if self.for_run else f"rename one of them{what_then}")

    def _check_folders(self, also: Iterable[str] = ()) -> None:
        """The folders this push sent files into (and ``also``: those Drive answered an
        upload 404) are live (:func:`push_watch.check_folders`)."""
        check_folders(self.store, self.remote_folder,
                      {key[0] for key in self.copies.sent} | set(also), self.said,
                      by_path=bool(self.path.names))

    def _whole(self, item: Todo) -> bool:
        """Sent from the file itself only, never from a copy taken while it changed: a
        checkpoint (a copy of a half-written one is no checkpoint) or a sidecar."""
        lf = item.lf
        return bool(item.olds and item.target is None) or sidecar.is_sidecar(lf.name) or \
            (lf.folder_rel, lf.name) in self.copies.sides_of or self._is_checkpoint(lf, {})

    def _unread(self, lf: LocalFile, exc: BaseException) -> bool:
        """Whether ``exc`` is a failed read of the local file ``lf`` (kept in the result:
        said, and failing the push, once everything else is done; :mod:`drivestage.unread`)."""
        got = unread.of(exc, lf.rel, [lf.path, lf.real, lf.named])
        if got is not None:
            with self.mutex:
                self.result.unread.append(got)
        return got is not None

    def _vanished(self, lf: LocalFile) -> None:
        self.outstanding.done(lf.rel)  # nothing left to send
        with self.mutex:
            self.vanished |= set() if lf.folder_rel else {lf.name}
