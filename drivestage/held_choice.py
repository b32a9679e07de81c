"""Which copy of a name a folder pull takes where a push into a local DEST kept the old copy
of a checkpoint aside (:func:`one_each`; the copies: :mod:`drivestage.local_held`).

A push replacing ``last.pt`` there renames the old copy to ``.drivestage-held.<random>.
last.pt``, renames the new one into place, then the sidecar, and only then removes the old
copy; a SIGKILL between leaves both. Until the new sidecar is in, it vouches for the old
copy: the pull left that copy out and took the new, unvouched ``last.pt`` with the old
sidecar (and after a kill right after the old copy was set aside, the sidecar alone), and a
resume from what it pulled found no checkpoint (pair36). Readers of the store take the copy
the sidecar vouches for (:func:`drivestage.sidecar.vouched`); so does the pull now, under
the checkpoint's own name. Only where a name has a copy aside is a sidecar read: other
pulls cost nothing more.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Optional, Sequence

from drivestage import sidecar
from drivestage.errors import DriveStageError
from drivestage.local_held import LocalHeld, stands_for
from drivestage.paths import StorePath
from drivestage.store import RemoteEntry, RemoteStore

log = logging.getLogger(__name__)


def aside_for(entry: RemoteEntry) -> Optional[str]:
    """The name a file kept aside stands for (by its name, or its id's last part: a local
    store lists it under the name already); None for any other item."""
    if entry.is_dir:
        return None
    return stands_for(entry.name) or stands_for(entry.id.rsplit("/", 1)[-1])


def one_each(store: RemoteStore, children: Sequence[RemoteEntry]) -> list[RemoteEntry]:
    """``children`` (one folder's listing) with each name's copies kept aside and its file
    replaced by the one copy to take, named as the file: the copy its sidecar vouches for
    (by md5), else the file at the name, else the newest copy aside. A copy aside of a name
    a folder has is left out (a folder keeps its name)."""
    standing = {id(c): aside_for(c) for c in children}
    if not any(standing.values()):
        return list(children)
    folders = {c.name for c in children if c.is_dir}
    groups: dict[str, list[RemoteEntry]] = {}
    out: list[RemoteEntry] = []
    for child in children:
        name = standing[id(child)]
        if name is None:
            out.append(child)
            if not child.is_dir:
                groups.setdefault(child.name, [])
        elif name not in folders:
            groups.setdefault(name, []).append(child)
    names = sidecar.pairs([c.name for c in out if sidecar.has_bytes(c)] + list(groups))
    for name, copies in groups.items():
        if not copies:
            continue   # (no copy aside of it)
        at_name = [c for c in out if c.name == name and not c.is_dir]
        if len(at_name) > 1:
            continue   # (same-named files on Drive: the pull refuses them, and says so)
        chosen = _choose(store, at_name, copies, [c for c in out if c.name == names.get(name)])
        if chosen not in at_name:
            log.info("%s: taking the copy kept aside that its sidecar vouches for (%s): a push "
                     "replacing it there is under way, or was killed", name, chosen.id)
        out = [c for c in out if c not in at_name]
        out.append(dataclasses.replace(chosen, name=name))
    return out


def _choose(store: RemoteStore, at_name: list[RemoteEntry], aside: list[RemoteEntry],
            sides: list[RemoteEntry]) -> RemoteEntry:
    said = _read(store, sides)
    every = at_name + aside
    if said is not None and said.md5 is not None:
        named = [c for c in every if (c.md5 or "").lower() == said.md5]
        if named:
            return sidecar.vouched(named, said)
    return at_name[0] if at_name else sidecar.vouched(aside, None)


def _read(store: RemoteStore, sides: list[RemoteEntry]) -> Optional[sidecar.Sidecar]:
    """What the newest of the sidecar's copies ``sides`` says (None: none, or unreadable)."""
    if not sides:
        return None
    entry = sidecar.vouched(sides, None)
    try:
        data = sidecar.fetch(store, entry)
    except DriveStageError:   # (removed since the listing, the push's next step; unreadable:
        return None           # the file at the name, as before)
    return sidecar.parse(data, entry.name) if data is not None else None


def file_at(store: RemoteStore, path: StorePath,
            entry: Optional[RemoteEntry]) -> Optional[RemoteEntry]:
    """What a pull of the one file ``path`` takes: in a directory store where its name has
    copies kept aside and a sidecar, the copy the sidecar vouches for (as :func:`one_each`);
    else ``entry``, the file at the path (None: there is none). ``pull /nas/run/last.pt`` took
    the new, unvouched bytes (after a kill right after the old copy was set aside: "no such
    file"), and ``last.json`` beside them vouched for the old ones (pair36)."""
    if not isinstance(store, LocalHeld) or (entry is not None and entry.is_dir):
        return entry
    alike = store.alike(path)
    if not alike:
        return entry
    name = alike[0].name   # (a copy aside is listed under the name it stands for)
    # (``entry`` may be one of ``alike``: a copy aside a stamp named, found by its id)
    every = {c.id: c for c in ([entry] if entry is not None else []) + alike}
    picked = [c for c in one_each(store, list(every.values()))
              if c.name == name and not c.is_dir]
    return picked[0] if picked else entry
