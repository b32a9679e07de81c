"""Room on the store for what a push is about to send (:mod:`drivestage.upload_tree`): the
quota asked once, and when it is short, what the retention plan deletes anyway goes first
(:func:`drivestage.pruning.pre_prune_victims`), never a newest verified checkpoint."""
from __future__ import annotations

import logging
from typing import Optional

from drivestage.pruning import Deletions, FolderView, pre_prune_victims
from drivestage.retention import SIDECAR, Decision, Plan, RetentionPolicy
from drivestage.sizes import format_size
from drivestage.store import RemoteStore, quota_error

log = logging.getLogger(__name__)


def make_room(store: RemoteStore, needed: int, where: str, decision: Optional[Plan],
              folder: Optional[FolderView], policy: RetentionPolicy,
              use_trash: bool) -> tuple[list[Decision], list[Decision]]:
    """Room for ``needed`` more bytes before a push to ``where`` sends one: what the policy
    deletes anyway goes first (:func:`pre_prune_victims`), or QuotaExceededError when even
    that is not enough. Returns what went, and what the store left alone (changed since the
    listing: the retention after the uploads does not try it again, nor warn twice)."""
    q = store.quota()
    if q.free is None or needed <= q.free:
        return [], []
    victims = pre_prune_victims(decision, folder, policy) \
        if decision is not None and folder is not None else []
    freed = 0 if use_trash else sum(d.size for d in victims)
    if needed > q.free + freed:
        raise quota_error(needed, where, q)
    log.warning("not enough Drive space for %s (%s needed, %s free): pruning first",
                where, format_size(needed), format_size(q.free))
    # Those the store left alone (changed since the listing) are not reported as pruned, and
    # their sidecars stay (Deletions); the quota read again says whether there is room.
    deletes = Deletions(store, use_trash)
    done = deletes.many(victims)  # in batches, the files before their sidecars
    q = store.quota()
    if q.free is not None and needed > q.free:
        raise quota_error(needed, where, q)
    return done, [d for d in victims if d.kind != SIDECAR and d.name in deletes.left]
