"""The checkpoints ``push --delete`` spares though no sidecar is listed beside them
(:func:`drivestage.pruning.newest_verified_ids`).

Each checkpoint or autosave listed without a sidecar, written after the newest one with a
sidecar of some run (or with none listed), may be that run's newest verified: its sidecar
sent a moment ago and left out of a listing that lags (retain47: ``push --delete`` removed
the only verified checkpoint). None where no sidecar pairs with a checkpoint, here or on the
store: nothing there is ever verified.

Spared so with no bound, a checkpoint a crashed uploader left without its sidecar, newer than
every verified one, stayed through every ``--delete`` for good, one checkpoint's size of the
quota, while nothing newer was verified (pushgap47). No sidecar lags a day: one the store has
held :data:`~drivestage.orphans.MIN_AGE`, by its dates and by its first-seen mark
(:mod:`drivestage.first_seen`, written by the first pass that finds it old by its dates, as
for orphans and lone autosaves), is no longer spared. The newest verified pair is never one
of these (it has its sidecar).
"""
from __future__ import annotations

import logging
from typing import Iterable, Mapping, Optional, Sequence

from drivestage import first_seen, sidecar
from drivestage.orphans import MIN_AGE, _ago, arrived, waits
from drivestage.retention import AUTOSAVE, CHECKPOINT
from drivestage.retention_policy import RetentionPolicy
from drivestage.sidecar import Described
from drivestage.store import RemoteEntry

__all__ = ["AHEAD_S", "spared"]

#: How far ahead of the store's clock a verified checkpoint's modifiedDate may be and still
#: date it (clocks differ a little; :data:`drivestage.old_copies.AHEAD_S`, a layer above,
#: is the same bound for old copies).
AHEAD_S = 300.0

log = logging.getLogger("drivestage.pruning")


def spared(files: Mapping[str, Sequence[RemoteEntry]], described: Sequence[Described],
           policy: RetentionPolicy, local: Iterable[str], *, now: float = 0.0,
           seen: Optional[first_seen.Seen] = None) -> set[str]:
    """Ids of the checkpoints and autosaves of ``files`` (one folder's, by name) that may
    be the newest verified, their sidecar unlisted (see the module). ``described``: those
    listed with a sidecar; ``local``: the names a push sends into the folder; ``now`` (the
    earlier of :meth:`~drivestage.store.RemoteStore.clock`) and ``seen``
    (:func:`drivestage.first_seen.on`): one the store has held a day goes unspared (None:
    no marks kept, so every one is spared)."""
    if not sidecar.pairs(set(files) | set(local)):
        return set()
    since = min((max(_written(d, now) for d in described if d.sidecar.run == run)
                 for run in {d.sidecar.run for d in described}), default=None)
    paired = sidecar.pairs(files)
    out: set[str] = set()
    for name, entries in files.items():
        if name in paired or policy.kind_of(name) not in (CHECKPOINT, AUTOSAVE):
            continue
        for e in entries:
            # (by the later of its dates: a client may set modifiedDate back, at the upload
            # (rclone -M) or since (setModifiedDate), never createdDate once it exists;
            # by modifiedDate alone, a checkpoint sent a moment ago and dated back went at
            # the first --delete: pushlefts48)
            if since is not None and first_seen.dates(e) <= since:
                continue
            if _held_a_day(e, seen, now):
                continue
            out.add(e.id)
    return out


def _written(d: Described, now: float) -> float:
    """When the store took the verified checkpoint ``d`` as it is: its modifiedDate, but
    where that is ahead of the store's clock (``now``) by more than :data:`AHEAD_S` (a
    client's clock ahead, or a date set so), its createdDate, no later than ``now``: dated a
    year ahead, it made every checkpoint listed without a sidecar "written before" it, and
    ``push --delete`` spared none of them (pushlefts48)."""
    if not now or d.modified <= now + AHEAD_S:
        return d.modified
    return min(d.created or now, now)


def _held_a_day(entry: RemoteEntry, seen: Optional[first_seen.Seen], now: float) -> bool:
    """Whether the store has held ``entry`` :data:`MIN_AGE` by its dates and its first-seen
    mark (written now where it has none: it then waits a day more)."""
    if seen is None or entry.created <= 0 or now - arrived(entry) < MIN_AGE:
        return False
    wait, age = waits(entry, seen, now)
    if wait is not None:
        return False
    log.info("%s: no sidecar beside it on the store, which has held it %s: no longer kept "
             "as one whose sidecar may be on its way", entry.name, _ago(age))
    return True
