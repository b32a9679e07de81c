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
from typing import TYPE_CHECKING, Callable, Iterable, Optional, Sequence

from drivestage import paths, walk_clock
from drivestage import sidecar as sidecars
from drivestage.errors import AbusiveFileError, NotFoundError, RemoteChangedError
from drivestage.held_choice import aside_for
from drivestage.lost_mounts import in_drive_mount
from drivestage.retention import RetentionPolicy
from drivestage.sidecar import Described
from drivestage.sizes import format_size
from drivestage.store import RemoteEntry
from trainer import drive_lone
from trainer.state import EPOCH_NAME, Position

if TYPE_CHECKING:
    from drivestage.store import RemoteStore
    from trainer.lease import RunLease

from trainer.drive_alone import OtherRunFile as OtherRunFile  # noqa: E402 (re-exported)

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
        #: Checkpoints of the last listing whose sidecar names other bytes than the file
        #: there (cut short or replaced on Drive since it was verified): never candidates,
        #: named where a resume passes over them (:func:`unvouched_text`).
        self.unvouched: list[RemoteCheckpoint] = []
        #: Checkpoints of the last listing with no sidecar at all (:mod:`trainer.drive_lone`).
        self.lone: list[RemoteEntry] = []
        # A store acknowledging Drive's malware flag, opened for the first flagged sidecar
        # (:meth:`_read_flagged`), and the flagged sidecars warned of (once each).
        self._acknowledging: Optional["RemoteStore"] = None
        self._flagged_said: set[str] = set()
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
        """Tell the md5 cache what we just wrote (hashed while writing): no second read.
        ``written``: the cache keeps it though the file's ctime is in this very tick (a
        rename stamps it, milliseconds before): it dropped every such md5, and the next push
        read and hashed each 94 MB checkpoint again (ckptcost47)."""
        self._cache.put(path, os.stat(path), md5, written=True)

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
        from drivestage.errors import BudgetError, FolderInTheWayError, NameSharedError, \
            QuotaExceededError
        from drivestage.mirror import WALK_EVERY
        from drivestage.upload_tree import push

        if self.lease is not None:   # (and at each file's commit: the push's guard)
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
                        keep_other_runs=True, outstanding=outstanding, run_folder=True,
                        guard=self.lease.guard if self.lease is not None else None)
        except FolderInTheWayError as exc:
            # (push's remedy names --delete: run over the run folder, it would remove the
            # checkpoints train.keep_local left on Drive alone)
            if isinstance(exc, NameSharedError):
                raise NameSharedError(exc.folder, exc.name, exc.what,
                                      "rename that folder on Drive") from exc
            raise FolderInTheWayError(exc.where, exc.what, "rename that folder on Drive") \
                from exc
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
        outside a push (:func:`trainer.drive_alone.send`)."""
        from trainer import drive_alone

        drive_alone.send(self, paths, names)

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
        # Its listings (two where a sidecar changed) under one time bound, not one each
        # (DRIVESTAGE_LISTING_TIMEOUT: drivestage.walk_clock; walk51).
        with walk_clock.walking(walk_clock.WalkClock(self._store.describe(folder))):
            found, changed = self._checkpoints_in(folder)
            if changed:
                # A sidecar read holds other bytes than the listing showed: another machine
                # pushed a new version of its checkpoint after the listing (the sidecar is
                # updated in place, last). Listed once more, or that checkpoint would not
                # count as verified and a resume would go back to an older one.
                found, _ = self._checkpoints_in(folder)
        return found

    def _checkpoints_in(self, folder: RemoteEntry) -> tuple[list[RemoteCheckpoint], bool]:
        """:meth:`checkpoints` from one listing of ``folder``, and whether a sidecar changed
        since that listing (its bytes are not the md5 listed)."""
        changed = False
        self.unvouched = []
        by_name: dict[str, list[RemoteEntry]] = {}
        for e in self._store.list(folder):
            if not e.is_dir and e.has_content:
                by_name.setdefault(e.name, []).append(e)
        out = []
        self.lone = drive_lone.lone(by_name)
        for name, side_name in sidecars.pairs(by_name).items():
            side_entry = sidecars.vouched(by_name[side_name], None)   # the newest sidecar
            data = self._read(side_entry)
            if data is None:   # replaced since the listing, by one of another length
                changed = True
                continue
            # A save time later than the sidecar reached Drive counts as that moment (a clock
            # ahead, or a lie, would otherwise stay "saved last" over every later save).
            side = sidecars.no_later_than(sidecars.parse(data, side_entry.name) if data else None,
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
            elif side.md5 is not None and not any(
                    (e.md5 or "").lower() == side.md5 for e in by_name[name]):
                self.unvouched.append(RemoteCheckpoint(entry, described, self.where(name), data))
        return out, changed

    def fetch(self, checkpoint: RemoteCheckpoint, local_path: str) -> str:
        """Download ``checkpoint`` to ``local_path``, md5-verified; the file appears complete.
        One Drive flagged as malware or spam is fetched as its owner (:func:`fetch_own`)."""
        return self.fetch_entry(checkpoint.entry, checkpoint.where, local_path)

    def fetch_entry(self, entry: RemoteEntry, where: str, local_path: str) -> str:
        """:meth:`fetch` of a file of the folder, ``entry`` (named ``where``). Refused
        (DiskSpaceError, one line: what it needs, where) before a byte is fetched where the
        disk has no room for it (lefts45)."""
        from drivestage.partials import partial_size
        from drivestage.remote import open_store
        from drivestage.sizes import check_space

        into = os.path.dirname(os.path.abspath(local_path))
        os.makedirs(into, exist_ok=True)
        # A checkpoint of gigabytes was fetched whole with no look at the room: the disk
        # filled, then ENOSPC. Outside the run folder it is a temporary folder's (trainer
        # status looks inside there): its place, TMPDIR, is what the user can move.
        here = (into + os.sep).startswith(self.local_dir + os.sep)
        check_space(into if here else os.path.dirname(into),
                    0, entry.size - partial_size(local_path, entry), f"fetch {where}",
                    remedy="free some space and run the same command (Drive keeps it)" if here
                    else "free some space there, or set TMPDIR to a folder on a disk with room")
        try:
            fetch_own(self._store, entry, local_path, where,
                      lambda: open_store(self.spec, md5_cache=self._cache,
                                         acknowledge_abuse=True)[0])
        except NotFoundError as exc:
            if aside_for(entry) is None:
                raise
            # The old copy a push into a local DEST kept aside (the new sidecar not in yet
            # when listed), removed since with the new pair verified: not a checkpoint gone,
            # the folder changed (a fallback went back to an older one: pair36).
            raise RemoteChangedError(f"{where} was replaced ({exc})") from exc
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
        except AbusiveFileError:
            return self._read_flagged(entry)

    def _read_flagged(self, entry: RemoteEntry) -> Optional[bytes]:
        """A sidecar Drive flagged as malware or spam, read acknowledging that as its owner
        (as :func:`fetch_own` fetches a flagged checkpoint; a sidecar is a few hundred bytes
        of JSON, parsed as data). Before, every resume and ``trainer status`` of the folder
        stopped at it with pull's advice, ``pull again with --acknowledge-abuse``, an option
        the trainer lacks (attackstream40). One Drive serves to nobody here (another
        account's file) is no sidecar to use: its checkpoint is passed over, said once."""
        from drivestage.remote import open_store

        where = self.where(entry.name)
        try:
            if self._acknowledging is None:
                self._acknowledging = open_store(self.spec, md5_cache=self._cache,
                                                 acknowledge_abuse=True)[0]
            data = b"".join(self._acknowledging.read_range(entry, 0, entry.size))
            said = (f"Drive flagged {where} as malware or spam; the run wrote it, so it is "
                    "read acknowledging that (acknowledgeAbuse, which Drive allows its owner)")
        except AbusiveFileError:
            data = b""
            said = (f"Drive flagged {where} as malware or spam and serves it to its owner "
                    "only: its checkpoint is passed over (download it as its owner, or "
                    "remove the flagged pair)")
        except NotFoundError:
            return b""
        except RemoteChangedError:
            return None
        if entry.id not in self._flagged_said:
            self._flagged_said.add(entry.id)
            logger.warning("%s", said)
        return data


def fetch_own(store: "RemoteStore", entry: RemoteEntry, target: str, where: str,
              acknowledging: Callable[[], "RemoteStore"]) -> None:
    """Download a checkpoint of the run, ``entry``, from ``store`` to ``target``; where Drive
    flagged it as malware or spam (403 ``cannotDownloadAbusiveFile``: its scanner flags
    files it cannot tell, a pickle-based ``.pt`` among them), again from the store
    ``acknowledging()`` opens, which acknowledges the flag. The run wrote the file, and Drive
    serves a flagged file to its owner who acknowledges it; before, the resume stopped with
    drivestage pull's advice ``pull again with --acknowledge-abuse``, an option the trainer
    lacks, and never resumed by itself. What makes that safe: the bytes must be those the
    listing's md5 names (the download checks them, the resume against the sidecar too), and a
    checkpoint loads as tensors only (:mod:`trainer.torch_files`). A store that may not
    (not the owner, nor a Manager of its shared drive) fails as before, with that advice."""
    from drivestage.download import download
    from drivestage.errors import AbusiveFileError

    try:
        download(store, entry, target, describe=where)
    except AbusiveFileError:
        logger.warning("Drive flagged %s as malware or spam; the run wrote it, so it is fetched "
                       "acknowledging that (acknowledgeAbuse, which Drive allows its owner): its "
                       "bytes are checked against its sidecar's md5 and loaded as tensors only",
                       where)
        download(acknowledging(), entry, target, describe=where)


def unvouched_ahead(folder: DriveFolder, run: Optional[str],
                    progress: Optional[tuple[int, int]]) -> list[RemoteCheckpoint]:
    """The checkpoints of ``run`` in ``folder``'s last listing that its sidecar does not vouch
    for (:attr:`DriveFolder.unvouched`) and that are further on than ``progress`` (None:
    the run starts afresh, every one), newest first: what a resume from there passes over.
    Before, nothing was said of them (never candidates): a resume went back behind them
    without a word, and status named the older one as the run's newest."""
    ahead = [c for c in folder.unvouched if progress is None or (
        c.sidecar.run == run and c.sidecar.progress > progress)]
    return sorted(ahead, key=lambda c: c.sidecar.progress, reverse=True)


def unvouched_text(checkpoint: RemoteCheckpoint) -> str:
    """``drive:…/epoch_002.pt (epoch 2, iteration 4) is not the file its sidecar vouches for
    (…)``: the start of the line naming such a checkpoint."""
    s = checkpoint.sidecar
    label = Position(s.epoch or 0, s.iteration or 0, s.epoch_iteration).label
    return f"{checkpoint.where} ({label}) is {unvouched_why(checkpoint)}"


def unvouched_why(checkpoint: RemoteCheckpoint) -> str:
    """Why such a checkpoint is passed over (``trainer status --json``'s ``why``)."""
    return (f"not the file its sidecar vouches for (its md5 is {checkpoint.entry.md5}, the "
            f"sidecar names {checkpoint.sidecar.md5}: cut short or replaced on Drive since "
            f"it was verified)")


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
