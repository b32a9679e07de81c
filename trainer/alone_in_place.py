"""A pair sent alone where this account removes nothing: the older pair updated in place.

:meth:`trainer.drive.DriveFolder.send_alone` (a stop's save written outside a slow or hung
run folder, one sent from memory, a kept state) sends its pair beside the older pair of
those names and removes the older once the new one is verified (stopleft31). Where this
account may neither delete nor trash (a shared drive's Contributor) Drive refused that
removal: one more file of each name at every such send, for good, counted against the
drive's storage and carried by every later listing (stopcopy36). There the older pair, of
this run and not further on, is updated in place instead, as a push updates a checkpoint
(:mod:`drivestage.sidecar_phases`): its sidecar first vouches for the copy there and the
one coming, then the checkpoint is updated, then the sidecar of the new bytes alone goes.
Killed anywhere, Drive holds one file of each name and a checkpoint its sidecar vouches
for. An account that may remove (an Owner, a Manager, a Content manager) sends as before.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from drivestage import sidecar as sidecars
from drivestage import sidecar_phases
from drivestage.errors import NotFoundError, RemoteChangedError
from drivestage.localfs import file_md5
from drivestage.state import Md5Cache
from drivestage.store import RemoteEntry, RemoteStore


def read_through(path: str) -> bool:
    """Whether an upload of ``path`` reads through the link it is: a state kept in memory,
    read by its ``/proc/self/fd/N`` (:mod:`trainer.memory_send`). Else a link at the name is
    refused, never followed (``RemoteStore.upload``'s ``follow``: pushfollow46)."""
    return path.startswith("/proc/self/fd/")


@dataclass(frozen=True)
class InPlace:
    """The older pair a send updates in place: the checkpoint's copy and its sidecar's."""

    checkpoint: RemoteEntry
    sidecar: RemoteEntry


def plan(store: RemoteStore, listing: Sequence[RemoteEntry], names: Sequence[str],
         side_path: str, own: Callable[[], bool]) -> Optional[InPlace]:
    """The older pair of ``names`` (a checkpoint's and its sidecar's) in ``listing`` to update
    in place: where Drive holds copies of them this account may not remove, in a run folder
    (``own``), their newest sidecar naming this run (``side_path``'s, the local sidecar) and
    not further on, saved later. None otherwise: nothing to replace, or the account removes
    (the new pair goes beside, the older removed), or a doubt (the older pair stays, as
    :meth:`trainer.drive.DriveFolder._replace_older` leaves it). Reads the sidecar there."""
    olds = [e for e in listing if e.name == names[0] and sidecars.has_bytes(e)]
    sides = [e for e in listing if e.name == names[1] and sidecars.has_bytes(e)]
    if not olds or not sides or all(e.removable for e in olds + sides):
        return None
    mine = sidecars.read(side_path)
    if mine is None or mine.run is None or not own():
        return None
    side = max(sides, key=lambda e: (e.modified, e.id))   # (the one a reader takes)
    try:
        data = sidecars.fetch(store, side)
    except (NotFoundError, RemoteChangedError):
        return None   # (changed since the listing: another process; the next send looks)
    said = sidecars.no_later_than(sidecars.parse(data, side.name) if data else None,
                                 side.modified)
    if said is None:
        return None
    target = sidecars.vouched(olds, said)
    said = said.speaking_for(target.md5)
    if said.run != mine.run or \
            ((said.saved or 0.0) > (mine.saved or 0.0) and said.progress > mine.progress):
        return None   # another run's (or no run's), or further on in this one: kept
    return InPlace(target, side)


def send(store: RemoteStore, folder: RemoteEntry, paths: Sequence[str], names: Sequence[str],
         older: InPlace, cache: Md5Cache, guard: Callable[[], None] = lambda: None) -> None:
    """``paths`` (a checkpoint, its sidecar) sent as ``names`` over ``older`` in place, each
    verified: the sidecar there rewritten first to vouch for the copy there and the one
    coming (where it vouches for that copy: :func:`drivestage.sidecar_phases.vouch_coming`),
    then the checkpoint (not where Drive holds its bytes already: a send killed after it),
    then the sidecar (not where it is there already). Raises what the store raises; the pair
    there stays verified. ``guard`` (the run's lease: :meth:`trainer.lease.RunLease.guard`)
    before each of those writes, each a commit: where it raises, nothing more is written."""
    side = older.sidecar
    if (older.checkpoint.md5 or "").lower() != file_md5(paths[0]):
        guard()
        first = sidecar_phases.vouch_coming(
            store, ("", names[0]), paths[0], older.checkpoint, folder,
            {names[1]: [side]}, {names[1]: paths[1]}, file_md5)
        side = first or side
        guard()
        size, kept = os.path.getsize(paths[0]), [0]

        def between(n: int) -> None:   # (its last chunk commits it: guarded before that)
            kept[0] += n
            if kept[0] < size:
                guard()
        store.upload(paths[0], folder, names[0], replace=older.checkpoint, md5_cache=cache,
                     progress=between, follow=read_through(paths[0]))
    if (side.md5 or "").lower() != file_md5(paths[1]):   # (else sent already)
        guard()
        store.upload(paths[1], folder, names[1], replace=side, md5_cache=cache,
                     follow=read_through(paths[1]))
