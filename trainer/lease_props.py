"""The run's lease claim where Drive's storage is full: a PUBLIC custom property of the run
folder (:mod:`trainer.lease` holds the lease; room41).

A claim is a file of a few hundred bytes, and a full Drive refuses its create (403
storageQuotaExceeded): the lease stayed not taken, so no push removed anything, and the room
``drive.keep_last`` makes is removals: the trainer could never make its own room
(attackguard40). A custom property takes no storage, so where the create is refused for
storage, the claim is written as the property ``trainer-lease-<token>`` of ``drive.logs``
itself (one ``properties.insert``; PUBLIC: every OAuth client sees it, a laptop's and
Colab's). Its value holds what a claim file's JSON does, short (Drive's 124 bytes for key and
value): the generation, when it was written and first made (Drive's clock as this machine
hears it, :func:`drivestage.drive.server_clock.now`: a property has no dates of its own), the
pid, this boot's pid namespace, released or not, its lease's ``stale_s`` and the host (cut
to fit).

What keeps two trainers from both holding it (:meth:`trainer.lease.RunLease.acquire`):

- It is written only where the folder's listing shows no claim file at all (live or stale):
  a trainer that holds a claim file (or held one, asleep now) never reads the folder's
  properties in its checks, so none may be written beside its file.
- A claimant whose claim or rival is a property holds only where, after its write and the
  settle, no rival of its generation or later is there: no order by dates decides between
  them (Drive dates no property; this machine's reading of Drive's clock is good to a second
  or so). Two that write at the same moment both stand back; each tries again later.
- Every trainer that starts, or tries while its lease is not taken, reads the folder's
  properties beside the listing (one ``files.get`` more); a holder by property reads them
  at each check (a take-over of its lease is one).
"""
from __future__ import annotations

import os
import socket
from typing import Any, Callable, Optional

from drivestage import run_claims
from drivestage.store import RemoteEntry
from drivestage.temps import namespace_tag
from trainer.lease_claims import PREFIX, Claim

#: The ``kind`` of the entry a property claim stands in (:class:`Claim`'s ``entry``).
KIND = run_claims.PROPERTY_KIND
MAX_BYTES = 124   # (Drive's, for a property's key and value together)


def usable(store: Any) -> bool:
    """Whether ``store`` keeps custom properties on a folder (Drive; not a directory, nor
    a Drive mount)."""
    from drivestage.drive.store_folders import FolderMaking

    return isinstance(store, FolderMaking)


def key_of(token: str) -> str:
    return f"{PREFIX}{token}"


def claims(store: Any, folder: RemoteEntry) -> list[Claim]:
    """The property claims on ``folder`` as read now (one ``files.get``); the value's format
    is :func:`drivestage.run_claims.property_claim`'s (``dedupe`` reads them too)."""
    out = []
    for key, value in store.public_properties(folder).items():
        c = run_claims.property_claim(value) if key.startswith(PREFIX) else None
        if c is not None:   # (else not a claim: no one's)
            out.append(Claim(run_claims.property_entry(folder.id, key, c.written, c.made),
                             key[len(PREFIX):], c.host, c.pid, c.machine, c.generation,
                             c.released, on_folder=True))
    return out


def files_beside(mine: Optional[RemoteEntry], claims: list[Claim], token: str,
                 gone: Callable[[Claim], bool]) -> list[Claim]:
    """The live claim files of others beside this trainer's property claim ``mine``: none
    was listed when it was written, so each is a claimant that reads no property (a trainer
    from before room41) and holds the lease in its own eyes: this one yields, whatever the
    order (both pushed into one folder: attacklease41). None where ``mine`` is a file."""
    if not is_property(mine):
        return []
    return [c for c in claims if not c.on_folder and c.owner != token and not gone(c)]


def write(store: Any, folder: RemoteEntry, token: str, generation: int, written: float,
          made: float, released: bool = False, stale_s: float = run_claims.OLDEST_STALE_S
          ) -> RemoteEntry:
    """Write this trainer's property claim on ``folder`` (made, or renewed in place), with
    the ``stale_s`` of its lease (``dedupe`` judges it by that: leasefull42); Drive's
    refusal raises (a Drive that refuses a full account's property writes too)."""
    key = key_of(token)
    written, made = round(written, 1), round(made, 1)   # (as the value says them: as read)
    claim = run_claims.PropertyClaim(generation, written, made, os.getpid(), namespace_tag(),
                                     released, socket.gethostname(), stale_s)
    store.set_public_property(folder, key, run_claims.property_value(
        claim, MAX_BYTES - len(key.encode())))
    return run_claims.property_entry(folder.id, key, written, made)


def remove(store: Any, entry: RemoteEntry) -> None:
    """Remove the property claim ``entry`` stands in (none there: fine)."""
    folder = RemoteEntry(entry.parent_id or "", "", True)
    store.set_public_property(folder, entry.name, None)


def is_property(entry: Optional[RemoteEntry]) -> bool:
    return entry is not None and entry.kind == KIND
