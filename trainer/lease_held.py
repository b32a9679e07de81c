"""The run's lease as a trainer takes it (:func:`held_folder`, rank 0's ``drive.logs``), and
the leases this process holds, released when the run ends (:func:`release_all`), the watch
of another's live claim at the start (:func:`watch`), and the wait for a predecessor after a
``--take-over`` (:func:`after`); split from :mod:`trainer.lease`, which names them for its
callers."""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from drivestage.errors import DriveStageError
from trainer.errors import LeaseHeldError
from trainer.lease_claims import HELD, Claim, renewed_text, silent, span_text, unrenewed

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
        lease.pending = True   # (its release's lines: not the run's end's, lease_end.release)
        lease.release()   # (a claim made before the failure: removed where Drive lets it)
        logger.warning("could not take the run's lease on %s (%s): it is taken at the first "
                       "push that reaches Drive", d.logs, exc)
        lease.pending, lease.why_pending = True, exc
        lease.lost, lease.released = None, False   # (pending: taken at the first push)
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
        now = time.monotonic()
        if now >= until:
            dead = unrenewed(live, first, lease.stale_s, now)
            if len(dead) < len(live):
                raise LeaseHeldError(lease._held_text(holder))
            # Gone to this trainer until renewed, as one judged stale by its date: the
            # settle's arbiter check judged them by their dates again, read live where
            # Drive's clock as heard lags, and the start was refused (lease52's left).
            lease._lapsed.update((c.entry.id, c.entry.modified) for c in live)
            return claims, [], dead
        if not said:
            said = True
            logger.warning("%s: the run's lease is held by %s, %s; "
                           "waiting up to %s for it to lapse (its runtime gone: this run "
                           "takes over; still training: this run is refused)",
                           lease.drive.spec, holder.who, renewed_text(holder),
                           span_text(max(0.0, lease.stale_s - silent(holder))))
        wait = min(lease.period_s / 2, max(0.05, lease.stale_s - silent(holder) + 0.05))
        time.sleep(max(0.05, min(wait, until - time.monotonic())))


def twin_held(lease: "RunLease") -> None:
    """At each renewal: where a same-named folder beside the claim's is the oldest (the one a
    walk of the path takes) and holds a live claim of another, this trainer stops (its
    :meth:`~trainer.lease.RunLease._lose`, one line naming both folders). The run's folder
    trashed while its trainer held it, a second trainer started then made a new one at the
    path, and the first restored: two same-named folders, each trainer pushing into its own
    by id, each holding a lease, until a walk of the path (attacklease42, left). The one in
    the newer folder stops: the oldest is where every walk, resume and ``dedupe`` goes, and
    joining it would make it a claimant there, refused by that live claim anyway. One
    ``files.list`` a period (a Drive store only); a failure waits for the next period.

    Not before each push (lease44): no request a push makes shows the folder's siblings (its
    lease check lists the folder's children, its walk gets the folder by id), so it would be
    a ``files.list`` more per push (a pair's push 11 requests, 12; one that sends nothing 3,
    4); one listing of both (an OR of two parents) is a query Drive is known to answer with
    one parent's items silently left out (:mod:`drivestage.drive.relist`), on the listing
    that decides the lease. Until this check, the trainer writes into its own folder only,
    by id (no file of the other's replaced), and its push that walks the path (every tenth)
    finds the older twin and is stopped at its first commit (:meth:`RunLease.guard`)."""
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


def beside(lease: "RunLease", was: Any) -> bool:
    """Whether ``was``, the folder the claim was in, is a same-named folder beside the one the
    path leads to now (the lease's ``_folder``), not in the trash: a twin (the path's older
    folder restored from the trash), not a folder moved, renamed or trashed. Asked only where
    a push's walk found the path leading elsewhere and another's live claim there (its line
    said "took the run's lease over" and "moved, renamed or trashed": neither happened):
    one ``files.list`` (a Drive store only); none known (a failure): False."""
    from trainer import lease_props

    store, folder = lease.drive.store_at()[0], lease._folder
    if folder is None or not lease_props.usable(store):
        return False
    try:
        return any(t.id == was.id for t in store.twins(folder))
    except DriveStageError:   # (the moved line then: what it said before)
        return False


#: Why a trainer stops for a claim in a same-named folder beside its own (:func:`twin_held`).
TWIN = ("; in a same-named folder beside this trainer's (id {0}): the older one, id {1}, "
        "where the path leads (trashed and restored while this trainer started, or made by "
        "another tool); merge the two with `drivestage dedupe {2}` once that run ends")


def release_all() -> None:
    """Release every lease this process holds (the run ended)."""
    while _HELD:
        _HELD.pop().release()


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
