"""A push from a machine that fell behind never replaces a further-on checkpoint of its run.

Machine B went on with a run and pushed ``last.pt`` at epoch 5; machine A (a spot VM whose
disk came back, a Colab runtime reconnected) still holds ``last.pt`` at epoch 4 of the same
run. Without this rule a plain push from A replaced B's checkpoint and its sidecar with older
ones. The store's copy is *further on* only when all of these hold, so that a doubt always
means "replace, as before":

* both sidecars name the same run, and each vouches for its own checkpoint's bytes;
* the store's claims more progress (``Sidecar.progress``);
* and a later save (``saved``, format 3, on both): the store's clamped to when its sidecar
  reached the store (:func:`drivestage.sidecar.no_later_than`). A run resumed on purpose from
  an older checkpoint saves later, and replaces; a sidecar that only claims more progress
  (damaged, or a liar) does not block a push.

The checkpoint and its sidecar then stay as they are on the store, and the push says so.

With ``other_runs`` (the trainer's push), a checkpoint of **another run** stays too: both
sidecars name a run, not the same one, and each vouches for its own checkpoint's bytes. Two
trainers started at once in an empty folder both pass the trainer's start-up check
(:mod:`trainer.resume`) and write the same names (``epoch_001.pt``); the second one's push
must not delete the first one's checkpoints (``PushResult.other_run`` names them).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

from drivestage import sidecar
from drivestage.errors import DriveStageError, RemoteChangedError
from drivestage.local_tree import LocalFile
from drivestage.sidecar import Sidecar
from drivestage.state import Md5Cache
from drivestage.store import RemoteEntry, RemoteStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Kept:
    """Why the store's checkpoint stays: how far it and the local one got (``"epoch 5"``,
    ``"epoch 4"``), and ``run`` when it is another run's (else it is further on in ours)."""

    theirs: str
    mine: str
    run: Optional[str] = None


def further_on(store: RemoteStore, cache: Md5Cache, lf: LocalFile, side_lf: LocalFile,
               theirs: RemoteEntry, their_side: RemoteEntry, *,
               other_runs: bool = False) -> Optional[Kept]:
    """Whether the store's checkpoint ``theirs`` (with its sidecar ``their_side``) must stay
    instead of being replaced by the local one ``lf`` (with its sidecar ``side_lf``), a
    push's walked files: it is further on in the same run, or (``other_runs``) another run's.
    None when neither, or when that cannot be told (then the push replaces it, as it always
    did). At most one small read of the store."""
    # (a push's walked files: never through a link, read where the walk found them)
    mine = sidecar.read(side_lf.path, follow=False, real=side_lf.real)
    if mine is None or mine.run is None or mine.md5 is None or \
            (mine.saved is None and not other_runs):
        return None
    if their_side.size > sidecar.MAX_BYTES or theirs.md5 is None:
        return None
    lagged = False
    try:
        if cache.md5(lf.path, follow=False, real=lf.real) != mine.md5:
            return None  # the local sidecar does not describe these bytes
        try:
            data = sidecar.fetch(store, their_side)
        except RemoteChangedError:
            # Other bytes than listed: Drive's listing lags behind another machine that
            # replaced the pair a moment ago. The sidecar as it is now says where the run
            # is on Drive (it was sent once its checkpoint was verified there, a copy this
            # listing may not show yet); taken for "cannot tell", the push sent this pair
            # over it and a later repair removed the further-on checkpoint (attackpush26).
            their_side, lagged = store.stat(their_side), True
            data = sidecar.fetch(store, their_side)
    except (OSError, DriveStageError) as exc:
        log.debug("cannot compare %s with %s: %s", lf.path, theirs.name, exc)
        return None
    said = sidecar.parse(data, their_side.name) if data is not None else None
    other = sidecar.no_later_than(said and said.speaking_for(theirs.md5), their_side.modified)
    if other is None or other.run is None or (other.md5 != theirs.md5.lower() and not lagged):
        return None
    if other.run != mine.run:
        return Kept(_label(other), _label(mine), other.run) if other_runs else None
    if other.saved is None or mine.saved is None:
        return None
    if other.progress > mine.progress and other.saved > mine.saved:
        return Kept(_label(other), _label(mine))
    return None


def _label(side: Sidecar) -> str:
    epoch, into = side.progress
    return f"epoch {epoch}" + (f", {into} steps into the next" if into else "")
