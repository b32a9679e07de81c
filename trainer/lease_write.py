"""The run's lease claim written, renewed and removed on Drive (:mod:`trainer.lease` holds
the lease; these are its writes). Split from :mod:`trainer.lease` (its 500-line cap).

A claim file is written in place at each renewal (its ``modifiedDate`` is the renewal's
date), then the run folder's arbiter is swapped (:func:`trainer.lease_cas.renew`): the claim
file first (see :mod:`trainer.lease_cas`). A Drive whose storage is full takes the claim as
a property of the folder (:mod:`trainer.lease_props`)."""
from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import time
from typing import TYPE_CHECKING, Optional

from drivestage.drive import server_clock
from drivestage.errors import DriveStageError, NotFoundError, QuotaExceededError
from drivestage.store import RemoteEntry
from drivestage.temps import namespace_tag
from trainer import lease_cas, lease_end, lease_props
from trainer.lease_claims import Claim, boot_clock

if TYPE_CHECKING:
    from trainer.lease import RunLease

logger = logging.getLogger("trainer.lease")   # (its lines are the lease's: said as before)


def write(lease: "RunLease", folder: RemoteEntry, released: bool = False,
          fallback: bool = False) -> float:
    """Write ``lease``'s claim (made, or renewed in place); returns when it was sent
    (:func:`boot_clock`), noted as its ``_written_at`` once Drive answered. ``fallback``
    (:meth:`~trainer.lease.RunLease.acquire`'s, no claim file listed): a create refused for
    storage is a property."""
    store, _ = lease.drive.store_at()
    lease._renewals += 1
    if lease_props.is_property(lease._mine):   # (renewed in place, as a file is)
        sent = boot_clock()
        lease._mine = lease_props.write(store, folder, lease.token, lease.generation,
                                        server_clock.now(), lease._mine.created, released,
                                        lease.stale_s)
        lease._written_at = sent
        return sent
    body = {"owner": lease.token, "host": socket.gethostname(), "pid": os.getpid(),
            "machine": namespace_tag(), "generation": lease.generation,
            "renewals": lease._renewals, "written": time.time(),
            "stale_s": lease.stale_s,   # (for a reader that is no trainer: dedupe)
            # It names its claim in the folder's arbiter (lease_cas): a claim made, or one
            # whose swaps hold. One held by the listing only (the arbiter refused: written
            # again then; If-Match ignored: asked before the claim is made) says not, so a
            # trainer reaching Drive another way obeys it (lease48, lease49).
            "arbiter": (lease._mine is None and lease._if_match is not False)
            or lease._cas is not None}
    if released:
        body["released"] = True
    fd, tmp = tempfile.mkstemp(prefix=".trainer-lease-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(body, fh)
        replace = lease._mine
        sent = boot_clock()   # (before the first try: Drive's date of it is later)
        try:
            lease._mine = store.upload(tmp, folder, lease.name, replace=replace)
        except NotFoundError:   # (removed: by a taker? The arbiter says, before a
            _taken(lease, lease_cas.renew(lease, folder))   # second claim is made: lease47)
            lease._mine = store.upload(tmp, folder, lease.name, replace=None)
        except QuotaExceededError as exc:   # (Drive full: a property, where it may be)
            if replace is not None or not fallback or not lease_props.usable(store):
                raise
            try:
                lease._mine = lease_props.write(store, folder, lease.token, lease.generation,
                                                server_clock.now(), server_clock.now(),
                                                stale_s=lease.stale_s)
            except DriveStageError as refused:   # (the folder at Drive's 30 PUBLIC ones:
                raise exc from refused   # its line says "permission denied", no cause)
            logger.warning("%s: Drive's storage is full (its claim file of %s B did not "
                           "fit): the run's lease is claimed by a property of the folder, "
                           "not a file", lease.drive.spec, exc.needed or "a few hundred")
        # (Made anew: the claim was removed meanwhile, by a taker where the lease was taken
        # over. The lease found lost by this write's swap or the check's listing that
        # follows, this one is removed again: no second claim left, attackint46, claim49.)
        lease._remade = lease._mine.id if replace is not None \
            and lease._mine.id != replace.id else None
        if replace is not None and not released:   # (the arbiter: lease_cas)
            # After the claim file, not before: a taker that reads the arbiter after this
            # swap reads the claim renewed; one that swapped first (the claim read stale)
            # has this swap refused. Swapped first, a taker between the two took the
            # lease over and the claim's late write was taken for proof (attackint47).
            _taken(lease, lease_cas.renew(lease, folder))
        if replace is None or replace.id != lease._mine.id:
            made = lease._mine.created or lease._mine.modified
            lease._order = (-lease.generation, made, lease._mine.id)
    finally:
        os.unlink(tmp)
    lease._written_at = sent
    return sent


def _taken(lease: "RunLease", holder: Optional[Claim]) -> None:
    """Lost where the arbiter named ``holder``, not this claim (:func:`lease_cas.renew`)."""
    if holder is not None:
        lease._lose(holder)


def drop_remade(lease: "RunLease") -> None:
    """The lease lost: remove the claim ``lease``'s renewal made anew (the taker had removed
    the old one; this one, left, was a second claim until it read stale, seen by ``trainer
    status`` and ``dedupe``: claim49). By its id: the taker's claim is never touched. The
    store's retries bound the request; refused still, it is said and left (not renewed, it
    reads stale in ``stale_s``, and its run's end tries again: :func:`remove`)."""
    mine, lease._remade = lease._mine, None
    if mine is None:
        return
    store, _ = lease.drive.store_at()
    try:
        store.delete(mine)
    except NotFoundError:
        pass
    except DriveStageError as exc:
        logger.warning("%s: could not remove the lease claim %s (id %s) this trainer made "
                       "again after another took the lease over: left, it reads stale in "
                       "%.0f s and is no one's then (%s)", lease.drive.spec, mine.name,
                       mine.id, lease.stale_s, exc)
        return
    lease._mine = None


def remove(lease: "RunLease") -> None:
    """Remove ``lease``'s claim (released where Drive refuses its removal)."""
    with lease_end.removing(lease):   # (what an exit waiting for it names)
        _remove(lease)


def _remove(lease: "RunLease") -> None:
    mine, lease._cas = lease._mine, None
    if mine is None or delete(lease, mine) or lease_props.is_property(mine):
        lease._mine = None   # (a property Drive kept: stale in stale_s, no one's then)
        return
    # (Refused: a Contributor deletes nothing. As it was, it looked live to the next
    # trainer, which watched it for the stale bound; released, no one's: attacklease36)
    try:
        if lease._folder is not None:   # (where acquire() made it)
            write(lease, lease._folder, released=True)
    except DriveStageError as exc:   # (left: stale in stale_s, no one's then)
        logger.debug("could not mark the lease claim %s released: %s", mine.name, exc)
    lease._mine = None


def delete(lease: "RunLease", entry: RemoteEntry) -> bool:
    """Remove ``entry``; False where Drive refused (the claim is left)."""
    store, _ = lease.drive.store_at()
    try:
        lease_props.remove(store, entry) if lease_props.is_property(entry) \
            else store.delete(entry)
    except NotFoundError:
        pass
    except DriveStageError as exc:   # (left: stale, so no one's, and removed later)
        logger.debug("could not remove the lease claim %s: %s", entry.name, exc)
        return False
    return True
