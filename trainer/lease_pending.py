"""The run's lease while it is not taken: Drive was down at the trainer's start
(:func:`trainer.lease_held.held_folder` warned, the run trains), so it is taken at the first
push that reaches Drive (:func:`late`); a claim of another there whose age this machine
cannot tell by its date is watched, not obeyed (:func:`unsure`); and the lines of a push
stopped while it is not taken (:func:`not_taken`) or of a trainer that found it held
(:func:`held_before`). Split from :mod:`trainer.lease` (its 500-line cap) and
:mod:`trainer.lease_held`."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from drivestage.drive import server_clock
from drivestage.errors import DriveStageError, QuotaExceededError
from trainer.errors import LeaseHeldError, LeaseUnsureError
from trainer.lease_claims import HELD, Claim, ahead_s, renewed_text, span_text

if TYPE_CHECKING:
    from trainer.lease import RunLease

logger = logging.getLogger("trainer.lease")   # (its lines are the lease's: said as before)


def late(lease: "RunLease") -> None:
    """The lease an outage kept from being taken at the start, at a push that reaches Drive
    (else a trainer started once Drive was back held it, and both pushed: attacklease36): a
    live claim of another there, this one stops as if taken over; none, held from now on.
    Drive failing still: the push goes on as before (its commits try again where Drive
    answers: :meth:`trainer.lease.RunLease.guard`). Called with the lease's lock held."""
    store, path = lease.drive.store_at()

    def others() -> list[Claim]:
        claims = lease._claims(store.make_folders(path))
        for c in claims:   # (its own of the failed start: made, its removal failed too)
            if c.owner == lease.token and lease._mine is None:
                lease._delete(c.entry)
        return [c for c in claims if c.owner != lease.token and not lease._gone(c)]
    try:
        live = others()
        why = unsure(lease, live) if live else ""
        if why:   # (its age untold by its date, unchanged yet: not a stop)
            lease._late_failed = server_clock.answered()
            lease.why_pending = LeaseUnsureError(why)
            return
        if not live:
            try:
                lease.acquire()
            except LeaseHeldError as exc:   # (a claim made meanwhile: listed now)
                logger.info("%s: the run's lease is not taken: %s", lease.drive.spec, exc)
                live = others()
                if not live:   # (that one stood back too, trainer.lease_props: not taken)
                    lease._late_failed, lease.why_pending = server_clock.answered(), exc
                    return
    except DriveStageError as exc:
        lease._late_failed = server_clock.answered()   # (no try more before Drive answers)
        lease.why_pending = exc
        logger.debug("the run's lease is still not taken: %s", exc)
        return
    if live:
        lease.pending = False
        lease._lose(min(live, key=lambda c: c.order), HELD + " {}",
                    held_before(lease.why_pending))   # (maybe long before: attackfence37)
    lease.pending = False
    lease.start()


def unsure(lease: "RunLease", live: list[Claim]) -> str:
    """Where every one of ``live`` (the live claims of others that :func:`late` found) is one
    whose date says nothing of its last renewal, and unchanged since this trainer first saw
    it, why it waits (a line for :func:`not_taken`); else "" (one renewed: held, that
    trainer stops). Such a claim is told by its changes (its age is the time this machine
    has seen it unchanged: :func:`drivestage.run_claims.silent_for`), and it is gone once
    seen unchanged for its stale period, as a starting trainer's watch and take-over judge
    it. Two kinds: a claim dated ahead of Drive's clock (read as held, it stopped a trainer
    whose run had just begun, for a claim dead a day: attacklease42), and, where Drive's
    answers carry no ``Date`` (a proxy strips it), any claim (each reads live for its first
    stale period of sight, and the trainer stopped for a dead one: leaselefts43, left)."""
    undated = not server_clock.dated()
    for c in live:
        if not (undated or ahead_s(c)) or \
                lease._sighted.setdefault(c.entry.id, c.entry.modified) != c.entry.modified:
            return ""
    c = min(live, key=lambda c: c.order)
    return (f"{c.who} holds a claim {renewed_text(c, lead='')}; it is taken over once seen "
            f"unchanged for {span_text(lease.stale_s)}, and this trainer stops if it changes")


def not_taken(spec: str, why: "BaseException | None") -> str:
    """The line of a push stopped while the run's lease on ``spec`` is not taken (``why``:
    the last try's failure). Drive's storage full refused the claim's write (a file of a
    few hundred bytes), and the room a push makes (drive.keep_last) is a removal, which
    waits for the lease: no push made room, and none ever took it (attackguard40); the
    line said Drive "did not answer", and the user could not tell what to do."""
    stopped = ("until it is, nothing there is replaced or removed, so the send stopped at its "
               "first replacement or removal (new files may have gone)")
    if isinstance(why, QuotaExceededError):
        return (f"{spec}: the run's lease is not taken yet: Drive's storage is full, and its "
                f"claim (a file of a few hundred bytes) did not fit; {stopped}, and no room "
                "is made there (drive.keep_last) while it is not taken. Free some space on "
                "Drive (empty its trash, remove old runs): the next push takes the lease "
                "and makes room")
    if isinstance(why, LeaseUnsureError):   # (a claim told by its changes, unchanged yet)
        return (f"{spec}: the run's lease is not taken yet: {why}; {stopped}; the next push "
                "tries again")
    if isinstance(why, LeaseHeldError):   # (both claims were properties: trainer.lease_props)
        return (f"{spec}: the run's lease is not taken yet (another trainer tried to take it "
                f"at the same moment, and both stood back); {stopped}; the next push tries "
                "again")
    return (f"{spec}: the run's lease is not taken yet (Drive did not answer this trainer's "
            f"tries to take it); {stopped}; the next push tries again")


def held_before(why: "BaseException | None") -> str:
    """Why a trainer whose lease was not taken at its start (``why``: that try's failure)
    found another holding it when it first reached Drive (:func:`late`). Drive's storage
    full at a ``--take-over`` of a live claim file: its claim did not fit, and no property
    takes a live file's lease over (its holder reads none while its lease is proved:
    leasefull42); the line said Drive "was down"."""
    if isinstance(why, QuotaExceededError):
        return ("; held before this trainer could claim it: Drive's storage was full at its "
                "start, its claim file did not fit, and a live claim file's lease is not "
                "taken over by a property (that trainer reads none); free some space on "
                "Drive first")
    return "; held before this trainer first reached Drive, which was down at its start"
