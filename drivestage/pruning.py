"""Retention applied to a folder on a store: what is there, what its sidecars say, the plan,
and the deletions (``prune``, and the retention step of ``push``).

The managed folder is seen as it will be after a push (:func:`view`): the remote files, and
the local ones about to replace or join them. Checkpoints get the epoch and metrics of their
sidecar (:mod:`drivestage.sidecar`: the local one when there is one, else the remote one). A
remote checkpoint is *verified* when its remote sidecar vouches for its bytes; the newest
verified one (:func:`drivestage.sidecar.newest`, the one rule) is never deleted (labelled
"newest verified"), nor is the verified one its sidecar says was saved last (the plan's own
rule, :mod:`drivestage.retention`). A local checkpoint or autosave about to be sent counts as
verified when its local sidecar vouches for it (an autosave also when it is on the store
unchanged).
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Callable, Iterable, Mapping, Optional, Sequence

from drivestage import first_seen, flagged, lineage, lone_autosaves, orphans, sidecar, \
    unlisted_sidecars, walk_clock
from drivestage.command import doing
from drivestage.errors import (DriveStageError, KeptMovedError, LeftAloneError,
                               NotFoundError, QuotaExceededError, UsageError)
# The folder's view lives in its own module; its names stay importable from here.
from drivestage.folder_view import (FOREIGN, FolderView, Listing, LocalFile, _Sidecars,
                                    files_of, pick, view, with_name_epoch)
from drivestage.localdir import LocalDirStore
from drivestage.lost_mounts import prune_in_mount
from drivestage.remote import Where, open_store
from drivestage.retention import (AUTOSAVE, CHECKPOINT, OTHER, SIDECAR, Decision, Plan,
                                  RetentionPolicy, kept_runs, plan)
from drivestage.paths import patterns, printable
from drivestage.sidecar import Described
from drivestage.sizes import format_size
from drivestage.state import Md5Cache
from drivestage.store import RemoteEntry, RemoteStore

log = logging.getLogger(__name__)

__all__ = ["FOREIGN", "FolderView", "Listing", "LocalFile", "pick", "view", "with_name_epoch",
           "newest_runs_verified", "newest_verified_per_run", "newest_verified_ids",
           "plan_folder", "with_sidecars", "pre_prune_victims", "over_budget",
           "Deletions", "apply", "kept_instead",
           "prune"]


def newest_runs_verified(folder: FolderView, policy: RetentionPolicy) -> set[str]:
    """The newest verified remote checkpoint of the run that wrote to the folder last (by
    the store's mtimes, not by progress: an older run may have trained for longer), and its
    verified one saved last (:func:`drivestage.sidecar.saved_last`); empty when none is
    verified."""
    ok = [d for d in folder.described if d.verified and d.sidecar.epoch is not None]
    if not ok:
        return set()
    run = max(ok, key=lambda d: (d.modified, d.name)).sidecar.run
    ours = [d for d in ok if d.sidecar.run == run]
    # (Not one a branch left behind: the run goes on from its record's line.)
    newest = sidecar.newest(ours, prefer=policy.regex,
                            skip=lineage.left_described(ours + folder.records))
    return {d.name for d in (newest, sidecar.saved_last(ours)) if d is not None}


def newest_verified_per_run(folder: FolderView, policy: RetentionPolicy) -> set[str]:
    """The newest verified remote checkpoint of every run that the policy keeps (sidecars
    without a run are one run of their own): what retention never deletes."""
    runs = {d.sidecar.run for d in folder.described} & kept_runs(folder.candidates, policy)
    # A run sent back goes on from its branch record's line: the diverged checkpoint it left,
    # further on, is not its newest (else prune kept it for good, beside what keep_last keeps).
    left = lineage.left_described(folder.described + folder.records)
    out = set()
    for run in runs:
        best = sidecar.newest([d for d in folder.described if d.sidecar.run == run],
                              prefer=policy.regex, skip=left)
        if best is not None:
            out.add(best.name)
    return out


def newest_verified_ids(store: RemoteStore, remote: Listing, policy: RetentionPolicy,
                        cache: Md5Cache, local: Iterable[str] = (), *, now: float = 0.0,
                        seen: Optional[first_seen.Seen] = None) -> set[str]:
    """Ids of the newest verified checkpoint of every run (and of the one saved last, see
    :func:`drivestage.sidecar.saved_last`) among the files directly in a
    folder, whatever their names (any file with a sidecar beside it), and of their sidecars:
    what ``push --delete`` never removes, managed by the policy or not. Every copy of such a
    name is spared: a copy the sidecar does not vouch for yet is the replacement another
    machine is sending, and that machine deletes the vouched one once its sidecar is sent.
    So is every checkpoint without a listed sidecar that may be one of those, its sidecar
    left out of a listing that lags (:func:`drivestage.unlisted_sidecars.spared`, with
    ``local``, ``now`` and ``seen``; ``local``: the names the push sends into the folder)."""
    files = files_of(remote)
    reader = _Sidecars(store, files, {}, cache)
    described: list[Described] = []
    side_of: dict[str, str] = {}
    for name, side_name in sidecar.pairs(files).items():
        side = with_name_epoch(reader.remote_one(side_name), name, policy)
        if side is None:
            continue
        entry = pick(files[name], name, side)
        side_of[name] = side_name
        described.append(Described(name, side, entry.md5, entry.modified, entry.created))
    out: set[str] = set()
    for run in {d.sidecar.run for d in described}:
        ours = [d for d in described if d.sidecar.run == run]
        # The most advanced, and the one saved last (the real newest beside a sidecar that
        # claims more progress than its run made).
        for spared in (sidecar.newest(ours, prefer=policy.regex), sidecar.saved_last(ours)):
            if spared is not None:
                out |= {e.id for e in files[spared.name] + files[side_of[spared.name]]}
    return out | unlisted_sidecars.spared(files, described, policy, local, now=now, seen=seen)


def plan_folder(folder: FolderView, policy: RetentionPolicy, *, protect: Iterable[str] = (),
                also_keep: Optional[Mapping[str, Iterable[str]]] = None,
                seen: Optional[first_seen.Seen] = None, now: Optional[float] = None) -> Plan:
    """The plan of the folder (:func:`drivestage.retention.plan`), with the orphan sidecars
    and the lone autosaves that may go retired (:func:`drivestage.orphans.retire`,
    :func:`drivestage.lone_autosaves.retire`). ``seen``: their first-seen marks
    (:func:`drivestage.first_seen.on`); without it none is retired by age. ``now``: the
    clock ages are measured by (the earlier of :meth:`RemoteStore.clock`; default: this
    machine's)."""
    protect = list(protect)
    if folder.foreign:
        also_keep = {**(also_keep or {}), FOREIGN: folder.foreign}
    if folder.flagged:
        also_keep = {**(also_keep or {}), flagged.KEPT: folder.flagged}
    lone = lone_autosaves.retire(folder.lone, folder.described, policy, protect=protect,
                                 also_keep=also_keep, seen=seen, now=now)
    # (Planned as the folder will be: a retired autosave counts against no budget.)
    candidates = lone_autosaves.without(folder.candidates, lone)
    decided = plan(candidates, policy, protect=protect, also_keep=also_keep)
    decided = orphans.retire(decided, candidates, folder.described, folder.orphans, policy,
                             protect=protect, also_keep=also_keep, seen=seen, now=now)
    return lone_autosaves.insert(decided, lone)


def with_sidecars(folder: FolderView, names: Iterable[str]) -> set[str]:
    """``names`` and their sidecars."""
    out = set(names)
    out |= {side for side, owners in folder.owners.items() if owners & out}
    return out


def pre_prune_victims(decision: Plan, folder: FolderView,
                       policy: RetentionPolicy) -> list[Decision]:
    """Remote files the plan deletes that may go before the upload: never the newest verified
    checkpoint of any run the policy keeps, or its sidecars; and while none of those runs has
    one on the store yet (a new run's first push beside the runs ``keep_runs`` drops), never
    the newest verified checkpoint of the run that wrote there last (not the most advanced
    of the folder: an older run may have trained longer): it goes only once the new one is
    verified."""
    protected = room_keeps(folder, policy) | with_sidecars(folder, _sidecar_on_its_way(folder, policy))
    return [d for d in decision.to_delete  # an orphan sidecar goes after the uploads
            if d.id is not None and d.name not in protected and d.orphan_md5 is None]


def _sidecar_on_its_way(folder: FolderView, policy: RetentionPolicy) -> set[str]:
    """The store's checkpoints and autosaves without a sidecar that vouches for them, written
    after the newest verified one of some run (or with none verified): each may be that
    run's newest verified, its sidecar sent a moment ago and left out of a listing that lags
    (Drive's are eventually consistent; attackretain46: it went before the upload, which
    then failed, and Drive held no checkpoint). They go after the uploads, if still planned.
    None in a folder without sidecars, here or being sent: nothing there is ever verified."""
    if not folder.owners:
        return set()
    newest: dict[Optional[str], float] = {}
    for d in folder.described:
        if d.verified:
            newest[d.sidecar.run] = max(newest.get(d.sidecar.run, d.modified), d.modified)
    since = min(newest.values(), default=None)
    return {c.name for c in folder.candidates if c.id is not None and not c.verified
            and policy.kind_of(c.name) in (CHECKPOINT, AUTOSAVE)
            and (since is None or c.modified > since)}


def room_keeps(folder: FolderView, policy: RetentionPolicy) -> set[str]:
    """The names :func:`pre_prune_victims` never deletes (those checkpoints and their
    sidecars)."""
    keep = newest_verified_per_run(folder, policy) or \
        newest_runs_verified(folder, policy)
    # Left behind only by a record this push is about to send: until that record is
    # verified on the store, the line it leaves is still the store's newest, and a
    # verified checkpoint goes only once its replacement is verified.
    if any(c.branch is not None for c in folder.candidates):
        keep |= _left_by_unsent(folder)
    return with_sidecars(folder, keep)


def _left_by_unsent(folder: FolderView) -> set[str]:
    """Names the plan ranks as left behind by a branch that the store's own sidecars do not
    (their record is still local)."""
    points = [lineage.Point(str(i), c.run, None if c.epoch is None else (c.epoch,
                                                                        c.epoch_iteration),
                            c.saved, c.branch if c.verified else None)
              for i, c in enumerate(folder.candidates)]
    here = {folder.candidates[int(k)].name for k in lineage.left_behind(points)}
    return here - lineage.left_described(folder.described + folder.records)


def over_budget(decided: Plan, where: str) -> QuotaExceededError:
    """The error of a plan whose budget cannot hold what the policy keeps (``push`` raises it
    before a byte is sent, ``prune`` once the rest of the plan is applied). It says why the
    plan deleted nothing for the budget, and from what size on one is met: a budget of 500 B
    deleted less than one of 1500 B, unexplained (include29)."""
    from drivestage.errors import BudgetError

    names = ", ".join(printable(n) for n in decided.pinned[:3]) + (
        f" and {len(decided.pinned) - 3} more" if len(decided.pinned) > 3 else "")
    sent = f" with the {format_size(decided.incoming_bytes)} being sent" \
        if decided.incoming_bytes else ""
    floor = format_size(decided.floor_bytes)
    return BudgetError(
        f"the retention budget of {format_size(decided.max_bytes or 0)} cannot hold what the "
        f"policy keeps ({format_size(decided.kept_bytes + decided.incoming_bytes)}) in {where}, "
        f"{format_size(decided.shortfall)} over. What no budget deletes ({names or 'nothing'})"
        f"{sent} takes {floor} alone, so nothing was deleted for it (a budget short even "
        "then is taken for a slip)",
        f"raise --max-bytes to {floor} or more (the oldest checkpoints then go as far as it "
        "needs), or keep fewer checkpoints",
        needed=decided.kept_bytes + decided.incoming_bytes, free=decided.max_bytes,
        floor=decided.floor_bytes)


class Deletions:
    """The deletion of a plan's decisions (the files before their sidecars), but for the
    sidecars of a checkpoint the store left alone (renamed, moved or given other bytes on
    the store since the listing): a sidecar goes only with the checkpoint it names.
    Its checkpoint renamed to keep it (``keep_me.pt``), the sidecar went all the same (no
    copy of its name was listed any more) and the kept checkpoint lost its epoch, metrics
    and verification."""

    def __init__(self, store: RemoteStore, use_trash: bool,
                 check: Optional[Callable[[], None]] = None):
        self.store, self.use_trash = store, use_trash
        self.check = check   # before each removal request (a push's guard: push_fence)
        self.left: set[str] = set()   # names of which a deletion was left alone
        self.gone: set[str] = set()   # ids deleted (or found gone)
        self.stale = False            # what the plan keeps changed: nothing deleted

    def keeps(self, d: Decision) -> bool:
        """``d`` is the sidecar of a checkpoint the store left alone: it stays (said at info;
        the checkpoint's warning is the user's line)."""
        if d.kind == SIDECAR and sidecar.owners(self.left | {d.name}).get(d.name):
            log.info("kept the sidecar %s: its checkpoint was left as it is", d.name)
            return True
        return False

    def many(self, ds: Sequence[Decision], still: Callable[[Decision], bool] = lambda d: True,
             kept: Sequence[Decision] = ()) -> list[Decision]:
        """The decisions of ``ds`` that went (or were gone), in their order: the files first,
        in as few requests as the store can (:meth:`~drivestage.store.RemoteStore.
        delete_many`: Drive's batches), then the sidecars whose checkpoints did not stay
        and that ``still`` lets go. A failure (a delete Drive refused, an outage) is raised
        once what was tried is told: the sidecars of what stayed are not tried. ``kept``:
        what the plan keeps, read with the files' checks; one not as listed leaves all."""
        files = [d for d in ds if d.kind != SIDECAR]
        went = self._many(files, kept)
        if self.stale:
            return []  # the plan no longer holds: not one of its deletions is made
        sides = [d for d in ds if d.kind == SIDECAR and not self.keeps(d) and still(d)]
        went |= self._many(sides, () if files else kept)
        return [d for d in ds if id(d) in went]

    def _many(self, ds: list[Decision], kept: Sequence[Decision] = ()) -> set[int]:
        entries = [_entry(d) for d in ds]
        outcome: dict[str, Optional[DriveStageError]] = {}
        failed: Optional[BaseException] = None
        try:
            if ds and kept:
                self.store.delete_many(entries, trash=self.use_trash, check=self.check,
                                       kept=[_entry(d) for d in kept], into=outcome)
            elif ds:
                self.store.delete_many(entries, trash=self.use_trash, check=self.check,
                                       into=outcome)
        except BaseException as stopped:   # (the guard refused midway: what went, said first)
            failed = stopped
        went = set()
        for d in ds:
            if d.id not in outcome:
                continue  # not tried (a failure before it)
            exc = outcome[d.id or ""]
            if exc is None:
                log.info("deleted %s (%s)%s", d.name, format_size(d.size),
                         " to the trash" if self.use_trash else "")
            elif isinstance(exc, LeftAloneError):  # (a NotFoundError: asked first)
                if isinstance(exc, KeptMovedError) and not self.stale:
                    self.stale = True
                    log.warning("%s", exc)  # once: every deletion of the pass is left so
                self.left.add(d.name)  # changed since the listing (the store said why)
                continue
            elif isinstance(exc, NotFoundError):
                # Another machine's retention deleted it, and Drive's listing (eventually
                # consistent) still showed it: the push that makes room first goes on.
                log.info("%s was already deleted", d.name)
            else:
                failed = failed or exc
                continue
            went.add(id(d))
            self.gone.add(d.id or "")
        if failed is not None:
            raise failed
        return went


def apply(store: RemoteStore, decided: Plan, folder: RemoteEntry, use_trash: bool,
          skip: Iterable[str] = (), twins: Optional[Mapping[str, Sequence[RemoteEntry]]] = None,
          left: Iterable[Decision] = (), confirm: bool = False,
          written: Iterable[str] = (),
          check: Optional[Callable[[], None]] = None) -> list[Decision]:
    """Apply the plan's deletions (but ids in ``skip``); returns those applied. With
    ``confirm``, what the plan keeps on the store is read with the first checks, and if one
    is gone or changed since the listing nothing is deleted (a lagging listing showed the
    newest checkpoint the user had just trashed, and keep_last deleted all the others), but
    for the names in ``written`` (a push replaced or updated them itself). An orphan
    sidecar goes only if the folder, listed again, shows it unchanged and still without its
    checkpoint (:func:`drivestage.orphans.still_orphan`); a checkpoint's sidecar only if that
    listing shows no copy of its checkpoint but those this plan deleted (another machine
    may have sent a new copy since the plan, and updated the sidecar in place for it). A
    deleted file's ``twins`` (:attr:`FolderView.twins`) go with it. ``left``: decisions
    whose deletion was left alone earlier in this pass (:func:`drivestage.push_room.
    make_room`): not tried again, and their sidecars stay. The files go first, in batches
    (:meth:`Deletions.many`), then the sidecars; ``check`` (a push's guard) before each
    removal request."""
    decided = _with_twins(decided, twins or {})
    done = set(skip)
    # The names whose new copy keeps a sidecar: those the plan deletes (a sidecar belongs to
    # the one name it vouches for: beside a kept name it does not, it goes, see retention).
    managed = {d.name for d in decided if d.kind in (CHECKPOINT, AUTOSAVE) and not d.keep}
    deletes = Deletions(store, use_trash, check)
    # Left alone by a deletion earlier in this pass (a push pruning for room): not asked
    # again (its warning said once), and its sidecars stay.
    deletes.left |= {d.name for d in left}
    done |= {d.id for d in left if d.id is not None}
    listed: list[list[RemoteEntry]] = []  # the folder listed again, once

    def still(d: Decision) -> bool:
        # (The sidecars go once the files are deleted: a listing that lags showed a renamed
        # checkpoint as it was, and this warned of "another machine pushing it".)
        if not listed:
            listed.append(store.list(folder))
        if d.orphan_md5 is not None:
            if not orphans.still_orphan(d, listed[0]):
                log.warning("kept the orphan sidecar %s: its checkpoint came back or it changed "
                            "since the plan (another machine pushing it?)", d.name)
                return False
        elif _still_owned(d, listed[0], deletes.gone, managed):
            log.warning("kept the sidecar %s: a copy of its checkpoint arrived since the "
                        "plan (another machine pushing it?)", d.name)
            return False
        return True

    # What the plan keeps, as listed: a plan on a listing that lags kept what is gone.
    mine = set(written)  # their listed copies are the old ones, gone by this push's hand
    kept = [d for d in decided if d.keep and d.id is not None and d.kind != OTHER
            and d.name not in mine] if confirm else []
    todo = [d for d in decided.to_delete if d.id is not None and d.id not in done]
    # A lone autosave goes only if the folder, listed again, shows it still alone: a sidecar
    # that arrived under a listing that lagged keeps it (one listing, only when there is one).
    lone = [d for d in todo if d.kind == AUTOSAVE and d.orphan_md5 is not None]
    if lone:
        again = store.list(folder)
        for d in lone:
            if not lone_autosaves.still_lone(d, again):
                log.warning("kept the lone autosave %s: its sidecar arrived or it changed since "
                            "the plan (another machine pushing it?)", d.name)
                todo.remove(d)
    # Left alone (changed since the listing): not counted as pruned, nor its sidecars deleted.
    return deletes.many(todo, still, kept)


def kept_instead(decided: Plan, instead: Mapping[str, RemoteEntry]) -> Plan:
    """``decided`` with each item it keeps that ``instead`` names (by id) as the entry given
    there: a push that removed an older copy of an unchanged file itself (a repair) has the
    plan keep the copy it kept, which apply's read of what the plan keeps then checks. Read
    as the removed copy, it was gone: nothing was deleted, with a warning of the push's own
    deletion (attackpush26)."""
    return dataclasses.replace(decided, decisions=tuple(
        dataclasses.replace(d, id=instead[d.id].id, size=instead[d.id].size,
                            md5=instead[d.id].md5)
        if d.keep and d.id is not None and d.id in instead else d for d in decided))


def sent_instead(decided: Plan, sent: Mapping[str, RemoteEntry]) -> Plan:
    """``decided`` with each name it keeps that a push sent (``sent``: name -> the copy it
    verified) as that copy, which apply's read of what the plan keeps then checks: a server
    (a proxy, a look-alike) that answered the new sidecar's upload 200 and kept nothing left
    the new checkpoint unverified, and the verified pair before it was pruned (attacksync34)."""
    return dataclasses.replace(decided, decisions=tuple(
        dataclasses.replace(d, id=sent[d.name].id, size=sent[d.name].size, md5=sent[d.name].md5)
        if d.keep and d.name in sent else d for d in decided))


def _entry(d: Decision) -> RemoteEntry:
    """The store's item a decision is about, as listed."""
    # With the md5 the plan saw: an item given other bytes under its id since the listing
    # (Drive's listings lag; another machine updated a sidecar in place for the new copy of
    # its checkpoint) is left alone as one renamed is. Without it, such a sidecar went and
    # the new checkpoint lost its epoch, metrics and verification.
    return RemoteEntry(id=d.id or "", name=d.name, is_dir=False, size=d.size,
                       md5=d.md5 or d.orphan_md5)


def _with_twins(decided: Plan, twins: Mapping[str, Sequence[RemoteEntry]]) -> Plan:
    """``decided`` with a deletion for each twin of a file it deletes (its name's copies
    with the same bytes), right after that file's: the name goes from the folder whole,
    instead of one copy per push. Copies the plan keeps, or decides on itself, are left
    to that decision."""
    if not twins:
        return decided
    decided_ids = {d.id for d in decided if d.id is not None}
    out: list[Decision] = []
    for d in decided:
        out.append(d)
        if d.keep or d.id is None:
            continue
        for e in twins.get(d.id, ()):
            if e.id not in decided_ids:
                decided_ids.add(e.id)
                out.append(dataclasses.replace(d, id=e.id, size=e.size, md5=e.md5,
                                               reason=f"{d.reason} (a copy with the same bytes)"))
    return dataclasses.replace(decided, decisions=tuple(out))


def _still_owned(d: Decision, listing: Iterable[RemoteEntry], gone: set[str],
                 managed: set[str]) -> bool:
    """The sidecar ``d`` still has a checkpoint in ``listing`` (the folder listed again): a
    copy of a managed name it describes that was not deleted here."""
    names = {e.name for e in listing if not e.is_dir and e.id not in gone
             and (e.name in managed or e.name == d.name)}
    return d.name in sidecar.owners(names)


def prune(dest: Where, policy: RetentionPolicy, *, store: Optional[RemoteStore] = None,
          dry_run: bool = False, use_trash: bool = False, protect: Iterable[str] = (),
          md5_cache: Optional[Md5Cache] = None) -> Plan:
    """Apply ``policy`` to the files directly inside ``dest``; return the plan.

    Sidecar metrics are read from the remote. The newest verified checkpoint
    and anything in ``protect`` are never deleted; nothing outside ``dest``
    is touched. With ``dry_run`` nothing is deleted. A plan whose budget cannot hold what
    the policy keeps (``Plan.fits`` False) is applied all the same (it holds no deletion for
    the budget); the CLI then exits 1 (:func:`over_budget`).
    """
    cache = md5_cache or Md5Cache()
    try:
        with doing("prune"):   # (a stop says "the prune stopped")
            return _prune(dest, policy, store, dry_run, use_trash, protect, cache)
    finally:
        cache.save()


def _prune(dest: Where, policy: RetentionPolicy, store: Optional[RemoteStore], dry_run: bool,
           use_trash: bool, protect: Iterable[str], cache: Md5Cache) -> Plan:
    """:func:`prune`'s work, its md5 cache saved by the caller."""
    target, path = open_store((store, str(dest)) if store is not None else dest,
                              md5_cache=cache)
    root = target.resolve(path)
    if not root.is_dir:
        raise UsageError(f"{target.describe(root)} is a file; prune needs the folder that "
                         "holds the checkpoints")
    held = prune_in_mount(target.describe(root)) \
        if isinstance(target, LocalDirStore) and not dry_run else None
    if held is not None:
        raise UsageError(held)
    # The folder's listings (the plan's, and apply's of the sidecars and lone autosaves it
    # removes) under one clock, as a walk's (DRIVESTAGE_LISTING_TIMEOUT without a page:
    # walk52): each had a bound of its own, and one whose page came past it was followed by
    # the next as if nothing happened.
    with walk_clock.walking(walk_clock.WalkClock(target.describe(root))):
        listing: dict[str, list[RemoteEntry]] = {}
        for e in target.list(root):
            if not e.is_dir:
                listing.setdefault(e.name, []).append(e)
        folder = view(target, listing, {}, policy, cache)
        decision = plan_folder(folder, policy, protect=patterns(protect), also_keep={
            "newest verified": newest_verified_per_run(folder, policy)},
            seen=first_seen.on(target, write=not dry_run), now=target.clock()[0])
        if not dry_run:
            apply(target, decision, root, use_trash, twins=folder.twins, confirm=True)
            first_seen.clear(target, [e for es in listing.values() for e in es],
                             gone=[d.id for d in decision if not d.keep])
    return decision

