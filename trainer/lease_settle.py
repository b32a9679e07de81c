"""A claim of the run's lease written and settled: who holds it once both of two trainers that
claimed at the same moment can see each other (:meth:`trainer.lease.RunLease.acquire`, and a
holder whose claim is made anew in the folder its path leads to now). Split from
:mod:`trainer.lease` (its 500-line cap).

A claimant writes its claim, waits :attr:`~trainer.lease.RunLease.settle_s`, and reads the
folder's claims again. The *rivals* are the claims of others of its generation or later.
Where none listed is better, the run folder's arbiter decides last, by a compare-and-swap
(:func:`trainer.lease_cas.take`: a listing lags; a read by id and a conditional write do not).

- **Claim files only:** the one Drive made first holds (:attr:`Claim.order`); the other
  stands back. Each reads the same dates.
- **A property among them** (Drive's storage full: :mod:`trainer.lease_props`): Drive dates
  no property, and this machine hears Drive's clock to a second, so the order is the claims'
  tokens, which every trainer reads alike. A claimant whose token is not the smallest stands
  back at once (removes its claim); the smallest one reads again until the others are gone
  (at most :func:`wait_bound`), and holds then. Both holding would need each one's last read
  to miss the other: the later writer's read comes after the earlier one's write, and a
  holder never removes its claim; so one at most holds. Before, both stood back, and both
  trainers were refused at their start (room41). Where the others stay (one held at once:
  its read came before the other's write), the smallest stands back at the bound, refused
  with the holder named.
- **A live claim FILE of another beside this one's property**, of an earlier generation (a
  stale claim renewed after all: its holder woke while this one took it over): this one
  stands back at once; that one reads no property while its lease is proved.
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Optional

from drivestage.errors import QuotaExceededError
from drivestage.store import RemoteEntry
from trainer import lease_cas, lease_props
from trainer.errors import LeaseHeldError
from trainer.lease_claims import Claim

if TYPE_CHECKING:
    from trainer.lease import RunLease

logger = logging.getLogger("trainer.lease")   # (its lines are the lease's: said as before)

#: The longest wait of the smallest token for its rivals to stand back.
MAX_WAIT_S = 30.0
#: A request's time, a retry included, in :func:`wait_bound`.
REQUEST_S = 5.0


def wait_bound(lease: "RunLease") -> float:
    """How long a claimant whose token is the smallest waits for its rivals to go. A rival
    this one's read showed wrote its claim before that read, so its own read comes at most
    ``settle_s`` after this one's, and its removal one request later: ``settle_s`` and two
    requests (its read and its removal, each with a retry). Past that the rival held (its
    read came before this one's write): this one stands back, refused. It waited 30 s
    (leaselefts43); a rival slower than the bound makes both stand back (refused: the safe
    side), never both hold (see the module's text)."""
    return min(MAX_WAIT_S, lease.stale_s, lease.settle_s + 2 * REQUEST_S)


def claim(lease: "RunLease", folder: RemoteEntry, listed: list[Claim],
          forced: bool = False) -> list[Claim]:
    """Write ``lease``'s claim in ``folder`` (``listed``: the claims read before), settle,
    and decide: held (the claims as last read are returned) or stood back (its claim
    removed, :class:`LeaseHeldError` naming the holder). ``forced``: a ``--take-over`` of a
    live claim (:func:`trainer.lease_cas.take`)."""
    holder, claims = settle(lease, folder, listed, forced)
    if holder is not None:
        raise LeaseHeldError(lease._held_text(holder))
    return claims


def settle(lease: "RunLease", folder: RemoteEntry, listed: list[Claim], forced: bool = False
           ) -> tuple[Optional[Claim], list[Claim]]:
    """:func:`claim`'s steps: (None, the claims as last read) where held; (the holder, the
    claims) where this one stood back, its claim removed."""
    # (A property only where no live claim file is listed: a file's holder reads no property
    # while its lease is proved. A stale one is no one's: its holder, if it wakes, finds its
    # lease unproved and reads the folder's properties: leasefull42.)
    files = any(not c.on_folder and not lease._gone(c) for c in listed)
    lease_cas.probe(lease, folder)   # (whether its claim may say it obeys the arbiter)
    lease._write(folder, fallback=not files)
    time.sleep(lease.settle_s)   # (the bound of the race: see trainer.lease's text)
    until, said = time.monotonic() + wait_bound(lease), False
    while True:
        claims = lease._claims(folder)
        holder, wait = decide(lease, claims)
        if holder is None:   # (none better listed: the arbiter decides, by a swap)
            holder, wait = lease_cas.take(lease, folder, forced), False
        if holder is None:
            lease._sure_until = lease._written_at + lease.sure_s   # (held: none better listed)
            return None, claims
        if not wait or time.monotonic() >= until:
            logger.debug("%s: standing back for %s's claim", lease.drive.spec, holder.who)
            lease._remove()
            return holder, claims
        if not said:
            said = True
            logger.info("%s: %s claimed the run's lease at the same moment; waiting up to "
                        "%.0f s for it to stand back", lease.drive.spec, holder.who,
                        wait_bound(lease))
        time.sleep(max(0.1, min(lease.settle_s, 1.0, until - time.monotonic())))


def anew(lease: "RunLease", folder: RemoteEntry, listed: list[Claim]) -> Optional[Claim]:
    """``lease``'s claim made anew in ``folder`` (the path's: its folder moved on Drive, or
    its write failed; ``listed``: none of them live), settled as at the start, so a full
    Drive takes it as a property where the file is refused (a property holder whose folder
    moved failed every push on storage, the line naming the claim's temporary file:
    leasefull42). Its generation is above every claim there (a stale one of a higher one
    there is no better claim). The holder it stood back for; None: held. A Drive that
    refuses the property too: :class:`QuotaExceededError` in one line naming the claim."""
    lease.generation = max([lease.generation] + [c.generation + 1 for c in listed])
    try:
        return settle(lease, folder, listed)[0]
    except QuotaExceededError as exc:
        raise QuotaExceededError(
            f"{lease.drive.spec}: the run's lease claim {lease.name[:-5]} did not fit in the "
            "folder its path leads to now (Drive's storage is full; this run's folder was "
            "moved, renamed or trashed on Drive, or the claim was removed), so nothing more "
            "is pushed there; free some space on Drive (empty its trash, remove old runs), "
            "and the next push makes the claim and goes on", needed=exc.needed,
            free=exc.free, trash=exc.trash) from exc


def decide(lease: "RunLease", claims: list[Claim]) -> tuple[Optional[Claim], bool]:
    """Of ``claims`` (read after the settle): the rival ``lease`` stands back for (None:
    held), and whether it waits for that one to go first (its token the smallest)."""
    beside = [c for c in lease_props.files_beside(lease._mine, claims, lease.token, lease._gone)
              if c.generation < lease.generation]
    if beside:
        return min(beside, key=lambda c: c.order), False
    # (Its own claim, where the listing does not show it yet, stands as it was made.)
    rivals = [c for c in claims if c.generation >= lease.generation and c.owner != lease.token]
    if not rivals:
        return None, False
    if not (lease_props.is_property(lease._mine) or any(c.on_folder for c in rivals)):
        holder = min(rivals, key=lambda c: c.order)
        return (holder, False) if holder.order < lease._order else (None, False)
    first = min(rivals, key=lambda c: c.owner)   # (a property: the tokens' order)
    return first, lease.token < first.owner
