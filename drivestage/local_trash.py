"""Where a directory store's trash lies.

A directory store is rooted at the nearest existing folder *above* the DEST it was opened
for (:func:`drivestage.remote.open_store`: a push can then make DEST and its parents), so a
trash in the store's root put ``push ./exp /nas/exp --delete`` and ``prune /nas/exp``'s
removals in ``/nas/.trash/exp/…``, and ``push ./out ~/backup --delete``'s in
``~/.trash/backup/…``: written outside the folder the user named (attacksync34). A store
opened for a DEST keeps its trash inside it, in :data:`NAME`, a name drivestage reserves
(:func:`drivestage.paths.is_reserved`): no push sends it, no pull takes it, ``--delete``
leaves it, and the store's listings leave it out. A store made without a DEST (the store
contract's, a caller's own) keeps the root's :data:`OLD` trash.
"""
from __future__ import annotations

import logging
import os
from typing import Optional

log = logging.getLogger(__name__)

#: The trash folder inside a DEST.
NAME = ".drivestage-trash"
#: The trash folder in a store's root, for a store opened without a DEST.
OLD = ".trash"


def folder(within: Optional[str]) -> str:
    """The trash folder, root-relative: in ``within`` (the DEST, root-relative; "" the root
    itself) or, without one, the root's :data:`OLD`."""
    if within is None:
        return OLD
    return f"{within}/{NAME}" if within else NAME


def place(rel: str, within: Optional[str]) -> Optional[str]:
    """Where ``rel`` (root-relative) goes when trashed, root-relative: the same path below
    the trash of ``within``'s DEST when ``rel`` lies in it, else below the root's
    :data:`OLD`; None for ``rel`` already in a trash (deleted for good)."""
    if within is not None and (not within or rel.startswith(within + "/")):
        inner = rel[len(within) + 1:] if within else rel
        return None if inner.split("/", 1)[0] == NAME else f"{folder(within)}/{inner}"
    return None if rel.split("/", 1)[0] == OLD else f"{OLD}/{rel}"


def hidden(parent_rel: str, name: str) -> bool:
    """True for a child a listing leaves out: a trash (the root's, or any DEST's)."""
    return name == NAME or (not parent_rel and name == OLD)


def move(full: str, dest: str) -> None:
    """Move ``full`` to ``dest`` in a trash (``dest.~N~``, the first N free, when taken)."""
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    candidate, n = dest, 0
    while os.path.lexists(candidate):
        n += 1
        candidate = f"{dest}.~{n}~"
    os.rename(full, candidate)
    log.info("moved %s to %s", full, candidate)
