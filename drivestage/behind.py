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
"""
from __future__ import annotations

import logging
from typing import Optional

from drivestage import sidecar
from drivestage.errors import DriveStageError
from drivestage.sidecar import Sidecar
from drivestage.state import Md5Cache
from drivestage.store import RemoteEntry, RemoteStore

log = logging.getLogger(__name__)


def further_on(store: RemoteStore, cache: Md5Cache, path: str, side_path: str,
               theirs: RemoteEntry, their_side: RemoteEntry) -> Optional[tuple[str, str]]:
    """How far the store's checkpoint ``theirs`` (with its sidecar ``their_side``) and the
    local one at ``path`` (with its sidecar at ``side_path``) got, e.g. ``("epoch 5",
    "epoch 4")``, when the store's is further on; None when it is not, or when that cannot be
    told (then the push replaces it, as it always did). At most one small read of the store."""
    mine = sidecar.read(side_path)
    if mine is None or mine.run is None or mine.saved is None or mine.md5 is None:
        return None
    if their_side.size > sidecar.MAX_BYTES or theirs.md5 is None:
        return None
    try:
        if cache.md5(path) != mine.md5:
            return None  # the local sidecar does not describe these bytes
        data = sidecar.fetch(store, their_side)
    except (OSError, DriveStageError) as exc:
        log.debug("cannot compare %s with %s: %s", path, theirs.name, exc)
        return None
    other = sidecar.no_later_than(sidecar.parse(data) if data is not None else None,
                                  their_side.modified)
    if other is None or other.run != mine.run or other.saved is None or \
            other.md5 != theirs.md5.lower():
        return None
    if other.progress > mine.progress and other.saved > mine.saved:
        return _label(other), _label(mine)
    return None


def _label(side: Sidecar) -> str:
    epoch, into = side.progress
    return f"epoch {epoch}" + (f", {into} steps into the next" if into else "")
