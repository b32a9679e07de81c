"""A managed folder as a push will leave it (:func:`view`): the remote files and the local ones
about to replace or join them, each checkpoint with what its sidecar says (epoch, metrics, run,
``saved``, branch), which are verified, their twins, the foreign files, the orphan
sidecars and the lone autosaves. :mod:`drivestage.pruning` plans and deletes on it.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass
from typing import Mapping, Optional

from drivestage import first_seen, lone_autosaves, orphans, sidecar
from drivestage.errors import AbusiveFileError, NotFoundError, RemoteChangedError
from drivestage.retention import AUTOSAVE, SIDECAR, Candidate, RetentionPolicy
from drivestage.sidecar import Described, Sidecar
from drivestage.state import Md5Cache
from drivestage.store import RemoteEntry, RemoteStore

log = logging.getLogger(__name__)
#: Why retention keeps a file someone else owns (:func:`_foreign`).
FOREIGN = "another user's file (only its owner may delete it)"

#: A managed folder's listing: name -> the entries of that name (Drive allows duplicates).
Listing = Mapping[str, list[RemoteEntry]]


@dataclass(frozen=True)
class LocalFile:
    """A local file about to be pushed into the managed folder."""

    path: str
    size: int
    #: Where a push's walk found it (no link on its way): its reads land there or fail, as
    #: :func:`drivestage.sources.open_walked` (pushlefts47); "" where no walk found it.
    real: str = ""


@dataclass(frozen=True)
class FolderView:
    """The managed folder after a push: the plan's candidates, and the remote checkpoints
    with their sidecars (for the newest verified one)."""

    candidates: list[Candidate]
    described: list[Described]
    owners: dict[str, set[str]]     # sidecar name -> the checkpoints it describes
    orphans: list[orphans.Orphan] = dataclasses.field(default_factory=list)
    foreign: set[str] = dataclasses.field(default_factory=set)  # ids: see :func:`_foreign`
    #: id -> the other copies of its name with its very bytes (same md5): what a push sent
    #: again while Drive's listing did not show the first copy. The plan has one candidate
    #: per name a push sends; deleting that name deletes these too.
    twins: dict[str, list[RemoteEntry]] = dataclasses.field(default_factory=dict)
    #: Branch records on files the policy does not manage (``best.pt``: a run sent back to a
    #: state only it holds), as the store has them: they leave a line behind all the same.
    records: list[Described] = dataclasses.field(default_factory=list)
    #: Autosaves on the store without a sidecar (a process killed between the two uploads):
    #: :mod:`drivestage.lone_autosaves` says which may go.
    lone: list[RemoteEntry] = dataclasses.field(default_factory=list)
    #: Ids of the sidecars Drive flagged and will not serve to this account, and of the
    #: checkpoints they describe: whose and how far on, none can tell; kept
    #: (:data:`drivestage.flagged.KEPT`). Before, the read failed every push and prune.
    flagged: set[str] = dataclasses.field(default_factory=set)


def _modified(entry: RemoteEntry) -> float:
    """``entry``'s modified time as retention ranks it: before its first-seen mark's own
    write, which may have moved it (:func:`drivestage.first_seen.modified`)."""
    return first_seen.modified(entry)


def pick(dups: list[RemoteEntry], where: str, side: Optional[Sidecar] = None) -> RemoteEntry:
    """One entry among same-named ones (Drive allows duplicates): the one the sidecar ``side``
    vouches for, else the newest (:func:`drivestage.sidecar.vouched`); says which ids collide."""
    if len(dups) > 1:
        log.warning("%s: %d items share this name (ids %s); using the one its sidecar vouches "
                    "for, else the newest", where, len(dups), ", ".join(e.id for e in dups))
    return sidecar.vouched(dups, side)


def _as_for(side: Optional[Sidecar], copies: list[RemoteEntry]) -> Optional[Sidecar]:
    """``side`` as it describes the copy of its checkpoint it vouches for (one coming, or
    the one it describes: :attr:`drivestage.sidecar.Sidecar.coming`)."""
    if side is None or side.coming is None or not copies:
        return side
    return side.speaking_for(sidecar.vouched(copies, side).md5)


def with_name_epoch(side: Optional[Sidecar], name: str,
                     policy: RetentionPolicy) -> Optional[Sidecar]:
    """``side``, its epoch taken from the checkpoint's name when the sidecar has none."""
    if side is None or side.epoch is not None:
        return side
    match = policy.regex.search(name)
    if match is None or "epoch" not in policy.regex.groupindex or match.group("epoch") is None:
        return side
    try:
        return dataclasses.replace(side, epoch=int(match.group("epoch")))
    except ValueError:
        return side


class _Sidecars:
    """Reads sidecars: local files, or remote entries (each read once)."""

    def __init__(self, store: RemoteStore, remote: Listing, local: Mapping[str, LocalFile],
                 cache: Md5Cache):
        self.store, self.remote, self.local, self.cache = store, remote, local, cache
        self._read: dict[str, Optional[Sidecar]] = {}
        self.flagged: set[str] = set()   # names of the sidecars Drive will not serve here

    def local_one(self, name: str) -> Optional[Sidecar]:
        lf = self.local[name]
        return sidecar.read(lf.path, follow=False, real=lf.real)   # (a walked file)

    def remote_one(self, name: str) -> Optional[Sidecar]:
        """The remote sidecar ``name``: from the local copy when it has the same bytes. Its
        ``saved`` is never later than when the sidecar reached the store (see
        :func:`drivestage.sidecar.no_later_than`)."""
        entry = pick(self.remote[name], name)
        lf = self.local.get(name)
        if lf is not None and lf.size == entry.size and entry.md5 is not None:
            try:
                if self.cache.md5(lf.path, follow=False, real=lf.real) == entry.md5:
                    return sidecar.no_later_than(self.local_one(name), _modified(entry))
            except OSError:
                pass
        if entry.id not in self._read:
            self._read[entry.id] = sidecar.no_later_than(self._fetch(entry), _modified(entry))
        return self._read[entry.id]

    def _fetch(self, entry: RemoteEntry) -> Optional[Sidecar]:
        try:
            data = sidecar.fetch(self.store, entry)
        except (NotFoundError, RemoteChangedError):  # gone or replaced since the listing;
            return None  # any other failure ends the run: an unread metric deleted the best
        except AbusiveFileError:   # (flagged: no sidecar to read, and the pair is kept)
            self.flagged.add(entry.name)
            return None
        return sidecar.parse(data, entry.name) if data is not None else None


def files_of(remote: Listing) -> Listing:
    """The files of a listing that retention and sidecars deal with. Folders are never
    candidates (retention manages the files directly inside the folder); nor is a file the
    store holds no bytes of (a Google Doc at a sidecar's name: read as the sidecar, Drive's
    refusal of its download stopped every push and prune: attacksync33)."""
    return {n: fs for n, fs in ((n, [e for e in es if sidecar.has_bytes(e)])
                                for n, es in remote.items()) if fs}


def view(store: RemoteStore, remote: Listing, local: Mapping[str, LocalFile],
         policy: RetentionPolicy, cache: Md5Cache) -> FolderView:
    """Everything in the managed folder after this push (remote files, local ones replacing
    or joining them), with what their sidecars say."""
    files = files_of(remote)
    reader = _Sidecars(store, files, local, cache)
    local_side, remote_side = sidecar.pairs(local), sidecar.pairs(files)
    out: list[Candidate] = []
    described: list[Described] = []
    records: list[Described] = []
    twins: dict[str, list[RemoteEntry]] = {}
    # A local file's mtime is this machine's clock, a remote one's Drive's: compared (which
    # run wrote last, keep_runs), a machine whose clock runs hours behind had the run it is
    # training read older than the one another machine pushed a moment ago (attack48).
    shift = store.clock_shift()
    for name in sorted(set(files) | set(local)):
        kind = policy.kind_of(name)
        managed = kind in ("checkpoint", AUTOSAVE)
        side: Optional[Sidecar] = None
        if managed and name in local_side:
            side = reader.local_one(local_side[name])
        elif managed and name in remote_side:
            side = _as_for(reader.remote_one(remote_side[name]), files.get(name, []))
        elif kind != SIDECAR:  # read for a branch record only (see FolderView.records)
            side = _record(reader, name, local_side, remote_side)
        reads = managed or side is not None
        side = with_name_epoch(side, name, policy)
        epoch = side.epoch if side else None
        run = side.run if side else None
        saved = side.saved if side else None
        into, branch = (side.epoch_iteration, side.branch) if side else (0, None)
        metrics = dict(side.metrics) if side else {}
        verified = None
        theirs = None
        if reads and name in files and name in remote_side:
            theirs = with_name_epoch(reader.remote_one(remote_side[name]), name, policy)
        # Same-named copies (a push replacing a checkpoint, another machine's): the one the
        # remote sidecar vouches for is the one that counts.
        entry = pick(files[name], name, theirs) \
            if name in files and (reads or name in local) else None
        if entry is not None and theirs is not None:
            verified = Described(name, theirs, entry.md5, _modified(entry), entry.created)
            (described if managed else records).append(verified)
        if name in local:
            # Same name on the remote: the local file replaces it. A checkpoint or an
            # autosave is verified when its local sidecar vouches for it (the push sends
            # both before retention deletes anything, and deletes nothing after a failed
            # upload); an autosave also when it is on the store already, unchanged. (An
            # autosave needed the latter: a push into a new folder sent an older autosave,
            # no autosave being verified yet, and kept it until the next push.)
            rid = entry.id if entry is not None else None
            if entry is not None and entry.md5:
                # Not someone else's copy (:func:`_foreign`): Drive lets this account delete
                # it no more than the plan's own copies of theirs, which retention keeps.
                same = [e for e in files[name] if e.id != entry.id and e.md5 == entry.md5
                        and not _foreign(e)]
                if same:
                    twins[entry.id] = same
            ok = reads and name in local_side and _vouches(side, local[name], cache)
            if kind == AUTOSAVE and not ok:
                ok = verified is not None and verified.verified \
                    and entry is not None and _same(local[name], entry, cache)
            out.append(Candidate(name, local[name].size, _mtime(local[name], shift), metrics,
                                 epoch, rid, ok, run, saved, into, branch,
                                 entry.md5 if entry is not None else None,
                                 _mtime(local[name]) if shift else None))
            continue
        for e in files[name]:
            ok = verified is not None and verified.verified and e.md5 == verified.md5
            out.append(Candidate(name, e.size, _modified(e), metrics, epoch, e.id, ok, run,
                                 saved, into, branch, e.md5))
    owned = sidecar.owners(set(files) | set(local))
    foreign = {e.id for es in files.values() for e in es if _foreign(e)}
    alone = [o for o in _orphans(reader, files, set(local) | set(owned), policy)
             if o.entry.id not in foreign] if policy.active else []
    lone = [e for e in lone_autosaves.find(files, local, policy) if e.id not in foreign]
    kept = {e.id for side in reader.flagged for n in {side} | owned.get(side, set())
            for e in files.get(n, [])}
    return FolderView(out, described, owned, alone, foreign, twins, records, lone, kept)


def _record(reader: _Sidecars, name: str, local_side: Mapping[str, str],
            remote_side: Mapping[str, str]) -> Optional[Sidecar]:
    """The sidecar of ``name``, a file the policy does not manage, when it is a branch
    record (``best.json`` of a run sent back to a state no epoch file holds), else None."""
    side = reader.local_one(local_side[name]) if name in local_side else \
        reader.remote_one(remote_side[name]) if name in remote_side else None
    return side if side is not None and side.branch is not None else None


def _foreign(entry: RemoteEntry) -> bool:
    """A file of My Drive this account may neither delete nor trash (Drive says so in the
    listing): someone else's, put in the folder by a collaborator. It uses its owner's quota,
    not this account's; retention keeps it instead of failing on it at every run. (In a
    shared drive the same answer means a missing role: the deletion fails, naming the roles.)"""
    return not entry.removable and getattr(entry, "drive_id", None) is None


def _orphans(reader: _Sidecars, files: Listing, taken: set[str],
             policy: RetentionPolicy) -> list[orphans.Orphan]:
    """The remote sidecars without their checkpoint (:mod:`drivestage.orphans`) that vouch
    for bytes no file of the folder holds; ``taken``: names that are no orphan (a sidecar
    with its checkpoint, or a local file the push sends)."""
    held = {e.md5 for es in files.values() for e in es if e.md5}
    out = []
    for name, entries in sorted(files.items()):
        ckpt = orphans.checkpoint_name(name, policy) if name not in taken else None
        if ckpt is None or len(entries) != 1:
            continue
        side = with_name_epoch(reader.remote_one(name), ckpt, policy)
        if side is not None and side.md5 is not None and side.size is not None \
                and side.epoch is not None and side.md5 not in held:
            out.append(orphans.Orphan(entries[0], ckpt, side))
    return out


def _mtime(lf: LocalFile, shift: float = 0.0) -> float:
    """When a local file was written (now, if it is gone), by the store's clock (``shift``:
    :meth:`RemoteStore.clock_shift`): its age among the remote ones, and which run wrote
    last."""
    try:
        return os.path.getmtime(lf.path) + shift
    except OSError:
        return time.time() + shift


def _vouches(side: Optional[Sidecar], lf: LocalFile, cache: Md5Cache) -> bool:
    """A local sidecar vouches for its local checkpoint (it names its md5, or none)."""
    if side is None:
        return False
    try:
        return side.md5 is None or cache.md5(lf.path, follow=False, real=lf.real) == side.md5
    except OSError:
        return False


def _same(lf: LocalFile, entry: RemoteEntry, cache: Md5Cache) -> bool:
    # (Never through a link: a push's walked file, where a link it let through led; one
    # planted there since is no file of SRC, and is no copy of anything: pushlinks46.)
    try:
        return lf.size == entry.size and entry.md5 is not None and \
            cache.md5(lf.path, follow=False, real=lf.real) == entry.md5
    except OSError:
        return False
