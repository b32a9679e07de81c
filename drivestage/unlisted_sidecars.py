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

__all__ = ["spared"]

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
    since = min((max(d.modified for d in described if d.sidecar.run == run)
                 for run in {d.sidecar.run for d in described}), default=None)
    paired = sidecar.pairs(files)
    out: set[str] = set()
    for name, entries in files.items():
        if name in paired or policy.kind_of(name) not in (CHECKPOINT, AUTOSAVE):
            continue
        for e in entries:
            if since is not None and e.modified <= since:
                continue
            if _held_a_day(e, seen, now):
                continue
            out.add(e.id)
    return out


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
