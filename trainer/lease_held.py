"""The run's lease as a trainer takes it (:func:`held_folder`, rank 0's ``drive.logs``), and
the leases this process holds, released when the run ends (:func:`release_all`), the watch
of another's live claim at the start (:func:`watch`), and the wait for a predecessor after a
``--take-over`` (:func:`after`); split from :mod:`trainer.lease`, which names them for its
callers."""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from drivestage.errors import DriveStageError, QuotaExceededError
from trainer.errors import LeaseHeldError, LeaseUnsureError
from trainer.lease_claims import HELD, Claim, ahead_s, renewed_text, silent, span_text, \
    unrenewed

if TYPE_CHECKING:
    from trainer.lease import RunLease

logger = logging.getLogger("trainer.lease")   # (its lines are the lease's: said as before)

#: The leases this process holds (rank 0's one), released with the run folder's lock at the
#: end of :func:`trainer.engine.fit` (:meth:`trainer.run_lock.RunFolderLock.release`),
#: however the run ended: a notebook's next ``fit()`` in the same process, or another
#: machine's, finds no claim renewed.
_HELD: "list[RunLease]" = []


def held_folder(cfg, stop):
    """``drive.logs`` as a :class:`trainer.drive.DriveFolder` whose run lease this trainer
    holds (``drive.lease_minutes`` 0: none), renewed until the run ends; a lease taken
    over asks ``stop`` (a :class:`trainer.stopping.StopFlag`) for a stop."""
    from trainer.drive import DriveFolder, retention_policy
    from trainer.lease import RunLease
    from trainer.stopping import LEASE_LOST

    d = cfg.drive
    folder = DriveFolder(d.logs, cfg.train.out_dir,
                         retention_policy(d.keep_last, d.keep_best, d.max_bytes))
    if not d.lease_minutes:
        return folder
    folder.check_writable()   # (a folder shared read-only: that line, not a failed claim)
    lease = RunLease(folder, 60.0 * d.lease_minutes, take_over=d.take_over,
                     on_lost=lambda text: stop.request(LEASE_LOST, text))
    try:
        lease.acquire()
    except DriveStageError as exc:   # (Drive failing after its retries: trained as before)
        lease.release()   # (a claim made before the failure: removed where Drive lets it)
        logger.warning("could not take the run's lease on %s (%s): it is taken at the first "
                       "push that reaches Drive", d.logs, exc)
        lease.pending, lease.why_pending = True, exc
        lease.lost = None
        lease._done.clear()
        _HELD.append(lease)
        folder.lease = lease
        return folder
    _HELD.append(lease)
    folder.lease = lease.start()
    return folder


def watch(lease: "RunLease", folder: Any) -> tuple[list[Claim], list[Claim], set[str]]:
    """:meth:`trainer.lease.RunLease.acquire`'s watch of the live claims of others in
    ``folder``: renewed while watched, :class:`LeaseHeldError`; lapsed, or none (or a
    ``--take-over``), the claims as listed last, the live ones, and the ids of those
    watched unchanged past the bound (:func:`trainer.lease_claims.unrenewed`: gone, their
    dates ahead of Drive's clock)."""
    from trainer.drive import age_text

    first: dict[str, tuple[float, float]] = {}   # a live claim's id -> its renewal, when
    said = False
    # (The watch's bound; and 2 s: Drive's clock is heard to the second, a stale claim
    # may read up to a second younger: at 0.6 s periods it ran out first, fence37.)
    until = time.monotonic() + lease.stale_s + lease.period_s + 2.0
    while True:
        claims = lease._claims(folder)
        live = [c for c in claims if not lease._gone(c)]
        if not live or lease.take_over:
            return claims, live, set()
        holder = min(live, key=lambda c: c.order)
        for c in live:
            if c.entry.id in first and c.entry.modified != first[c.entry.id][0]:
                raise LeaseHeldError(lease._held_text(c))
            first.setdefault(c.entry.id, (c.entry.modified, time.monotonic()))
        if time.monotonic() >= until:
            dead = unrenewed(live, first, lease.stale_s)
            if len(dead) < len(live):
                raise LeaseHeldError(lease._held_text(holder))
            return claims, [], dead
        if not said:
            said = True
            logger.warning("%s: the run's lease is held by %s, last renewed %s ago; "
                           "waiting up to %s for it to lapse (its runtime gone: this run "
                           "takes over; still training: this run is refused)",
                           lease.drive.spec, holder.who, age_text(silent(holder)),
                           span_text(max(0.0, lease.stale_s - silent(holder))))
        wait = min(lease.period_s / 2, max(0.05, lease.stale_s - silent(holder) + 0.05))
        time.sleep(max(0.05, min(wait, until - time.monotonic())))


def unsure(lease: "RunLease", live: list[Claim]) -> str:
    """Where every one of ``live`` (the live claims of others a trainer whose lease was not
    taken at its start found when it reached Drive: :meth:`trainer.lease.RunLease._late`) is
    dated ahead of Drive's clock and unchanged since that trainer first saw it, why it waits
    (a line for :func:`not_taken`); else "" (one renewed: held, that trainer stops). Such a
    claim says nothing of its holder by its date: read as held, it stopped a trainer whose
    run had just begun, for a claim dead a day (attacklease42); it is gone once seen
    unchanged for its stale period (:func:`drivestage.run_claims.silent_for`)."""
    for c in live:
        if not ahead_s(c) or lease._ahead_seen.setdefault(c.entry.id,
                                                          c.entry.modified) != c.entry.modified:
            return ""
    c = min(live, key=lambda c: c.order)
    return (f"{c.who} holds a claim {renewed_text(c)}; it is taken over once seen unchanged "
            f"for {span_text(lease.stale_s)}, and this trainer stops if it changes")


def twin_held(lease: "RunLease") -> None:
    """At each renewal: where a same-named folder beside the claim's is the oldest (the one a
    walk of the path takes) and holds a live claim of another, this trainer stops (its
    :meth:`~trainer.lease.RunLease._lose`, one line naming both folders). The run's folder
    trashed while its trainer held it, a second trainer started then made a new one at the
    path, and the first restored: two same-named folders, each trainer pushing into its own
    by id, each holding a lease, until a walk of the path (attacklease42, left). The one in
    the newer folder stops: the oldest is where every walk, resume and ``dedupe`` goes, and
    joining it would make it a claimant there, refused by that live claim anyway. One
    ``files.list`` a period (a Drive store only); a failure waits for the next period."""
    from trainer import lease_props

    store, folder = lease.drive.store_at()[0], lease._folder
    if folder is None or lease._mine is None or not lease_props.usable(store):
        return
    twins = store.twins(folder)
    oldest = min(twins, key=lambda f: (f.created or f.modified, f.id), default=folder)
    if oldest.id == folder.id:
        return
    live = [c for c in lease._claims(oldest) if not lease._gone(c)]
    if live:
        lease._lose(min(live, key=lambda c: c.order), HELD + " {}", TWIN.format(
            folder.id, oldest.id, lease.drive.spec))


#: Why a trainer stops for a claim in a same-named folder beside its own (:func:`twin_held`).
TWIN = ("; in a same-named folder beside this trainer's (id {0}): the older one, id {1}, "
        "where the path leads (trashed and restored while this trainer started, or made by "
        "another tool); merge the two with `drivestage dedupe {2}` once that run ends")


def release_all() -> None:
    """Release every lease this process holds (the run ended)."""
    while _HELD:
        _HELD.pop().release()


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
    if isinstance(why, LeaseUnsureError):   # (a claim dated ahead, unchanged yet: unsure)
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
    found another holding it when it first reached Drive (:meth:`RunLease._late`). Drive's
    storage full at a ``--take-over`` of a live claim file: its claim did not fit, and no
    property takes a live file's lease over (its holder reads none while its lease is
    proved: leasefull42); the line said Drive "was down"."""
    if isinstance(why, QuotaExceededError):
        return ("; held before this trainer could claim it: Drive's storage was full at its "
                "start, its claim file did not fit, and a live claim file's lease is not "
                "taken over by a property (that trainer reads none); free some space on "
                "Drive first")
    return "; held before this trainer first reached Drive, which was down at its start"


def after(lease: "RunLease") -> None:
    """Before a trainer's first push after a ``--take-over`` of a live lease: wait
    until the trainer it took it from is gone (its claim removed when its run ended, or
    stale), at most its ``stale_s`` and a period. That one finds the take-over within a
    period and pushes nothing more, but a push it had begun ends first: sent after it, this
    trainer's files are not replaced by that push's (nor its twins removed)."""
    if not lease._before:
        return
    store, path = lease.drive.store_at()
    until = time.monotonic() + lease.stale_s + lease.period_s
    said = False
    while lease._before and time.monotonic() < until:
        with lease._lock:
            listed = {c.entry.id: c for c in lease._claims(store.resolve(path))}
        lease._before = [listed[c.entry.id] for c in lease._before
                         if c.entry.id in listed and not lease._gone(listed[c.entry.id])]
        if not lease._before:
            break
        if not said:
            said = True
            logger.info("%s: waiting for %s, whose lease this run took over, to stop "
                        "(within a minute; %s at most) before this run's first push",
                        lease.drive.spec, lease._before[0].who,
                        span_text(lease.stale_s + lease.period_s))
        time.sleep(max(0.05, min(lease.period_s / 2, 1.0, until - time.monotonic())))
    lease._before = []
