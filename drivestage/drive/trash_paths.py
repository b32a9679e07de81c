"""Where a path that led nowhere goes through Drive's trash (:func:`trashed_step`), for the
line of a pull that failed (``RemoteStore.in_trash``): every listing asks ``trashed=false``,
so such a path is "not found", and a user who trashed a folder by mistake looks for a typo.

First the usual case, in one request: the first missing step sits in the trash where the
path left off. Then the one it misses (fidelity41): a folder on the way trashed and made anew
since (a push makes its DEST again), so the path's live folders hold nothing of that name
and the trashed one holds the rest. That walk follows every item of each step's name, live
or trashed, from the top, at most :data:`MAX_ROUTES` of them a step: one request each,
asked only after a pull failed.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence

from drivestage.drive.resources import FOLDER_MIME, SHORTCUT_MIME, is_trashed

#: Same-named items followed at each step of the walk (a bound in requests).
MAX_ROUTES = 4

#: ``named(folder_id, name, trashed_only)``: the items of exactly that title in the folder
#: (all pages), live and trashed, or only trashed.
Named = Callable[[str, str, bool], Sequence[Mapping[str, Any]]]


def trashed_step(names: tuple[str, ...], known: Mapping[tuple[str, ...], str],
                 named: Named) -> Optional[int]:
    """How many steps of ``names`` lead to the first one in the trash on a way to the last
    (``known``: the live folders the failed resolve found, by their names from the top);
    None where no such way is found."""
    at = 0
    while at < len(names) and names[:at + 1] in known:
        at += 1
    parent = known.get(names[:at])
    if at == len(names) or parent is None:
        return None
    first = named(parent, names[at], True)
    if at < len(names) - 1:
        # A step the path goes on from is a folder (or a shortcut to one): a file of that
        # name in the trash, restored, leads nowhere either (attackpush41).
        first = [it for it in first if it.get("mimeType") in (FOLDER_MIME, SHORTCUT_MIME)]
    if first:
        return at + 1
    top = known.get(())
    if top is None:
        return None
    routes: list[tuple[str, Optional[int]]] = [(top, None)]
    for i, name in enumerate(names):
        found: list[tuple[str, Optional[int]]] = []
        for folder_id, trashed_at in routes[:MAX_ROUTES]:
            for item in named(folder_id, name, False):
                if i < len(names) - 1 and item.get("mimeType") != FOLDER_MIME:
                    continue
                step = trashed_at if trashed_at is not None else \
                    (i + 1 if is_trashed(item) else None)
                found.append((str(item.get("id")), step))
        if not found:
            return None
        routes = sorted(found, key=lambda r: r[1] is None)   # (the trashed ways first)
    return next((step for _, step in routes if step is not None), None)
