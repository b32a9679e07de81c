"""The latest clock this process knows of: this machine's, or a store's where its answers say
it runs ahead (Drive's, as the ``Date`` of its answers says it:
:mod:`drivestage.drive.server_clock` tells it here once imported).

What "in the future" is reads it (:data:`drivestage.sidecar.FUTURE_SLACK_S`): by this
machine's clock alone, one running more than a day behind read the save time of every
checkpoint a machine with the right clock wrote as in the future, so as none, and retention
there lost its "saved last" rule (clock49). Below the store layers, which may not import
:mod:`drivestage.drive`: the store's clock is told, not asked for.
"""
from __future__ import annotations

import time
from typing import Callable, Optional

__all__ = ["latest", "told_by"]

#: The store's clock as last heard (None: none told: a process that never spoke to Drive).
_store: Optional[Callable[[], float]] = None


def latest() -> float:
    """The later of this machine's clock and the store's as heard (this machine's where no
    store's clock was told)."""
    store = _store
    local = time.time()
    return local if store is None else max(local, store())


def told_by(clock: Callable[[], float]) -> None:
    """From now on, ``clock`` gives the store's clock as heard (server_clock: the later of its
    span, this machine's where none was heard)."""
    global _store
    _store = clock
