"""The run's folder on Drive (``drive.logs``) as the trainer sees it: push, list, fetch.

No torch here: ``trainer status`` uses it to answer "what is safe on Drive?" quickly.

A checkpoint on Drive is *verified* when its sidecar is there (drivestage uploads a sidecar
only after its checkpoint's md5 matched) and the md5 the sidecar names is the remote file's
(:mod:`drivestage.sidecar`). The age of a verified checkpoint is the age of its sidecar:
the moment the checkpoint was known to be safe.
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Optional, Sequence

from drivestage import paths
from drivestage import sidecar as sidecars
from drivestage.errors import DriveStageError, NotFoundError, RemoteChangedError
from drivestage.held_choice import aside_for
from drivestage.lost_mounts import in_drive_mount
from drivestage.retention import RetentionPolicy
from drivestage.sidecar import Described
from drivestage.sizes import format_size
from drivestage.store import RemoteEntry
from trainer import alone_in_place
from trainer.state import EPOCH_NAME, Position

if TYPE_CHECKING:
    from trainer.lease import RunLease

logger = logging.getLogger(__name__)

#: Files of the run folder that never go to Drive: ``last.pt`` is rewritten every epoch (the
#: epoch checkpoints and autosaves are what Drive gets).
#: ``*.pt.bad-*``: a checkpoint --resume auto passed over, moved aside by the run's first save
#: with its sidecar (trainer.saving.BAD_SUFFIX): kept here for a look, no 90 MB upload of it.
#: ``trainer-lease-*.json``: the run's lease claims (trainer.lease), made on Drive only: named
#: here, a push of a folder above with --delete leaves them (drivestage.run_folders).
MIRROR_EXCLUDE = ("last.pt", "last.json", "*.pt.bad-*", "*.json.bad-*", "trainer-lease-*.json")


@dataclass(frozen=True)
class RemoteCheckpoint:
    """A checkpoint on Drive with its parsed sidecar."""

    entry: RemoteEntry
    described: Described     # name, sidecar, the file's md5, the sidecar's modified time
    where: str               # ``drive:Models/x/logs/epoch_004.pt``
    sidecar_bytes: bytes = b""   # the sidecar as stored (a resume writes it beside the fetched file)

    @property
    def sidecar(self) -> sidecars.Sidecar:
        return self.described.sidecar

    @property
    def name(self) -> str:
        return self.described.name


def retention_policy(keep_last: int, keep_best: int, max_bytes: Optional[int]) -> RetentionPolicy:
    """The Drive policy of the config's ``drive`` section."""
    return RetentionPolicy(keep_last=keep_last or None, keep_best=keep_best or None,
                           metric="map50" if keep_best else None, mode="max", max_bytes=max_bytes)


class DriveFolder:
    """``drive.logs``: one store connection and md5 cache, reused for every push and listing."""

    def __init__(self, spec: str, local_dir: str, policy: Optional[RetentionPolicy] = None,
                 exclude: Sequence[str] = MIRROR_EXCLUDE):
        from drivestage.remote import open_store
        from drivestage.state import Md5Cache

        self.spec = spec.rstrip("/")
        self.local_dir = os.path.abspath(local_dir)
        self.policy = policy or RetentionPolicy()
        self._exclude = tuple(exclude)
        self._cache = Md5Cache()
        self._store, self._path = open_store(spec, md5_cache=self._cache)
        self._pushes = 0   # the path is walked again every WALK_EVERY (see push)
        # Names every push leaves out: a stop's save while it is sent alone (trainer.stop_save)
        # from another folder; a push sending it too from the run folder made two of that name.
        self.held: set[str] = set()
        #: The run's lease on the folder (:mod:`trainer.lease`), checked before every upload.
        self.lease: Optional[RunLease] = None
        #: The Google Drive mount the folder is in (drive.logs=/content/drive/...), or None.
        self.mount = None if paths.is_drive(spec) else in_drive_mount(spec)
        self._warn_if_local(spec)

    @property
    def exclude(self) -> tuple[str, ...]:
        """What no push sends (and so never counts as verified): :data:`MIRROR_EXCLUDE` and
        the names :attr:`held` now."""
        return self._exclude + tuple(sorted(self.held))

    @staticmethod
    def _warn_if_local(spec: str) -> None:
        """``drive.logs=Models/x/logs`` (``drive:`` forgotten) is a local folder: the run is
        "mirrored" next to itself and ``trainer status`` reports it safe. Said once, at the
        start; a plainly local path (``/mnt/nas/logs``, ``./backup``) is taken as meant."""
        if paths.is_drive(spec):
            return
        mounted = in_drive_mount(spec)
        if mounted is not None:
            # As push warns for a DEST there: "safe on Drive" meant "written into the mount",
            # and what the mount had not sent is lost with the runtime, or with the mount.
            logger.warning(
                "drive.logs %s is inside the Google Drive mount %s: checkpoints copied there "
                "are written to this machine's disk, and the mount sends them to Drive later "
                "(minutes after each file is closed, longer for big ones); whatever it has not "
                "sent when the runtime ends or the mount stops is lost, though counted as safe "
                "here (train.keep_local removes no local epoch file meanwhile). Set "
                "drive.logs=%s instead (no mount needed; a checkpoint counts as safe once "
                "Drive has verified its bytes)", os.path.abspath(os.path.expanduser(spec)),
                *mounted)
            return
        hint = paths.drive_hint(spec, "folder")
        if hint is not None:
            logger.warning("drive.logs %s is a local folder (%s), not Google Drive: checkpoints "
                           "are copied there only; %s", spec,
                           os.path.abspath(os.path.expanduser(spec)), hint)

    def check_writable(self) -> None:
        """Fail now, before training, where Drive says nothing can be written into the
        folder (shared with this account read-only): every checkpoint of the run would
        stay on this machine only (drivestage's PermissionDeniedError, one line)."""
        from drivestage.errors import UsageError

        try:
            self._store.check_writable(self._path)
        except UsageError as exc:
            # (A file where the run's folder goes: the store's words name no setting.)
            if not str(exc).endswith("exists and is a file, not a folder"):
                raise
            raise UsageError(f"drive.logs {exc}; drive.logs names the run's folder (where its "
                             "checkpoints go)") from None

    def missing(self) -> Optional[str]:
        """Why the folder is not there (the store's "not found" text, or ``… is a file on
        Drive, not a folder``), None when it is."""
        try:
            entry = self._store.resolve(self._path)
        except NotFoundError as exc:
            return str(exc)
        return None if entry.is_dir else f"{self.spec} is a file, not a folder"

    def store_at(self) -> tuple:
        """The store and the folder's path in it (:mod:`trainer.lease`)."""
        return self._store, self._path

    def where(self, name: str) -> str:
        """``drive:Models/x/logs/<name>``."""
        return f"{self.spec}/{name}"

    def known_md5(self, path: str, md5: str) -> None:
        """Tell the md5 cache what we just wrote (hashed while writing): no second read."""
        self._cache.put(path, os.stat(path), md5)

    def live_md5s(self, names: Iterable[str]) -> dict[str, set[str]]:
        """name -> the md5s of Drive's copies of ``names`` now: a listing, then each copy
        read by id (a listing lags: it still shows a copy trashed a moment ago; a read by
        id does not). For train.keep_local, before a local epoch file goes."""
        from drivestage.errors import TrashedError

        if self.mount is not None:
            # A copy in the Drive mount is in its cache, sent to Drive minutes later (or never,
            # should the mount stop): none is known to be on Drive, and no local file goes.
            return {}
        want = set(names)
        out: dict[str, set[str]] = {}
        for e in self._store.list(self._store.resolve(self._path)):
            if e.name in want and not e.is_dir:
                try:
                    md5 = self._store.stat(e).md5
                except (NotFoundError, TrashedError):
                    continue
                if md5:
                    out.setdefault(e.name, set()).add(md5.lower())
        return out

    def push(self, protect: Iterable[str] = (),
             outstanding: "Optional[Outstanding]" = None,
             skip: Sequence[str] = ()) -> "PushResult":  # noqa: F821
        """Mirror the local run folder (incremental, md5-verified, then retention). Another
        run's checkpoints of the same names stay (two runs started at once in the folder).
        ``outstanding`` holds, should the push fail, what it had verified by then; ``skip``:
        names this push leaves out besides :attr:`exclude` (autosaves pruned here meanwhile)."""
        from drivestage.errors import BudgetError, QuotaExceededError
        from drivestage.mirror import WALK_EVERY
        from drivestage.upload_tree import push

        if self.lease is not None:
            self.lease.check()   # (taken over: not one file more; trainer.lease)
            self.lease.after_predecessor()   # (after a --take-over: its last push first)
        self._pushes += 1
        if self._pushes % WALK_EVERY == 0:
            # As a mirror does: each push checks the run folder itself, not the folders
            # above it; one renamed (`runs` -> `runs_old`) kept every push of the run going
            # into runs_old/logs, while a resume looks for its checkpoints at runs/logs.
            self._store.forget_folders(walk=True)
        try:
            return push(self.local_dir, (self._store, self._path), self.policy,
                        exclude=self.exclude + tuple(skip), protect=protect, md5_cache=self._cache,
                        keep_other_runs=True, outstanding=outstanding, run_folder=True)
        except BudgetError as exc:
            # drivestage's remedy names --max-bytes, a flag the trainer does not have.
            to = f" to {format_size(exc.floor)} or more" if exc.floor else ""
            raise BudgetError(exc.head or str(exc), f"raise drive.max_bytes{to} or keep fewer "
                              "checkpoints (drive.keep_last, drive.keep_best)",
                              needed=exc.needed, free=exc.free, floor=exc.floor) from exc
        except QuotaExceededError as exc:
            if exc.head is None:
                raise
            # Its remedy names --keep-last/--max-bytes: the trainer's are config keys.
            raise QuotaExceededError(
                f"{exc.head}, or keep fewer checkpoints there (drive.keep_last, "
                "drive.keep_best, drive.max_bytes).", needed=exc.needed, free=exc.free,
                trash=exc.trash, head=exc.head) from exc

    def send_alone(self, paths: Sequence[str], names: Optional[Sequence[str]] = None) -> None:
        """Upload ``paths`` (a checkpoint, then its sidecar) into the folder, each verified,
        outside a push: a stop's save written beside a run folder whose disk does not answer,
        which a push would walk and wait on (:mod:`trainer.stop_save`). A name Drive holds
        with those bytes already is not sent again; another copy of the same name and bytes
        found there once its own is verified (a push that sent it too) is removed, so the
        folder holds one file of each name (stop30). Once both are verified, the copies of
        other bytes they replace go as a push's would (:meth:`_replace_older`). ``names``: the
        names they go under (``last.pt``'s bytes as ``epoch_002.pt``), else their own. A name
        another run's file holds there is not sent (:class:`OtherRunFile`): added beside it,
        two files of one name were left (epochkeep32). Where this account may not remove the
        older pair (a shared drive's Contributor), that pair is updated in place instead, a
        verified pair at every step (:mod:`trainer.alone_in_place`: one more pair of those
        names was left at every such send, for good: stopcopy36)."""
        from drivestage.localfs import file_md5

        if self.lease is not None:
            self.lease.check()
        names = list(names or [os.path.basename(p) for p in paths])
        # (A checkpoint and its sidecar by their names: those sent from memory have no
        # names of their own on this machine, trainer.memory_send.)
        pair = len(paths) == 2 and names[1] == sidecars.name_for(names[0])
        folder = self._store.make_folders(self._path)
        sent: dict[str, RemoteEntry] = {}   # name -> its verified copy
        aside: list[RemoteEntry] = []
        listed = self._store.list(folder)   # the folder as last listed
        if pair:
            self._not_theirs(listed, paths[1], names[1], names[0])
            older = alone_in_place.plan(self._store, listed, names, paths[1],
                                        lambda: self._own(folder))
            if older is not None:   # (removing nothing: a Contributor's; stopcopy36)
                alone_in_place.send(self._store, folder, paths, names, older, self._cache)
                return
        for path, name in zip(paths, names):
            md5 = file_md5(path)
            listed = self._store.list(folder)
            same = [e for e in listed
                    if e.name == name and not e.is_dir and (e.md5 or "").lower() == md5]
            if same:
                sent[name] = same[0]
                continue
            got = self._store.upload(path, folder, name, md5_cache=self._cache)
            aside += self._store.aside(got)   # (a local DEST's old copy: removed below)
            listed = self._store.list(folder)
            sent[name] = self._one_of(got, [e for e in listed if e.name == name and not
                                            e.is_dir and (e.md5 or "").lower() == md5])
        for old in aside:   # (the old copy a store holding one file of a name kept aside)
            try:
                self._store.delete(old)
            except NotFoundError:
                pass
        if pair:
            try:   # (that listing is of after the checkpoint was verified: no request more)
                self._replace_older(folder, listed, names[0], paths[1], names[1], sent)
            except DriveStageError as exc:   # (both are verified: said, not a failed send)
                logger.warning("%s is verified on Drive, but its older copy there could not "
                               "be removed (%s): two files of that name are left", self.where(
                                   names[0]), exc)

    def _not_theirs(self, listing: Sequence[RemoteEntry], side_path: str, side_name: str,
                    name: str) -> None:
        """Raise :class:`OtherRunFile` where ``listing`` holds a sidecar named ``side_name`` (of
        ``name``) of another run than ``side_path``'s (this run's, on this machine)."""
        mine = sidecars.read(side_path)
        for side in (e for e in listing if e.name == side_name and not e.is_dir):
            try:
                data = sidecars.fetch(self._store, side)
            except (NotFoundError, RemoteChangedError):
                continue   # (gone or changed since the listing: another process)
            said = sidecars.parse(data) if data else None
            copies = [e for e in listing if e.name == name and sidecars.has_bytes(e)]
            if said is not None and copies:   # (whose the bytes there are: attacksync36)
                said = said.speaking_for(sidecars.vouched(copies, said).md5)
            if said is not None and said.run is not None and mine is not None and \
                    said.run != mine.run:
                raise OtherRunFile(name, said.run)

    def _one_of(self, got: RemoteEntry, same: Sequence[RemoteEntry]) -> RemoteEntry:
        """Of ``got`` (just verified) and the copies of the same name and bytes listed beside
        it (a push that sent it too), the one made first (:func:`_before`), the others
        removed (the same bytes are verified there). Another process sending the same bytes
        at once took ``got`` for its twin as this one took its: each removed the other's
        and no copy was left (attackdel31); the first made is kept by each process."""
        first = min([got] + [e for e in same if e.id != got.id],
                    key=lambda e: (e.created, e.id))
        for twin in {e.id: e for e in [got, *same]}.values():
            if twin.id != first.id:
                try:
                    self._store.delete(twin)
                except NotFoundError:   # (the other process removed it)
                    pass
        return first

    def _replace_older(self, folder: RemoteEntry, listing: Sequence[RemoteEntry], name: str,
                       side_path: str, side_name: str, sent: dict[str, RemoteEntry]) -> None:
        """Remove the older pair of ``path``'s name that its pair, just verified (``sent``),
        replaces (``name``, ``side_name``: the names they went under): a stop at the iteration of an earlier branch's stop (a resume from an older
        checkpoint) left two files of each name on Drive for good, where a push replaces
        them (stopleft31). Only in a run folder (marked: :mod:`drivestage.run_folders`), and
        only an old sidecar of this run (``keep_other_runs``) not further on
        (:mod:`drivestage.behind`), made on Drive before this one (:func:`_before`), with the
        copies it vouches for; a doubt leaves all."""
        mine = sidecars.read(side_path)
        ours = sent.get(side_name)
        if mine is None or mine.run is None or ours is None or not self._own(folder):
            return
        names = (name, side_name)
        ids = {e.id for e in sent.values()}
        listed = [e for e in listing if e.name in names and not e.is_dir and e.id not in ids]
        olds = [e for e in listed if e.name == names[0]]
        gone: list[RemoteEntry] = []
        for side in (e for e in listed if e.name == names[1]):
            try:
                data = sidecars.fetch(self._store, side)
            except (NotFoundError, RemoteChangedError):
                return   # (changed since the listing: another process; the next look sees)
            said = sidecars.no_later_than(sidecars.parse(data) if data else None, side.modified)
            if said is None or said.md5 is None or not side.removable or not _before(side, ours):
                return
            vouched = [e for e in olds if (e.md5 or "").lower() in said.md5s]
            # Each copy by its own description: a stopped in-place push's sidecar vouches for
            # the old bytes and those there, maybe another run's (attacksync36).
            for who in [said] + [said.speaking_for(e.md5) for e in vouched]:
                if who.run != mine.run or ((who.saved or 0.0) > (mine.saved or 0.0) and
                                           who.progress > mine.progress):
                    return   # another run's (or no run's), or further on in this one: kept
            if not all(e.removable for e in vouched):
                return
            gone += [side] + vouched
        for old in gone:   # (its sidecar first: nothing vouches for a copy left by a kill)
            try:
                self._store.delete(old)
            except NotFoundError:
                pass

    def _own(self, folder: RemoteEntry) -> bool:
        """Whether ``folder`` is a run's folder (a training run's push marked it on the store,
        or recorded it on this machine): what is in it is the run's to replace."""
        from drivestage import run_folders

        return run_folders.is_run_folder(self._store, folder)

    def checkpoints(self) -> list[RemoteCheckpoint]:
        """Every checkpoint in the folder whose sidecar is readable and vouches for it."""
        try:
            folder = self._store.resolve(self._path)
        except NotFoundError:
            return []
        found, changed = self._checkpoints_in(folder)
        if changed:
            # A sidecar read holds other bytes than the listing showed: another machine
            # pushed a new version of its checkpoint after the listing (the sidecar is updated
            # in place, last). Listed once more, or that checkpoint would not count as
            # verified and a resume would go back to an older one.
            found, _ = self._checkpoints_in(folder)
        return found

    def _checkpoints_in(self, folder: RemoteEntry) -> tuple[list[RemoteCheckpoint], bool]:
        """:meth:`checkpoints` from one listing of ``folder``, and whether a sidecar changed
        since that listing (its bytes are not the md5 listed)."""
        changed = False
        by_name: dict[str, list[RemoteEntry]] = {}
        for e in self._store.list(folder):
            if not e.is_dir and e.has_content:
                by_name.setdefault(e.name, []).append(e)
        out = []
        for name, side_name in sidecars.pairs(by_name).items():
            side_entry = sidecars.vouched(by_name[side_name], None)   # the newest sidecar
            data = self._read(side_entry)
            if data is None:   # replaced since the listing, by one of another length
                changed = True
                continue
            # A save time later than the sidecar reached Drive counts as that moment (a clock
            # ahead, or a lie, would otherwise stay "saved last" over every later save).
            side = sidecars.no_later_than(sidecars.parse(data) if data else None,
                                          side_entry.modified)
            if data and side_entry.md5 and hashlib.md5(data).hexdigest() != side_entry.md5:
                changed = True
            if side is None or side.epoch is None:
                continue
            # Same-named copies (a push replacing it, another machine's): the one the sidecar
            # vouches for.
            entry = sidecars.vouched(by_name[name], side)
            described = Described(name, side, entry.md5, side_entry.modified)
            if described.verified:
                out.append(RemoteCheckpoint(entry, described, self.where(name), data))
        return out, changed

    def fetch(self, checkpoint: RemoteCheckpoint, local_path: str) -> str:
        """Download ``checkpoint`` to ``local_path``, md5-verified; the file appears complete."""
        from drivestage.download import download

        os.makedirs(os.path.dirname(os.path.abspath(local_path)), exist_ok=True)
        try:
            download(self._store, checkpoint.entry, local_path, describe=checkpoint.where)
        except NotFoundError as exc:
            if aside_for(checkpoint.entry) is None:
                raise
            # The old copy a push into a local DEST kept aside (the new sidecar not in yet
            # when listed), removed since with the new pair verified: not a checkpoint gone,
            # the folder changed (a fallback went back to an older one: pair36).
            raise RemoteChangedError(f"{checkpoint.where} was replaced ({exc})") from exc
        return local_path

    def _read(self, entry: RemoteEntry) -> Optional[bytes]:
        """The sidecar's bytes (empty: none to use); None when it was replaced since the
        listing by bytes of another length (another machine's push: read whole, they would
        be the same length, and then not the md5 listed; both are a reason to list again)."""
        if entry.size > sidecars.MAX_BYTES or entry.size == 0:
            return b""
        try:
            return b"".join(self._store.read_range(entry, 0, entry.size))
        except NotFoundError:  # deleted since the listing (another machine's retention)
            return b""
        except RemoteChangedError:
            return None


class OtherRunFile(DriveStageError):
    """:meth:`DriveFolder.send_alone` of a name another run's file holds on Drive."""

    def __init__(self, name: str, run: str) -> None:
        super().__init__(f"it holds another run's {name}, of run {run}; sent, two files of "
                         f"one name would be there")
        self.name, self.run = name, run


def _before(old: RemoteEntry, new: RemoteEntry) -> bool:
    """Whether ``old`` was made on Drive before ``new`` (Drive's clock; the id between two
    made at one moment). Another process of the run sending that name alone at the same time
    (two machines resumed from one checkpoint) took this pair, just made, for the older one,
    as this process took its: each removed the other's and Drive held neither (attackdel31).
    Ordered alike in every process, only the later one replaces."""
    return (old.created, old.id) < (new.created, new.id)


def newest_of_current_run(found: Sequence[RemoteCheckpoint], run: Optional[str] = None, *,
                          skip: Iterable[str] = ()) -> Optional[RemoteCheckpoint]:
    """The most advanced checkpoint of ``run`` (default: the run written last) in ``found``,
    none further on than the one saved last (:func:`drivestage.sidecar.left_behind`: a run
    resumed on purpose from an older checkpoint goes on from there, not from the state it
    left)."""
    if run is None and found:
        run = max(found, key=lambda c: (c.described.modified, c.name)).sidecar.run
    pool = {c.name: c for c in found if c.sidecar.run == run}
    described = [c.described for c in pool.values()]
    best = sidecars.newest(described, prefer=EPOCH_NAME,
                           skip=set(skip) | sidecars.left_behind(described))
    return pool[best.name] if best is not None else None


def age_text(seconds: float) -> str:
    """``"40 s"``, ``"3 min"``, ``"2.5 h"``."""
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def describe_safe(name: str, epoch: int, iteration: int, epoch_iteration: int,
                  verified_at: float, now: Optional[float] = None) -> str:
    """``"Drive: 3 min ago, epoch 7 iteration 4120 (autosave_00004120.pt)"``."""
    label = Position(epoch, iteration, epoch_iteration).label.replace(",", "")
    ago = age_text((time.time() if now is None else now) - verified_at)
    return f"Drive: {ago} ago, {label} ({name})"
