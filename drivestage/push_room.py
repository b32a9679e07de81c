"""A push's retention deletions (:mod:`drivestage.upload_tree`): room on the store for what it
is about to send (:func:`make_room`: the quota asked once, and when it is short, what the
retention plan deletes anyway goes first, :func:`drivestage.pruning.pre_prune_victims`, never
a newest verified checkpoint), and the plan applied once every upload is verified
(:func:`apply_plan`); nothing in a Google Drive mount
(:func:`drivestage.lost_mounts.retention_held_back`)."""
from __future__ import annotations

import logging
from typing import Callable, Mapping, Optional, Sequence

from drivestage import pruning

from drivestage.localdir import LocalDirStore
from drivestage.lost_mounts import retention_held_back
from drivestage.pruning import Deletions, FolderView, pre_prune_victims, room_keeps
from drivestage.retention import SIDECAR, Decision, Plan, RetentionPolicy
from drivestage.sizes import format_size
from drivestage.local_tree import LocalFile
from drivestage.store import RemoteEntry, RemoteStore, quota_error

log = logging.getLogger(__name__)


def make_room(store: RemoteStore, needed: int, where: str, decision: Optional[Plan],
              folder: Optional[FolderView], policy: RetentionPolicy,
              use_trash: bool, into: Optional[RemoteEntry] = None,
              check: Optional[Callable[[], None]] = None
              ) -> tuple[list[Decision], list[Decision]]:
    """Room for ``needed`` more bytes before a push to ``where`` (the folder ``into``) sends
    one: what the policy deletes anyway goes first (:func:`pre_prune_victims`), or
    QuotaExceededError when even that is not enough. Returns what went, and what the store
    left alone (changed since the listing: the retention after the uploads does not try it
    again, nor warn twice). ``check``: the push's guard, before each removal request."""
    q = store.quota(into)
    if q.free is None or needed <= q.free:
        return [], []
    victims = pre_prune_victims(decision, folder, policy) \
        if decision is not None and folder is not None else []
    if victims and into is not None and isinstance(store, LocalDirStore) and \
            retention_held_back(store.describe(into)):
        # In a Google Drive mount, what goes here went before the new checkpoint was even
        # written: DriveFS sent that small deletion first, and a runtime that ended then
        # left Drive with neither (mount31). Said once; the quota then stops the push.
        victims = []
    freed = 0 if use_trash else sum(d.size for d in victims)
    if needed > q.free + freed:
        raise quota_error(needed, where, q)
    log.warning("not enough Drive space for %s (%s needed, %s free): pruning first",
                where, format_size(needed), format_size(q.free))
    # Those the store left alone (changed since the listing) are not reported as pruned, and
    # their sidecars stay (Deletions); the quota read again says whether there is room.
    deletes = Deletions(store, use_trash, check)
    # What it spares (the newest verified checkpoint of each run) is read with the first
    # checks: a listing that lags showed the newest one the user had just trashed, and every
    # other one went. One gone or changed: nothing goes. (Not all the plan keeps: one kept
    # only as its run's newest because its sidecar could not be read, another machine's
    # prune having just deleted both, would stop the push on the quota.)
    spared = room_keeps(folder, policy) if folder is not None else set()
    kept = [d for d in decision or () if d.id is not None and d.name in spared]
    done = deletes.many(victims, kept=kept)  # in batches, the files before their sidecars
    q = store.quota(into)
    if q.free is not None and needed > q.free:
        raise quota_error(needed, where, q)
    return done, [d for d in victims if d.kind != SIDECAR and d.name in deletes.left]


def apply_plan(store: RemoteStore, decision: Plan, folder: RemoteEntry, use_trash: bool,
               applied: set[str], twins: Mapping[str, list[RemoteEntry]],
               left: Sequence[Decision],
               repairs: Sequence[tuple[LocalFile, RemoteEntry, list[RemoteEntry]]],
               sent: Mapping[tuple[str, str], RemoteEntry],
               check: Optional[Callable[[], None]] = None) -> list[Decision]:
    """The plan's remote deletions in DEST's top ``folder`` (after every upload of the push
    was verified), with the copies of the same bytes of each file it deletes
    (:attr:`pruning.FolderView.twins`); ``applied``: ids deleted already, ``left``: those
    :func:`make_room` left alone. None into a Google Drive mount (:func:`_held_back`).
    ``check``: the push's guard, before each removal request. Returns the decisions
    applied."""
    if _held_back(store, decision, folder):
        return []
    # What the plan keeps is read first (a listing that lags showed a checkpoint the
    # user had just trashed: keep_last kept it and deleted every other one); a copy it
    # removed (an unchanged file's older copy, repaired) is read as the copy the repair
    # kept, and what it sent as the copy it sent.
    decision = pruning.kept_instead(decision, {e.id: kept for lf, kept, olds in repairs
                                               if not lf.folder_rel for e in olds})
    # (Not as listed: its old copies, gone by this push's hand.)
    decision = pruning.sent_instead(decision, {n: e for (f, n), e in sent.items() if not f})
    return pruning.apply(store, decision, folder, use_trash, applied, twins, left, confirm=True,
                         check=check)


def _held_back(store: RemoteStore, decision: Plan, folder: RemoteEntry) -> bool:
    """Whether the plan's deletions are held back: into a Google Drive mount, where no
    upload can be verified (said once; the room made before the uploads holds back
    there too: :func:`make_room`)."""
    return isinstance(store, LocalDirStore) and \
        any(not d.keep and d.id for d in decision) and \
        retention_held_back(store.describe(folder))
