"""A checkpoint updated in place, its sidecar in two phases: a verified pair at every step.

A push replaces a changed checkpoint by a new file beside the old one, and deletes the old
one once its sidecar vouches for the new (:mod:`drivestage.upload_tree`). Where this account
may neither delete nor trash (a shared drive's Contributor) it updates the checkpoint in
place instead, then its sidecar in place: between the two (for good after a kill there) the
name held the new bytes beside a sidecar naming the old ones, and a resume from Drive found no
verified checkpoint at all (contrib36). So the sidecar is written twice:

1. before the checkpoint, the sidecar on the store is rewritten to vouch for the copy there
   (its description as it was) **and** for the one coming (the local sidecar's, under
   ``coming``: :attr:`drivestage.sidecar.Sidecar.coming`);
2. the checkpoint is updated in place;
3. the local sidecar goes as ever, vouching for the new copy alone.

Killed anywhere, the store holds a checkpoint its sidecar vouches for, with the description of
those very bytes (:meth:`~drivestage.sidecar.Sidecar.speaking_for`); an older drivestage,
which does not know ``coming``, reads the first write as the sidecar of the old bytes, and
takes the new ones for unverified until the third, as it did. Drive's revisions would keep
the old bytes too, but are purged (30 days, 100 revisions), not kept by an update made with
``newRevision=false``, count against the drive's storage, and every reader would need a
download path of its own; this needs none.

Only for a checkpoint whose sidecar on the store vouches for the copy there (otherwise no
verified pair is there to keep) and whose local sidecar vouches for the local bytes about to
go (otherwise nothing describes them; that sidecar is left for the next push anyway:
:mod:`drivestage.sidecar_copy`). One small read and one small update more per checkpoint
updated in place; none for a new file beside the old (an Owner's, a Content manager's).
"""
from __future__ import annotations

import dataclasses
import logging
from functools import partial
from typing import Callable, Mapping, Optional, Protocol

from drivestage import sidecar, sidecar_copy
from drivestage.errors import RemoteChangedError
from drivestage.old_copies import Listings, OldCopies
from drivestage.special_files import walked_md5
from drivestage.state import Md5Cache
from drivestage.store import ProgressFn, RemoteEntry, RemoteStore

log = logging.getLogger(__name__)

#: (folder relative to DEST, name)
Key = tuple[str, str]


class Push(Protocol):
    """What of a push (:class:`drivestage.push_job.PushJob`) step 1 reads."""

    store: RemoteStore
    copies: OldCopies
    listing: Listings
    remote_folder: dict[str, RemoteEntry]
    cache: Md5Cache
    chunk_size: Optional[int]


def first(push: Push, key: Key, target: Optional[RemoteEntry]) -> None:
    """Step 1 above for the file ``key`` of ``push`` about to be written over ``target`` in
    place, where it is a checkpoint with local sidecars; nothing for any other file (nor for
    a new file beside the old: ``target`` None). Also before a checkpoint is sent again in
    place (its loop saved it again while the push ran: :mod:`drivestage.old_copies`)."""
    mine = push.copies.sides_of.get(key)
    if target is None or not mine or sidecar.is_sidecar(key[1]):
        return
    vouch_coming(push.store, key, push.copies.local[key], target, push.remote_folder[key[0]],
                 push.listing[key[0]], {n: push.copies.local[(f, n)] for f, n in mine},
                 # (a link or FIFO planted since the walk: one line, never read through)
                 partial(walked_md5, push.cache, real=push.copies.real.get(
                     push.copies.local[key], "")),
                 chunk_size=push.chunk_size, follow=False, reals=push.copies.real)


def vouch_coming(store: RemoteStore, key: Key, local_path: str, target: RemoteEntry,
                 folder: RemoteEntry, listed: Mapping[str, list[RemoteEntry]],
                 sides: Mapping[str, str], md5_of: Callable[[str], str], *,
                 chunk_size: Optional[int] = None, progress: Optional[ProgressFn] = None,
                 follow: bool = True, reals: Mapping[str, str] = {}) -> Optional[RemoteEntry]:
    """Step 1 above, for the checkpoint ``key`` (local file ``local_path``) about to be
    written over ``target`` in place. ``listed``: its folder's listing (name -> copies);
    ``sides``: its local sidecars (name -> path; read through a link only where ``follow``:
    not a push's walked files); ``reals``: a push's, path -> its walk's ``LocalFile.real``,
    each read only there. Returns the sidecar as rewritten, or None when nothing had to be
    (see the module doc). Raises what the store raises: the
    checkpoint is then not sent, and the store keeps its pair."""
    # The sidecar readers take for it on the store, in either form: 0.1.0's ``last.pt.json``
    # there while the run now writes ``last.json`` (a trainer upgraded) is the one that must
    # vouch for both meanwhile (attacksync36); the local one of that name, else its other form.
    there_names = [n for n, es in listed.items() if any(sidecar.has_bytes(e) for e in es)]
    name = sidecar.pairs([*there_names, key[1]]).get(key[1])
    if name is None or not sides:
        return None
    path = sides.get(name) or sides[sorted(sides)[0]]
    copies = [e for e in listed.get(name, []) if sidecar.has_bytes(e)]
    if not copies:
        return None
    there = max(copies, key=lambda e: (e.modified, e.id))
    try:
        data = sidecar.fetch(store, there)
    except RemoteChangedError:   # (rewritten since listed: by this very step, for a
        there = store.stat(there)   # checkpoint sent again)
        data = sidecar.fetch(store, there)
    said = sidecar.parse(data, there.name) if data is not None else None
    if said is None or said.md5 is None or not said.vouches_for(target.md5 or ""):
        return None   # no verified pair there: nothing to keep
    coming = sidecar.read(path, follow=follow, real=reals.get(path, ""))
    if coming is None or coming.md5 is None or coming.md5 != md5_of(local_path):
        return None
    now = dataclasses.replace(said.speaking_for(target.md5),
                              coming=dataclasses.replace(coming, coming=None))
    with sidecar_copy.private(path, now.to_bytes()) as copy:
        got = store.upload(copy, folder, name, replace=there, chunk_size=chunk_size,
                           progress=progress, follow=True)   # (ours: in memory, a /proc link)
    log.info("%s: its sidecar vouches for the copy there and the one coming "
             "(updated in place next)", "/".join(n for n in key if n))
    return got
