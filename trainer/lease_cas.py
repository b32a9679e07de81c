"""The run's lease decided by a compare-and-swap on Drive (:mod:`trainer.lease` holds it).

Drive v2 refuses a ``files.patch`` that names an etag (``If-Match``) the item no longer has
(412 conditionNotMet; fidelity46). So the run folder carries one PUBLIC custom property,
:data:`KEY`, the *arbiter*: ``"<generation> <token> <claim file id>"``, the claim that holds
the lease. It is written only by a patch naming the etag of the folder as last read (one
``files.get``, strongly consistent: no listing is involved), so of two trainers that read the
same folder and write, exactly one's write lands; the other's is refused, it reads again and
decides (:func:`take`, :func:`renew`).

Why the folder, and not one lease file: the folder is there before any trainer (a lease file
would first have to be made, and two creates make two files, one hidden from the other by
a listing that lags); a patch of its properties needs no storage (a full Drive); and a read
of it by id shows every write at once. Its etag changes with any change to the folder (its
own properties: a push's run mark, a claim of :mod:`trainer.lease_props`; on real Drive
perhaps a child added, which public sources do not settle: the emulator keeps a folder's etag
when a child is added, measured by lease47). A write refused for such a change is no loss:
the trainer reads again, finds the arbiter as it left it, and writes again, at most
:data:`MAX_SWAPS` times (a renewal then holds as its last read says; a take-over fails, one
line, and is tried again). A refusal with the folder still as named (a server, or a proxy
rewriting etags, that matches none a client sends) is no change at all: the listing decides,
one WARNING line (it failed every start, and no trainer ever held the run: attackint47).
The opposite, a server (or a proxy dropping the header) that applies a write whatever etag
it names, makes each swap a plain write: two trainers' swaps both land and both hold. So
before its claim is first written each start asks once (:func:`probe`: a patch that writes
nothing, naming an etag no folder has; one ``files.patch`` more): applied, the listing
decides, one WARNING line, and the claim says so from its first write; refused (412), as
Drive does, the compare-and-swap holds (lease48; lease49 asks before the claim, not after
the swap). A trainer held by the listing whose claim said it obeys the arbiter (refused
every swap: the claim written again) reads the arbiter once that write landed, and stands
back for a live claim it names (:func:`_listing_only`).

What it guards:

- **Taking the lease** (:func:`take`, after a claimant's claim file is written and its
  settle's listing shows none better): the arbiter names a live claim of another (read by
  id, whatever the listing shows): that one holds, and this one stands back (a listing that
  lagged a first claim's create let a second trainer hold the lease too: attacklease36_lag).
  It names none, a claim gone (stale, released, removed) or one of an earlier generation
  this trainer takes over with ``--take-over``: the swap names this trainer's claim.
- **Each renewal** (:func:`renew`, once the claim file is written again): the swap names
  the etag of this trainer's last swap. Refused, the arbiter is read: it names another
  (taken over while this trainer was silent: a machine asleep, a request held), the lease is
  lost, and nothing more is written (a claim file the taker removed, made anew by the
  renewal's write, is removed again); it names this one (the folder changed otherwise), the
  swap is made again. After the claim file, not before: a taker reading the arbiter between
  a swap and the claim's write read the claim stale, took over, and the late write counted
  as this trainer's proof (attackint47).

Claim files stay as before (the listing's rules, dates of renewals, ``trainer status``,
``dedupe``): a trainer of 0.1.x reads them only, and a new trainer still obeys a live claim
file of one (its watch at the start); such a trainer writes no arbiter, so the two hold by
the listing's rules alone, as before. A property claim (a full Drive: lease_props) takes no
arbiter either (its rules decide by tokens).

A push's own writes (checkpoints, sidecars, removals) cannot name the folder's etag: Drive
conditions a write on the item it writes. They stay bounded by the lease's proof
(:meth:`trainer.lease.RunLease.guard`, :attr:`~trainer.lease.RunLease.sure_s`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from drivestage.drive import server_clock
from drivestage.errors import DriveStageError, NotFoundError, PermissionDeniedError, \
    PreconditionFailedError, PropertyCountLimitError, RemoteChangedError
from drivestage.store import RemoteEntry
from trainer import lease_props
from trainer.lease_claims import PREFIX, SUFFIX, Claim

if TYPE_CHECKING:
    from trainer.lease import RunLease

logger = logging.getLogger("trainer.lease")   # (its lines are the lease's)

#: The arbiter's key: not :data:`PREFIX` and a token, so no reader of property claims
#: (lease_props, ``drivestage dedupe``) takes it for one.
KEY = "trainer-lease"
#: Swaps refused for a change that was not a take-over, in a row, before the lease says
#: Drive kept changing the folder (a bound on the requests: each is a read and a write).
MAX_SWAPS = 4


@dataclass(frozen=True)
class Holder:
    """The arbiter's value: the claim that holds the lease."""

    generation: int
    token: str
    claim_id: str


def parse(value: Optional[str]) -> Optional[Holder]:
    """The holder ``value`` names; None where it names none (absent, garbage)."""
    parts = (value or "").split()
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1] or not parts[2]:
        return None
    return Holder(int(parts[0]), parts[1], parts[2])


def usable(lease: "RunLease") -> bool:
    """Whether ``lease`` holds by the arbiter: a claim file on a Drive store (not a
    directory, nor a property claim)."""
    return lease._mine is not None and not lease_props.is_property(lease._mine) and \
        lease_props.usable(lease.drive.store_at()[0])


def read(store: Any, folder: RemoteEntry) -> tuple[str, list[dict[str, str]], Optional[Holder]]:
    """The folder's etag, its properties, and the holder its arbiter names (one ``files.get``)."""
    etag, props = store.properties_as_read(folder)
    value = next((p["value"] for p in props if p["key"] == KEY and p["visibility"] == "PUBLIC"),
                 None)
    return etag, props, parse(value)


def _swap(lease: "RunLease", folder: RemoteEntry, etag: str, props: list[dict[str, str]]) -> None:
    """Name this trainer's claim in the arbiter where the folder is as read (``etag``)."""
    assert lease._mine is not None
    value = f"{lease.generation} {lease.token} {lease._mine.id}"
    props = [p for p in props if not (p["key"] == KEY and p["visibility"] == "PUBLIC")]
    props.append({"key": KEY, "value": value, "visibility": "PUBLIC"})
    store = lease.drive.store_at()[0]
    lease._cas = (store.swap_properties(folder, etag, props), props)


def claim_of(lease: "RunLease", holder: Holder) -> Optional[Claim]:
    """The claim file ``holder`` names, read by id now (None: gone, or no claim of its
    token)."""
    entry = RemoteEntry(holder.claim_id, f"{PREFIX}{holder.token}{SUFFIX}", False)
    try:
        claim = lease._reader._read_by_id(entry)
    except NotFoundError:
        return None
    return claim if claim is not None and claim.owner == holder.token else None


def take(lease: "RunLease", folder: RemoteEntry, forced: bool) -> Optional[Claim]:
    """After ``lease``'s claim is written and its listing shows none better: name it in the
    arbiter. Returns None (held) or the live claim the arbiter names, which holds (this one
    stands back). ``forced`` (``--take-over``): a live claim of an earlier generation is
    taken over too. Where the store keeps no arbiter, or sends no etag: None (the listing
    decided, as before). Where this start found ``If-Match`` ignored (:func:`probe`), the
    write is a plain one: it names this claim for trainers that start later, and this one
    holds by the listing (its claim said so from its first write)."""
    if not usable(lease):
        return None
    store = lease.drive.store_at()[0]
    named = None   # (the etag the last swap named, refused)
    for _ in range(MAX_SWAPS):
        etag, props, holder = read(store, folder)
        if not etag:
            return None
        if etag == named:   # (refused, and no one changed the folder since: attackint47)
            return _listing_only(lease, folder, _UNMATCHED, forced)
        if holder is not None and holder.token != lease.token:
            claim = _live(lease, holder, forced)
            if claim is not None:
                return claim
        try:
            _swap(lease, folder, etag, props)
        except PreconditionFailedError:   # (another wrote first: read, and decide again)
            named = etag
            continue
        except (PermissionDeniedError, PropertyCountLimitError) as exc:
            # (A folder this account may add to but not edit, or one at Drive's 30 PUBLIC
            # properties: the listing decided, as for a trainer of 0.1.x; refused, no run.)
            return _listing_only(lease, folder, str(exc), forced)
        if lease._if_match is False:   # (a plain write: the listing decides, said once)
            lease._cas = None
            return None
        made = lease._cas[0] if lease._cas is not None else ""
        if not made or made == etag:   # (an etag the write did not change: a later swap
            found = _listing_only(lease, folder, _UNCHANGED, forced)   # naming it would
            lease._if_match = False   # land too, so none is a CAS; its claim written again)
            return found
        return None
    raise RemoteChangedError(_changing(lease))


def _live(lease: "RunLease", holder: Holder, forced: bool) -> Optional[Claim]:
    """The live claim of another that ``holder`` names, which holds (``forced``: one of this
    generation or later); None: none (gone, no claim of that token, taken over)."""
    claim = claim_of(lease, holder)
    if claim is not None and not lease._gone(claim) and \
            (not forced or claim.generation >= lease.generation):
        return claim
    return None


#: Why the arbiter is not used where a swap is refused with the folder as named: a server
#: (or a proxy on the way: one that compresses answers may append ``-gzip`` to each etag)
#: that matches no etag a client sends. Taken as a change by others, every start failed
#: after MAX_SWAPS and no trainer ever held the run (attackint47).
_UNMATCHED = ("Drive, or a proxy on the way, refused a write naming the folder's etag as just "
              "read (412), the folder unchanged")


def _listing_only(lease: "RunLease", folder: RemoteEntry, why: str,
                  forced: bool) -> Optional[Claim]:
    """One WARNING line: ``lease`` is held by the listing's rules alone, as before lease47
    (its renewals swap nothing). Its claim file, just written saying that the arbiter names
    it, is written again at once saying not (one upload): a trainer that reaches Drive
    another way, its own swap landed, took the claim for one that stood back for it, and
    both held (lease48). Until that write lands such a trainer may still drop this claim, so
    the arbiter is read once it has: naming a live claim of another (``forced``: as
    :func:`take`), that one holds and this one stands back (returned); else None (held).
    Before, this trainer held where its write failed, and a trainer that swapped while the
    claim said ``arbiter`` held too, until its next check (lease49). The write failed: its
    error is raised (the claim is removed: nothing holds by a claim that says otherwise)."""
    logger.warning("%s: the run's lease is decided by the folder's listing only, as "
                   "before lease47 (its property %s was refused: %s)", lease.drive.spec, KEY, why)
    lease._cas = None
    if lease._if_match is not False:   # (else its claim said so from its first write)
        try:
            lease._write(folder)
        except DriveStageError:
            lease._remove()
            raise
    _, _, holder = read(lease.drive.store_at()[0], folder)
    if holder is None or holder.token == lease.token:
        return None
    return _live(lease, holder, forced)


#: Why the arbiter is not used where a write naming an etag the folder never had was
#: applied: a server, or a proxy dropping the header, that ignores ``If-Match``. Taken for
#: a compare-and-swap, two trainers' swaps both landed and both held (lease48).
_IGNORED = ("Drive, or a proxy on the way, applied a write naming an etag the folder never had "
            "(If-Match ignored), so it cannot tell which of two trainers wrote first")
#: Why the arbiter is not used where a swap left the folder's etag as it named.
_UNCHANGED = ("Drive, or a proxy on the way, answered a write of the folder with the etag it "
              "named (or none), so a write naming an old etag would land too")
#: The etag :func:`probe` names: one no folder has (Drive's are opaque strings of its own).
NEVER = '"drivestage-lease-probe"'


def probe(lease: "RunLease", folder: RemoteEntry) -> None:
    """Before ``lease``'s claim is first written at this start: whether Drive refuses a
    write naming an etag the folder does not have. One ``files.patch`` that writes nothing,
    naming :data:`NEVER`: refused (412, as Drive does), the arbiter is a compare-and-swap;
    applied (a server, or a proxy dropping the header, that ignores ``If-Match``), it is
    not: one WARNING line, and the claim says from its first write that the listing decides
    (``arbiter: false``), so no trainer reaching Drive another way takes it for one that
    obeys the arbiter. lease48 asked after the swap, by the swap's properties again: the
    claim said ``arbiter: true`` until it was written again, a window of some eight
    requests and the settle's wait where both held, and the plain swap could overwrite
    another's. Refused for another cause (a Contributor), the swap decides, as before."""
    store = lease.drive.store_at()[0]
    if lease._if_match is not None or not lease_props.usable(store):
        return
    try:
        store.swap_properties(folder, NEVER, None)
    except PreconditionFailedError:
        lease._if_match = True
        return
    except PermissionDeniedError:   # (not asked: its swap is refused too, and says so)
        return
    lease._if_match = False
    logger.warning("%s: the run's lease is decided by the folder's listing only, as before "
                   "lease47 (%s)", lease.drive.spec, _IGNORED)


def holds(lease: "RunLease", folder: RemoteEntry) -> bool:
    """Whether the arbiter names ``lease``'s claim now (one ``files.get``): where a listing
    shows a better claim of a trainer that obeys the arbiter, that one stood back for this
    one (its claim removed, the listing lagging) or is about to take the lease with a swap,
    which this one's next renewal finds."""
    if not usable(lease) or lease._cas is None:
        return False
    assert lease._mine is not None
    etag, props, holder = read(lease.drive.store_at()[0], folder)
    if holder is None or (holder.token, holder.claim_id) != (lease.token, lease._mine.id):
        return False
    lease._cas = (etag, props)   # (as read: the next renewal's swap names it)
    return True


def renew(lease: "RunLease", folder: RemoteEntry) -> Optional[Claim]:
    """After a renewal of ``lease``'s claim file (or before it is made again): prove the
    arbiter still names it, by a swap naming the etag of its last one. None: held (the swap landed); else the claim
    that took it over (its holder's line; the lease is lost, nothing more is written)."""
    if not usable(lease) or lease._cas is None:
        return None
    store = lease.drive.store_at()[0]
    etag, props = lease._cas
    for _ in range(MAX_SWAPS):
        try:
            _swap(lease, folder, etag, props)
            return None
        except PreconditionFailedError:
            etag, props, holder = read(store, folder)
            if holder is not None and holder.token != lease.token:
                return claim_of(lease, holder) or _unread(lease, holder)
    # (The folder changed at each swap, but each read, strongly consistent, named this
    # claim: held as of the last one, as a listing's proof is. Raised, a folder Drive changes
    # for each child a push adds, if it does, failed the push's check for its own files.)
    logger.debug("%s: the run folder changed at each of %d swaps of its lease property; "
                 "held as last read", lease.drive.spec, MAX_SWAPS)
    lease._cas = (etag, props)
    return None


def _unread(lease: "RunLease", holder: Holder) -> Claim:
    """A claim the arbiter names that could not be read (removed since): its line's stand-in."""
    entry = RemoteEntry(holder.claim_id, f"{PREFIX}{holder.token}{SUFFIX}", False,
                        modified=server_clock.now())
    return Claim(entry, holder.token, "another machine", 1, "", holder.generation)


def _changing(lease: "RunLease") -> str:
    return (f"{lease.drive.spec}: the run folder changed on Drive at each of {MAX_SWAPS} "
            "tries to write the run's lease (its property "
            f"{KEY}); run again")
