"""One live trainer per run on Drive: a lease on ``drive.logs``.

Two trainers of one run, each on its own machine (a Colab notebook reconnected to a new
runtime and started again while the old runtime still trained; two notebooks of one
config), both pushed into the run's folder: each replaced the other's ``epoch_NNN.pt`` and
autosaves there, every upload "verified", and the next resume took a mix of both. The
local lock (:mod:`trainer.run_lock`) sees one machine only.

**The lease.** Rank 0 holds a *claim* in ``drive.logs`` for the whole run: a small file
``trainer-lease-<token>.json`` (its owner: a random token, the host, the pid; a generation
number), made when the run starts and renewed (written again in place) every
``drive.lease_minutes`` by a thread of its own, and before every push. Its times are
Drive's own (the file's ``modifiedDate``: the last renewal; ``createdDate``), read against
Drive's clock as its answers say it (:func:`drivestage.drive.server_clock.now`): two
machines' clocks never meet here. A claim not renewed for :meth:`RunLease.stale_s`
(twice the period and a margin) is *stale*: its holder is gone (a runtime that died, a
machine asleep); one whose holder is a process of this machine that has ended is stale at
once (a cell stopped and run again).

**Starting.** A trainer that finds no live claim makes its own with the next generation.
One that finds a live claim of another watches it: renewed while it watches, its holder
trains: refused in one line (:class:`LeaseHeldError`, exit 1: who, when it last renewed,
what to do); not renewed until stale, it is taken over, with no one's action (a reconnect
after the old runtime died: the main flow). ``--take-over`` (``drive.take_over``) takes a
live one at once.

**Who holds it.** Of the claims in the folder, the holder is the one of the highest
generation, and among those the one Drive made first (then the smaller id). A new claimant
writes its claim, waits :meth:`RunLease.settle_s`, lists again and stands back where its claim
is not the holder then (it removes it and is refused): :mod:`trainer.lease_settle`, which also
decides between properties (by token). A listing lags, so it decides last by a
compare-and-swap (lease47, :mod:`trainer.lease_cas`): the run folder's property
``trainer-lease`` names the holding claim, written only by a patch naming the folder's etag
as read (Drive refuses it, 412, where the folder changed since); the arbiter naming a live
claim of another (read by id, whatever the listing shows), this one is refused. So of two
trainers racing, exactly one holds (a listing that lagged a claim's create by more than
``settle_s`` let a second trainer hold it too: attacklease36_lag, closed), where Drive
refuses a write naming a stale etag (asked once per start: a server that applies it leaves
the listing to decide, said in one line: lease48). A trainer of
0.1.x writes no arbiter: its claim file is obeyed by the listing's rules, as before. After a
``--take-over`` of a live lease, the taker's first push waits until the old holder is gone
(:meth:`RunLease.after_predecessor`).

**Fenced pushes.** A holder silent past the lease (a machine asleep for minutes, a stopped
process) that wakes mid-push while a new trainer took the stale lease over: its push had
checked the lease before it started, and went on replacing the new holder's checkpoints.
Each push, and each pair sent alone, now calls :meth:`RunLease.guard` at every point it
commits on Drive (drivestage's push ``guard``, :mod:`drivestage.push_fence`); lost, the copy
it sent that no sidecar vouches for yet is removed and nothing more is written. The guard
needs no request while the last renewal proves the lease: a stale take-over needs this
claim silent for :attr:`RunLease.stale_s` by Drive's clock, and a check's listing showed no
better claim, so until the last write Drive answered plus :attr:`RunLease.sure_s` none can
have happened (timed on a clock that counts this machine's sleep). Past that, one check
(a listing, a renewal) proves it again. Before then a push waits for no renewal Drive holds
(its answer changes no guard's verdict: a normal end's last push waited 20 s, lease51b). Each renewal writes the claim file, then swaps the
arbiter naming the etag of this trainer's last swap: a holder frozen while another took its
lease over (a request held past the lease) has that swap refused by Drive (412), reads the
arbiter, finds the taker and stops (a claim the taker removed, made anew by the write, is
removed again: no second claim). The claim file first: a taker that reads the arbiter
after the swap reads the claim renewed, and one that swapped before it has the swap refused
(swapped first, a taker between the two took the lease over, and the claim's late write was
taken for proof: attackint47).
Left, bounded by the proof, not closed: a sleep between the guard's answer and the one push
request it allowed. Drive conditions a write on the item written only, and a push writes
checkpoints, not the folder: no push request can name the lease's etag.

**Not taken at the start** (Drive down then: :func:`held_folder` warns, the run trains): taken
at the first push that reaches Drive (:meth:`RunLease.check`), or at the first commit of a
push that does (Drive back mid-push: :meth:`RunLease.guard`); another trainer's live claim
there stops this one as a take-over does. While Drive fails still, a commit tries again only
where Drive answered since the last try failed, not at each commit (lease39).

**Drive's storage full** (the claim file's create refused, none listed): the claim is a
property of the folder, so a push makes its room (:mod:`trainer.lease_props`: room41).

**Losing it.** A holder that finds a higher claim (taken over) stops pushing at once (every
push and lone send checks first: :meth:`RunLease.check`), asks the run to stop as a signal
would (:data:`trainer.stopping.LEASE_LOST`): the state is saved locally, nothing more goes
to Drive, one line says so, exit 1.
"""
from __future__ import annotations

import logging
import secrets
import threading
from typing import Callable, Optional

from drivestage import run_claims
from drivestage.drive import server_clock
from drivestage.errors import DriveStageError, NotFoundError
from drivestage.store import RemoteEntry
from trainer import lease_cas, lease_end, lease_mine, lease_props, lease_settle, lease_write
from trainer.lease_pending import late, not_taken
from trainer.errors import LeaseHeldError, LeaseLostError, LeaseNotTakenError
from trainer.lease_claims import AHEAD, HELD, MAX_CLAIMS, MOVED, PREFIX, SUFFIX, Claim, \
    ClaimReader, ahead_s, boot_clock, gone, held_text, is_claim, last_holder, renewed_text, \
    settle_seconds, span_text

__all__ = ["HELD", "MAX_CLAIMS", "PREFIX", "SUFFIX", "Claim", "RunLease", "held_folder",
           "is_claim", "release_all", "span_text"]

logger = logging.getLogger(__name__)
#: How long a release waits for a renewal or a check under way, and the claim's removal,
#: before it leaves that removal to a thread of its own (:meth:`RunLease.release`): a stop's
#: grace is spent by then.
RELEASE_WAIT_S = 5.0

class RunLease:
    """The run's lease on the store folder ``drive`` (a :class:`trainer.drive.DriveFolder`)."""

    def __init__(self, drive, period_s: float, take_over: bool = False,
                 on_lost: Callable[[str], None] = lambda text: None):
        self.drive = drive
        self.period_s = period_s
        self.take_over = take_over
        self.on_lost = on_lost
        self.token = secrets.token_hex(8)
        self.name = f"{PREFIX}{self.token}{SUFFIX}"
        self.generation = 0
        self.lost: Optional[str] = None
        #: Its run ended (:meth:`release`): it makes no claim again, and a later run of this
        #: process takes a claim of it left on Drive at once (:mod:`trainer.lease_mine`).
        self.released = False
        self._mine: Optional[RemoteEntry] = None
        self._renewals = 0
        self._reader = ClaimReader(drive.store_at()[0])
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: Optional[threading.Thread] = None
        #: The live claims a --take-over took (their holders may have a push under way):
        #: this trainer's first push waits until they are gone (:meth:`after_predecessor`).
        self._before: list[Claim] = []
        #: This claim's place among the claims (:attr:`Claim.order`), as first made: a store
        #: that keeps no creation time (a local folder) orders by the first write's time,
        #: not by each renewal's.
        self._order: tuple[int, float, str] = (0, 0.0, "")
        self._folder: Optional[RemoteEntry] = None   # (the claims', as acquired: _listed)
        #: Not taken at the start (Drive down): taken at the first push, or the first commit
        #: of a push (:meth:`guard`), that reaches Drive.
        self.pending = False
        #: :func:`server_clock.answered` when the last try to take it so failed (None: no
        #: try failed): a commit's guard tries again only where Drive answered since.
        self._late_failed: Optional[int] = None
        self.why_pending: Optional[BaseException] = None   # (the last try's failure)
        #: When (:func:`_clock`) the last write of this claim that Drive answered was sent,
        #: and until when no other trainer can have taken the lease over as stale
        #: (:meth:`guard`): a check's listing showed none better, and this claim, renewed
        #: since, is not stale before then in any trainer's eyes.
        self._written_at = self._sure_until = 0.0
        self.guard_checks = 0   # the checks (listings) :meth:`guard` made (a test counts them)
        self._guarding = threading.Lock()
        #: The claims told by their changes (dated ahead of Drive's clock, or no Date heard)
        #: seen while the lease was not taken: each one's id -> its date then (changed
        #: since: renewed, :func:`trainer.lease_pending.unsure`).
        self._sighted: dict[str, float] = {}
        #: The folder's etag after this trainer's last swap of the arbiter, and the
        #: properties it wrote (:mod:`trainer.lease_cas`); None: it names no claim of this one.
        self._cas: Optional[tuple[str, list[dict[str, str]]]] = None
        #: Whether Drive refused a write naming an etag the folder does not have (asked once,
        #: before this trainer's claim is first written: :func:`trainer.lease_cas.probe`);
        #: None: not asked yet.
        self._if_match: Optional[bool] = None
        #: The id of this trainer's claim where its last write made it anew (the old one
        #: removed meanwhile: by a taker?), until a check's listing proves it held; the
        #: lease lost meanwhile, it is removed (:func:`trainer.lease_write.drop_remade`).
        self._remade: Optional[str] = None
        #: Each claim of another this trainer judged gone (its id -> its date then): gone
        #: until its date changes (renewed). Drive's clock is heard by each answer's Date, to
        #: the second and late by the answer's time on the way, so a later reading may be a
        #: second or more behind an earlier one: a claim the watch found stale read live
        #: again at the settle, and a reconnect was refused (lease52).
        self._lapsed: dict[str, float] = {}
        lease_mine.made(self)

    @property
    def stale_s(self) -> float:
        """Not renewed this long, a claim is no one's (:func:`run_claims.stale_after`)."""
        return run_claims.stale_after(self.period_s)

    @property
    def sure_s(self) -> float:
        """How long after a renewal was sent this claim is surely not stale to another
        trainer: :attr:`stale_s` less a margin for Drive's clock as each machine hears it
        (its ``Date``, to the second) and the request's time on the way."""
        return self.stale_s - min(10.0, self.period_s / 2)

    @property
    def settle_s(self) -> float:
        """How long a new claim waits before the listing that decides (a claim another
        trainer sent at the same moment is listed by then). ``TRAINER_LEASE_SETTLE``
        (seconds) overrides it: 0 where listings show a create at once (the emulator)."""
        return settle_seconds(min(2.0, self.period_s / 2))

    # -- starting
    def acquire(self) -> None:
        """Hold the lease, or raise :class:`LeaseHeldError` (see the module's text)."""
        self.settle_s   # (a bad TRAINER_LEASE_SETTLE: said before Drive is asked)
        store, path = self.drive.store_at()
        folder = self._folder = store.make_folders(path)
        claims, live, dead = watch(self, folder)   # (the live claims of others: watched)
        lease_mine.fence(self, folder)   # (an ended run's late push here: stopped first)
        taken = sorted((c for c in claims if c.owner != self.token and not c.released),
                       key=lambda c: c.order)   # (a released one: its run ended, nothing taken)
        self._before = [c for c in live if c.owner != self.token]
        self.generation = max((c.generation for c in claims), default=0) + 1
        forced = bool(taken) and self.take_over and not self._gone(taken[0])   # (before: ended)
        logger.debug("%s: claiming generation %d", self.drive.spec, self.generation)
        claims = lease_settle.claim(self, folder, claims, forced)   # (written, settled: held)
        if taken:   # (said: a trainer elsewhere that still runs would be refused later)
            how = "--take-over" if forced else AHEAD if taken[0].entry.id in dead \
                or ahead_s(taken[0]) else lease_mine.ENDED if lease_mine.ended(taken[0]) \
                else "its holder is gone"
            logger.warning("%s: took the run's lease over from %s, %s (%s)", self.drive.spec,
                           taken[0].who, renewed_text(taken[0]), how)
        for c in claims:   # the stale claims of earlier generations: no one's now
            if c.owner != self.token and c.generation < self.generation \
                    and (self._gone(c) or c.entry.id in dead) \
                    and c.entry.removable:   # (a Contributor's request Drive refuses: none)
                self._delete(c.entry)

    def start(self) -> "RunLease":
        """Renew in a thread of its own every period, until :meth:`release`."""
        self._thread = threading.Thread(target=self._renewing, name="trainer-lease", daemon=True)
        self._thread.start()
        return self

    # -- holding
    def check(self) -> None:
        """Raise :class:`LeaseLostError` where the lease was taken over (said once, and the
        run asked to stop); else renew it where half a period passed. Before every push.
        A check under way (a renewal Drive holds) is not waited for while the last one's
        proof stands (:meth:`_proved`): its answer changes no guard's verdict before then
        (a normal end's last upload waited 20 s for it: lease51b)."""
        if not self._lock.acquire(blocking=False):
            if self._proved():
                return
            self._lock.acquire()
        try:
            self._check()
        finally:   # (a release that gave up waiting for this check: done here, after
            # its write landed, so the claim it renewed is not left: relaunch50)
            try:
                if self.released and self._mine is not None:
                    self._remove()
            finally:
                self._lock.release()

    def _check(self) -> None:
        """:meth:`check`'s work, its lock held."""
        if self.lost is not None:
            raise LeaseLostError(self.lost)
        if self.pending:
            late(self)
            return
        was = self._folder
        folder, claims = self._listed()
        if self._mine is None and self.released:   # (its run ended: a late push of
            self._sure_until = 0.0   # it goes on unclaimed, lists at each commit, and
            return                   # stops once another claims: relaunch50)
        if self._mine is None:   # (made anew: its folder moved, or its write failed)
            moved = was is not None and was.id != folder.id
            return self._anew(folder, claims, MOVED if moved else "")
        self._better(folder, claims)
        # None better as listed; a stale take-over needs this claim stale: not before
        # its last write that Drive answered, and the margin, are stale_s old.
        sure = self._written_at + self.sure_s
        listed = next((c for c in claims if c.owner == self.token), None)
        # (Dated ahead too: a property dated by a proxy's clock hours ahead, the right
        # Date heard again, was never renewed, and read gone elsewhere. And by its own
        # record of its last write: with no Date heard, a clock 100 s behind Drive's
        # renewed every third period, stale by Drive's dates meanwhile: attack45.)
        now, modified = server_clock.now(), None if listed is None else listed.entry.modified
        if modified is None or boot_clock() - self._written_at >= self.period_s / 2 or \
                now - modified > self.period_s / 2 or run_claims.ahead(modified, now):
            # (Answered before it could be stale: it landed before any take-over; later
            # (a renewal slow past the proof: retries, a hung request), another trainer
            # may hold the lease by then, and the next guard lists again: attackfence37.)
            self._write(folder)
            if self._remade is not None:   # (its claim removed meanwhile, made anew
                # by this write: by a taker, where the listing decides? Asked now, not
                # at the next check: lost, the claim made anew is removed: claim49)
                self._better(folder, self._claims(folder))
            if boot_clock() < sure:
                sure = self._written_at + self.sure_s
        self._remade = None   # (held: a claim made anew is this holder's claim now)
        self._sure_until = sure

    def _better(self, folder: RemoteEntry, claims: list[Claim]) -> None:
        """Lose (:meth:`_lose`) where ``claims`` show a better claim than this one."""
        # (A rival of this generation gone: a loser's its removal left; a later one took it.)
        better = [c for c in claims if c.owner != self.token and c.order < self._order
                  and (c.generation > self.generation or not self._gone(c))]
        better += lease_props.files_beside(self._mine, claims, self.token, self._gone)
        if any(c.arbiter for c in better) and lease_cas.holds(self, folder):
            # (A rival that stood back for this one, its claim listed still: lease47.)
            better = [c for c in better if not c.arbiter]
        if better:
            self._lose(min(better, key=lambda c: c.order))

    def _anew(self, folder: RemoteEntry, claims: list[Claim], why: str) -> None:
        """This claim made anew in ``folder``, settled as a new claimant's is
        (:func:`trainer.lease_settle.anew`): a trainer that claimed there between this one's
        listing and its write holds, and this one stands back (both pushed into one folder
        for the lease's proof: attacklease42). ``why``: the loss's reason (MOVED)."""
        holder = lease_settle.anew(self, folder, claims)
        if holder is not None:
            self._lose(holder, why=why)

    def guard(self) -> None:
        """The push's guard (:mod:`drivestage.push_fence`), at each point a push commits a
        file on Drive: raise :class:`LeaseLostError` where the lease is lost. No request
        while the last renewal proves that no trainer can have taken it over as stale yet
        (the renewal thread keeps it so: every period, against :attr:`sure_s`); else (this
        machine slept, Drive failed the renewals) a :meth:`check`: one listing and a
        renewal, proving it for :attr:`sure_s` more. So a push adds a listing per
        :attr:`sure_s` at most, whatever its files. A ``--take-over`` of a live lease is
        found by the renewal thread (``lost``), and its taker waits for this trainer's claim
        to be gone before its first push (:meth:`after_predecessor`).

        Not taken yet (Drive down at the start, and still at this push's :meth:`check`): each
        commit tries to take it as that check does (:func:`trainer.lease_pending.late`),
        where Drive answered anything since the last try failed
        (:func:`server_clock.answered`): the first commit
        that reaches Drive once it is back is guarded (a live claim of another: lost; none:
        held), and while it still fails a push pays no try more (each costs a listing and
        a claim's write with their retries: a push of many files, one try per commit, paid
        them at each one). Still not taken after that: :class:`LeaseNotTakenError` (the
        guard is unsure): a new file that replaces nothing goes, the push's first removal or
        update in place stops it there (guards40: lease39 let that request through, and it
        reached Drive as Drive came back, in a folder another trainer may hold)."""
        if self.lost is not None:
            raise LeaseLostError(self.lost)
        if self._due() or self._elsewhere():   # (the push made its folder anew: the claim?)
            with self._guarding:   # (the push's threads at once: one checks, the others see it)
                if self._due() or self._elsewhere():
                    self.guard_checks += 1
                    self.check()
        if self.pending:   # (neither held nor lost: only a new file that replaces nothing goes)
            raise LeaseNotTakenError(not_taken(self.drive.spec, self.why_pending))

    def _proved(self) -> bool:
        """Whether the lease is held and proved now without a request (:meth:`guard` asks
        none): a check under way need not be waited for. Its answer may find a
        ``--take-over`` (lost), but that taker pushes nothing before this claim is gone or
        stale (:meth:`after_predecessor`), not before this proof ends."""
        return self.lost is None and not self.pending and not self.released \
            and self._mine is not None and self._remade is None \
            and not self._due() and not self._elsewhere()

    def _due(self) -> bool:
        """Whether :meth:`guard` checks now (see there)."""
        if self.pending:   # (a try failed, Drive silent since: this one would fail too)
            return self._late_failed is None or server_clock.answered() != self._late_failed
        # (A property's date is this machine's clock where no Date is heard: a trainer whose
        # clock is ahead of it may take it over at once; every commit lists: leaselefts43.)
        return boot_clock() >= self._sure_until or (
            lease_props.is_property(self._mine) and not server_clock.dated())

    def _lose(self, holder: Claim, how: str = "took the run's lease on {} over",
              why: str = "") -> None:
        """Say the lease is ``holder``'s, ask the run to stop, raise :class:`LeaseLostError`."""
        # (A later run of this process, this one's ended: so said, not "pid <its own pid>",
        # read as another trainer of this machine: relaunch51.)
        who = lease_mine.LATER if lease_mine.later(holder, self) else holder.who
        taken = (f"{who} {how.format(self.drive.spec)} "   # (its date ahead, or no
                 f"({renewed_text(holder, lead='')}{why})")   # Date: the time seen unchanged)
        self.lost = (f"{taken}: this trainer pushes nothing more there, its "
                     f"checkpoints stay in {self.drive.local_dir} only")
        logger.warning("%s", self.lost)
        if self._remade is not None and self._mine is not None \
                and self._mine.id == self._remade:   # (a second claim, else: claim49)
            lease_write.drop_remade(self)
        self.on_lost(taken)
        raise LeaseLostError(self.lost)

    def _listed(self) -> tuple[RemoteEntry, list[Claim]]:
        """The folder and its claims: as acquired, while the path leads there and its listing
        shows this claim (a resolve is a search more per push: attacklease36); else the path's,
        made where it leads nowhere (attackpush41). Its claim to be made there (the folder
        moved on Drive, or its write failed), a live claim of another there, property or
        file, took the lease meanwhile (both pushed there: attacklease41)."""
        # (A file's holder: no property beside it while its lease is proved; unproved (it
        # slept, Drive failed its renewals), a property may have taken it over: leasefull42.)
        props = lease_props.is_property(self._mine) or boot_clock() >= self._sure_until
        store, path = self.drive.store_at()
        if self._folder is not None and not self._elsewhere():
            claims = self._claims(self._folder, props)
            if any(c.owner == self.token for c in claims):
                return self._folder, claims
        was, self._folder = self._folder, store.make_folders(path)
        claims, moved = self._claims(self._folder), was is not None and was.id != self._folder.id
        others = [c for c in claims if c.owner != self.token and not self._gone(c)]
        if others and (moved or self._mine is None):
            holder = min(others, key=lambda c: c.order)
            if moved and was is not None and beside(self, was):   # (restored: lease44)
                self._lose(holder, HELD + " {}", TWIN.format(was.id, self._folder.id,
                                                             self.drive.spec))
            self._lose(holder, why=MOVED if moved else "")
        if moved and self._mine is not None and all(c.entry.id != self._mine.id for c in claims):
            self._delete(self._mine)   # (made anew below, in the path's folder; one moved
            self._mine = None          # there with the run's files is kept: attacklease42)
        return self._folder, claims

    def _elsewhere(self) -> bool:
        """Whether the path leads elsewhere than the claim's folder, as the push found last."""
        store, path = self.drive.store_at()
        known = store.known_folder(path)
        return self._folder is not None and known is not None and known != self._folder.id

    def _at_path(self) -> list[Claim]:
        store, path = self.drive.store_at()
        try:
            return self._claims(store.resolve(path))
        except NotFoundError:
            return []

    def holder(self) -> Optional[Claim]:
        """The live claim that holds the lease now (None: no trainer of the run renews one):
        for ``trainer status``, which holds none itself."""
        live = [c for c in self._at_path() if not self._gone(c)]
        return min(live, key=lambda c: c.order) if live else None

    def last_claim(self) -> Optional[Claim]:
        """The claim that holds the lease now, or held it last where none is live (its
        trainer gone, the claim left): for ``trainer status`` (:func:`trainer.status.lease`)."""
        claims = self._at_path()
        return last_holder(claims, self.stale_s) if claims else None

    def after_predecessor(self) -> None:
        """Before this trainer's first push after a ``--take-over`` of a live lease: wait
        until the trainer it took it from is gone (:func:`trainer.lease_held.after`)."""
        after(self)

    def _renewing(self) -> None:
        while not self._done.wait(self.period_s):
            try:
                self.check()
                with self._lock:   # (a twin folder the path leads to, held: leaselefts43)
                    try:
                        twin_held(self)
                    finally:   # (a release that gave up waiting for it: as in check())
                        if self.released and self._mine is not None:
                            self._remove()
            except LeaseLostError:
                return
            except DriveStageError as exc:   # an outage: the next period tries again
                logger.debug("lease renewal failed: %s", exc)

    def release(self) -> None:
        """Stop renewing and remove this trainer's claim (the next run starts at once).
        Released, it claims nothing again; a push of its run still under way (an upload
        thread that outlived the run's grace, in a notebook) lists the claims at each commit,
        and stops once another trainer claims the run (:meth:`check`)."""
        # Bounded: a renewal or a push's check may be waiting on Drive (a request held past
        # the run's grace: the stop's return waited 40 s for two of them, relaunch50), or
        # the removal itself (lease51b). (Not shorter with a short period: a renewal slowed
        # by a loaded machine would be left to remove the claim itself. A process that exits
        # then waits for it, bounded: relaunch51.) Shorter where the last renewal still
        # proves the lease (lease52). Sets ``released``: :func:`trainer.lease_end.release`.
        lease_end.release(self, RELEASE_WAIT_S)

    # -- the claims
    def _claims(self, folder: RemoteEntry, props: bool = True) -> list[Claim]:
        """The claim files listed in ``folder``, and (``props``) its property claims."""
        claims, store = self._reader.claims(folder), self.drive.store_at()[0]
        if props and lease_props.usable(store):
            claims += lease_props.claims(store, folder)
        return claims

    def _write(self, folder: RemoteEntry, released: bool = False, fallback: bool = False) -> float:
        """Write this claim (:func:`trainer.lease_write.write`); returns when it was sent."""
        return lease_write.write(self, folder, released, fallback)

    def _remove(self) -> None:
        lease_write.remove(self)

    def _delete(self, entry: RemoteEntry) -> bool:
        """Remove ``entry``; False where Drive refused (the claim is left)."""
        return lease_write.delete(self, entry)

    def _gone(self, claim: Claim) -> bool:
        """Whether ``claim``'s holder is gone (:func:`trainer.lease_claims.gone`); once so, until
        its date changes (:attr:`_lapsed`)."""
        if claim.entry.id in self._lapsed and self._lapsed[claim.entry.id] == claim.entry.modified:
            return True
        if gone(claim, self.stale_s, self.token) or lease_mine.ended(claim):
            self._lapsed[claim.entry.id] = claim.entry.modified
            return True
        return False

    def _held_text(self, holder: Claim) -> str:
        return held_text(self.drive.spec, holder, self.stale_s)


# (Where a trainer takes its lease, and the leases this process holds: trainer.lease_held,
# named here for every caller; imported last, as that module imports RunLease from this one.)
from trainer.lease_held import TWIN, after, beside, held_folder, release_all, twin_held, \
    watch  # noqa: E402
