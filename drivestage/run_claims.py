"""A training run's lease claims, as a command that is no push reads them
(``drivestage dedupe``): whether a live run holds a folder now.

A trainer holds its run folder with a *claim*, a small file ``trainer-lease-<token>.json``
it renews every ``drive.lease_minutes`` (:mod:`trainer.lease`; the name is this module's,
:data:`PREFIX`, :data:`SUFFIX`). Its pushes check their lease at every commit, but a
command beside them checks nothing: ``dedupe`` moves what a newer same-named folder holds
into the oldest and trashes the newer once empty. Merged under a live run, the run's own
claim moved into the other folder (the run then found itself without one, or another
trainer of that folder found a claim of a higher generation and stopped as taken over), and
a folder the run still pushed into by its id went to the trash with what it sent next.
:func:`live` tells such a claim; ``dedupe`` refuses the folder (:func:`refuse_held`).

A claim is live unless released, silent (its file's modified time, by the store's clock)
for longer than the ``stale_s`` it records, or the claim of a process of this machine that
has ended. A claim from before ``stale_s`` was written counts as live for
:data:`OLDEST_STALE_S`, the longest any trainer's lease lasts (``drive.lease_minutes`` 60).
Only small claim files are read, and at most :data:`MAX_READ` per folder.

Where Drive's storage was full, a trainer's claim is a PUBLIC property of the folder
(``trainer-lease-<token>``, :mod:`trainer.lease_props`): read too (one request a folder),
and judged as a file is, by the ``stale_s`` it records (attacklease41: dedupe merged under
it; leasefull42: one from before it recorded ``stale_s`` held a pair for 2 h).

Whether a claim's holder is gone is decided here once (:func:`gone`, with
:func:`stale_after` and :func:`silent_for`): the trainer's take-over
(:mod:`trainer.lease_claims`), ``trainer status`` and ``dedupe`` read the same rule.

A claim dated ahead of Drive's clock by more than :data:`AHEAD_S` (a property whose writer's
clock ran ahead and heard no ``Date``; a file's date a client set; garbage) says nothing of
when it was last renewed: read by its date it was renewed "0 s ago" until that date passed,
a day, and held the run against every trainer and ``dedupe`` so long (attacklease42). Such
a claim is judged by how long this machine has seen it unchanged (:func:`silent_for`: the
first sight of each date is kept in drivestage's state folder, so a ``dedupe`` or ``trainer
status`` run again later counts from the first; a renewal is a new date, seen anew); and so
is every claim where Drive's answers carry no ``Date`` (a proxy strips it), as this
machine's clock is then all it has, or one past ``server_clock.TOLERANCE`` from this
machine's clock (a proxy's skewed clock: skew44), as neither clock is then trusted.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import socket
import time
from dataclasses import dataclass
from typing import Any, Iterable, Optional

from drivestage.drive import server_clock
from drivestage.errors import DriveStageError, NotFoundError, RemoteChangedError, RunHeldError
from drivestage.store import RemoteEntry, RemoteStore
from drivestage.temps import namespace_tag

PREFIX, SUFFIX = "trainer-lease-", ".json"
#: A running ``drivestage mirror``'s claim on its destination, a PUBLIC property
#: (:mod:`drivestage.mirror_claim`): what dedupe refuses to merge under, as a run's lease.
MIRROR_PREFIX = "drivestage-mirror-"
#: A claim that does not say its ``stale_s``: stale only after the longest lease a trainer
#: takes (``drive.lease_minutes`` at most 60: two periods and 30 s).
OLDEST_STALE_S = 2 * 3600.0 + 30.0
#: Claims read per folder, the newest first (a folder littered by a fault: the newest).
MAX_READ = 20
_MAX_BYTES = 4096
#: The ``kind`` of the entry a property claim stands in (:class:`Holder`'s ``entry``).
PROPERTY_KIND = "trainer-lease-property"
#: A claim's generation is below this: trainers count them up by one from 1. A claim of a
#: larger one is garbage, no one's: counted, the next claim's property (key and value) passed
#: Drive's 124 bytes and was refused, and the lease stayed not taken (attacklease42).
MAX_GENERATION = 1 << 31
#: A claim dated ahead of Drive's clock by more than this is judged by how long it was seen
#: unchanged, not by its date (:func:`silent_for`): Drive's clock as heard differs from a
#: writer's reading of it by a second's truncation and a request's time on the way.
AHEAD_S = server_clock.TOLERANCE
#: The first sight of each claim dated ahead (:func:`silent_for`), in the state folder.
SEEN_FILE = "claims-seen.json"


def stale_after(period_s: float) -> float:
    """A lease renewed every ``period_s`` is stale (its holder gone) after this long without
    a renewal: two periods (one missed renewal is no death) and a margin for a slow request
    (at most 30 s). What a claim records as its ``stale_s``."""
    return 2 * period_s + min(30.0, period_s)


def gone(released: bool, silent_s: float, stale_s: float, machine: str, host: str,
         pid: int) -> bool:
    """Whether a claim's holder is gone: released, silent (seconds since its last renewal) for
    longer than ``stale_s``, or a process of this machine that has ended. The one rule: the
    trainer's take-over and ``dedupe`` both ask it."""
    return released or silent_s > stale_s or _ended(machine, host, pid)


def ahead(written: float, now: float) -> bool:
    """Whether a claim dated ``written`` is dated ahead of Drive's clock ``now`` by more than
    :data:`AHEAD_S`: its date says nothing of its last renewal (:func:`silent_for`)."""
    return written > now + AHEAD_S


def silent_for(claim_id: str, written: float, now: float, later: Optional[float] = None
               ) -> float:
    """Seconds since the claim ``claim_id`` (dated ``written``) was last renewed, at ``now``
    (Drive's clock; ``later``: the later of it and this machine's, for the test of a date
    :func:`ahead`): by its date; where dated ahead, since this machine first saw it with
    that date (kept in the state folder, for the next process too; none can be kept: 0,
    live); so too where the last answer carried no ``Date`` (a proxy stripped it): this
    machine's clock, all it knows then, may differ from the writer's or Drive's by any
    amount, and a claim read stale at once by it was taken over from a live trainer. The
    one rule for a claim's silence: the trainer, ``trainer status`` and ``dedupe`` read
    it."""
    if server_clock.dated() and not ahead(written, now if later is None else later):
        return max(0.0, now - written)   # (else: no Date heard, now is this machine's clock)
    if not server_clock.dated():   # (sights by this machine's clock, as every process of
        # it notes them where Drive's is not known: not by a skewed Date's (skew44), nor by
        # one kept from it once the Date went, which read a live claim seen through a proxy
        # three hours ahead as three hours unchanged: attack45)
        now = time.time()
        key = f"{claim_id}@{written!r}"   # (this clock a step moves: _since)
        return max(0.0, _since(key, _first_seen(key, now), now))
    return max(0.0, now - _first_seen(f"{claim_id}@{written!r}", now))


#: This process's first reading of each sight read by this machine's clock (its key -> that
#: clock and the boot clock then): from that reading on, the time seen unchanged is counted
#: on the boot clock, which no step of the wall clock moves (NTP, a user setting it): a sight
#: read by the wall clock aged by the step, and a live claim read an hour unchanged after an
#: hour's step was taken over (attack44's left item; attack45). Drive's clock, where known,
#: is measured again at each answer. A day's at most.
_READ: dict[str, tuple[float, float]] = {}


def _boot_clock() -> float:
    """Seconds on this machine's boot clock (it counts a suspend; no step moves it)."""
    boot = getattr(time, "CLOCK_BOOTTIME", None)
    return time.clock_gettime(boot) if boot is not None else time.monotonic()


def _since(key: str, first: float, now: float) -> float:
    """Seconds since the sight ``first`` of ``key`` (noted by any process of this machine),
    at ``now`` (its clock): up to this process's first reading of it by that clock, from
    then on by the boot clock."""
    boot = _boot_clock()
    if len(_READ) > 1000:   # (a claim renewed each minute: a new key each; no lock: see
        for old, (_, at) in list(_READ.items()):   # _first_seen)
            if boot - at > 86400.0:
                _READ.pop(old, None)
    read_at, read_boot = _READ.setdefault(key, (now, boot))
    return (read_at - first) + (boot - read_boot)


#: First sights this process noted where the state folder kept none (read-only, a damaged
#: file): a pending trainer there read a dead claim as live for ever (its first sight "now"
#: at each check), and never took the lease over (attack44). A day's at most, as the file.
_SEEN_HERE: dict[str, float] = {}


def _first_seen(key: str, now: float) -> float:
    """When (Drive's clock) this machine first saw the claim version ``key``; ``now`` where
    none was (noted now); where the state folder cannot be written, when this process first
    saw it."""
    from drivestage.state import JsonFile, state_dir

    def note(data: dict[str, Any]) -> None:
        for old, v in list(data.items()):   # (a day's sights at most: a few bytes each;
            if not isinstance(v, (int, float)) or not 0 <= now - v < 86400.0:   # no lock:
                data.pop(old, None)   # list(), pop() and setdefault() are atomic on a dict)
        data.setdefault(key, now)
    try:
        seen = JsonFile(state_dir() / SEEN_FILE)
        first = seen.read().get(key)
        if not isinstance(first, (int, float)) or not 0 <= now - first < 86400.0:
            first = seen.update(note)[key]
        return float(first)
    except (OSError, DriveStageError):   # (none kept there: this process's own sight)
        note(_SEEN_HERE)
        return _SEEN_HERE[key]


def no_ones(claim: "PropertyClaim", now: float, claim_id: str,
            later: Optional[float] = None) -> bool:
    """Whether a property claim's holder is gone (:func:`gone`) at ``now`` (the store's
    earlier clock: a claim reads as fresh, never as stale; ``later``: :func:`silent_for`'s);
    ``claim_id``: its entry's id (:func:`property_entry`)."""
    return gone(claim.released, silent_for(claim_id, claim.written, now, later),
                claim.stale_s, claim.machine, claim.host, claim.pid)


@dataclass(frozen=True)
class PropertyClaim:
    """A property claim's value (``gen|written|made|pid|machine|released|stale_s|host``; its
    times Drive's clock as its writer heard it: a property has no dates of its own). A value
    of seven fields (no ``stale_s``: room41's first format) reads as :data:`OLDEST_STALE_S`."""

    generation: int
    written: float
    made: float
    pid: int
    machine: str
    released: bool
    host: str
    stale_s: float = OLDEST_STALE_S


def property_value(claim: PropertyClaim, room: int) -> str:
    """``claim`` as a property's value of at most ``room`` bytes (the host cut to fit)."""
    value = f"{claim.generation}|{claim.written:.1f}|{claim.made:.1f}|{claim.pid}|" \
            f"{claim.machine}|{1 if claim.released else 0}|{claim.stale_s:.1f}|"
    left = max(0, room - len(value.encode()))
    return value + claim.host.encode()[:left].decode("utf-8", "ignore")


def property_claim(value: str) -> Optional[PropertyClaim]:
    """The claim a lease property's ``value`` holds; None where it holds none (no one's)."""
    parts = value.split("|", 7)   # (a host name holds no "|")
    try:
        stale_s = float(parts[6]) if len(parts) == 8 else OLDEST_STALE_S
        claim = PropertyClaim(int(parts[0]), float(parts[1]), float(parts[2]), int(parts[3]),
                              parts[4], parts[5] == "1", parts[-1], stale_s)
    except (ValueError, IndexError):
        return None
    if not 0 < claim.pid < 1 << 31 or not 0 < claim.generation < MAX_GENERATION \
            or not math.isfinite(claim.written) \
            or not math.isfinite(claim.made):
        return None
    if not math.isfinite(claim.stale_s) or claim.stale_s <= 0:
        claim = PropertyClaim(*dataclasses.astuple(claim)[:7])   # (garbage: the longest)
    return claim


def property_entry(folder_id: str, key: str, written: float, made: float) -> RemoteEntry:
    """The entry a property claim stands in: its dates as the value says them, its id the
    folder's and the key (never a Drive id), its parent the folder."""
    return RemoteEntry(f"{folder_id}#{key}", key, False, modified=written, parent_id=folder_id,
                       has_content=False, kind=PROPERTY_KIND, created=made)


@dataclass(frozen=True)
class Holder:
    """A live claim: who holds the folder, and how long ago it last renewed (seconds)."""

    entry: RemoteEntry
    host: str
    pid: int
    silent_s: float
    stale_s: float
    #: How far its date is ahead of Drive's clock (0: not :func:`ahead`): its
    #: ``silent_s`` is then the time this machine has seen it unchanged.
    ahead_s: float = 0.0


def is_claim(name: str) -> bool:
    """Whether ``name`` is a lease claim's."""
    return name.startswith(PREFIX) and name.endswith(SUFFIX)


def live(store: RemoteStore, items: Iterable[RemoteEntry]) -> Optional[Holder]:
    """The live claim among ``items`` (a folder's listing), the most recently renewed; None
    where there is none."""
    now, later = store.clock()   # (the earlier: a claim reads as fresh, never as stale)
    found = sorted((e for e in items if not e.is_dir and is_claim(e.name)
                    and e.size <= _MAX_BYTES), key=lambda e: e.modified, reverse=True)
    for entry in found[:MAX_READ]:
        holder = _read(store, entry, now, later)
        if holder is not None:
            return holder
    return None


def refuse_held(store: RemoteStore, folders: Iterable[tuple[RemoteEntry, list[RemoteEntry]]],
                verb: str, above: Iterable[RemoteEntry] = ()) -> None:
    """Raise :class:`RunHeldError` where one of ``folders`` (each with its listing) holds a
    live claim (a run's lease, a mirror's claim), or one of the folders ``above`` them holds
    a mirror's or a run's property claim: one line naming it, its holder and what to do.
    ``verb``: what the command would do to it (``merging it``)."""
    folders = list(folders)
    found: list[tuple[RemoteEntry, Optional[Holder], Optional[RemoteEntry]]] = [
        (f, live(store, items) or _by_property(store, f), None) for f, items in folders]
    found += [(folders[0][0], _by_property(store, a), a) for a in above]
    for folder, holder, at in found:
        if holder is None:
            continue
        wait = _span(max(0.0, holder.stale_s - holder.silent_s))
        inside = "" if at is None else f" is inside {store.describe(at)} (id {at.id}), which"
        who = f"pid {holder.pid} on {holder.host}, {renewed_text(holder.silent_s, holder.ahead_s)}"
        if holder.entry.name.startswith(MIRROR_PREFIX):
            raise RunHeldError(
                f"{store.describe(folder)} (id {folder.id}){inside} is mirrored into now "
                f"(a drivestage mirror's claim {holder.entry.name}: {who}): {verb} would "
                "move files under its pushes. Stop that mirror first (or wait until its "
                f"claim is stale: {wait} without a renewal), then run this again")
        what = ", a property of the folder" if holder.entry.kind == PROPERTY_KIND else ""
        raise RunHeldError(
            f"{store.describe(folder)} (id {folder.id}){inside} is held by a training run now "
            f"(its lease {holder.entry.name}{what}: {who}): {verb} would move files under "
            f"that run's pushes. Stop that run first (or wait until its lease is stale: "
            f"{wait} without a renewal), then run this again")


def _by_property(store: RemoteStore, folder: RemoteEntry) -> Optional[Holder]:
    """The live property claim (a run's lease, a mirror's claim) on ``folder``, the most
    recently written; None: none."""
    (now, later), found = store.clock(), []
    for key, value in store.public_properties(folder).items():
        claim = property_claim(value) if key.startswith((PREFIX, MIRROR_PREFIX)) else None
        entry = property_entry(folder.id, key, claim.written, claim.made) if claim else None
        if claim is None or entry is None or no_ones(claim, now, entry.id, later):
            continue
        found.append(Holder(entry, claim.host, claim.pid,
                            silent_for(entry.id, claim.written, now, later), claim.stale_s,
                            _ahead_by(claim.written, later)))
    return min(found, key=lambda h: h.silent_s) if found else None


def _this_host(host: str) -> bool:
    """Whether ``host`` (a claim's, of this machine's tag) is this machine's name, or the
    start of it: a property claim cuts the name to fit Drive's 124 bytes (37-39 of a K8s
    pod's 63), and this machine's own dead claim waited out its stale_s, read as another's
    (lefts44b). The tag (boot id and pid namespace) is what tells machines apart: a pid of
    the same namespace is this machine's to look up, whatever its name."""
    here = socket.gethostname()
    return host == here or (bool(host) and here.startswith(host))


def _ended(machine: str, host: str, pid: int) -> bool:
    """Whether the claim is a process's of this machine that has ended (no one's)."""
    if machine != namespace_tag() or not _this_host(host) or not 0 < pid < 1 << 31:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        pass
    return False


def _read(store: RemoteStore, entry: RemoteEntry, now: float, later: float
          ) -> Optional[Holder]:
    """``entry``'s claim when it is live; None where it is not, or holds none (damaged: larger
    than any claim written, not JSON, nested too deep, or without a holder)."""
    if not 0 <= entry.size <= _MAX_BYTES:
        return None   # (never read whole: another client's, a damaged upload)
    try:
        data = json.loads(b"".join(store.read_range(entry, 0, entry.size)) or b"{}")
        pid, host = int(data["pid"]), str(data["host"])
        stale_s = float(data.get("stale_s", OLDEST_STALE_S))
    except NotFoundError:
        return None   # (removed since the listing: its run ended)
    except RemoteChangedError:   # (renewed since the listing: live, whoever holds it)
        return Holder(entry, "a host not read", 0, 0.0, OLDEST_STALE_S)
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
        return None   # (no claim: no one's; RecursionError: nested too deep, was a traceback)
    if not math.isfinite(stale_s) or stale_s <= 0:
        stale_s = OLDEST_STALE_S
    silent = silent_for(entry.id, entry.modified, now, later)
    if gone(data.get("released") is True, silent, stale_s, str(data.get("machine", "")), host,
            pid):
        return None
    return Holder(entry, host, pid, silent, stale_s, _ahead_by(entry.modified, later))


def renewed_text(silent_s: float, ahead_s: float) -> str:
    """A claim's last renewal as a line says it: ``renewed 20 s ago``; dated ahead of Drive's
    clock (``ahead_s`` > 0), that and how long it has been seen unchanged (no "renewed 0 s
    ago" for a claim dead since a day it is dated ahead); so too where no ``Date`` was
    heard (:func:`silent_for`: the time seen unchanged, not a renewal's age)."""
    if ahead_s > 0:
        return (f"dated {_span(ahead_s)} ahead of Drive's clock, so told by its changes: "
                f"seen unchanged for {_span(silent_s)}")
    skew = server_clock.skew()
    if skew is not None:
        return (f"of unknown age, Drive's Date {_span(abs(skew))} "
                f"{'ahead of' if skew > 0 else 'behind'} this machine's clock, so told by its "
                f"changes: seen unchanged for {_span(silent_s)}")
    if not server_clock.dated():
        return (f"of unknown age, Drive's answers carrying no Date, so told by its changes: "
                f"seen unchanged for {_span(silent_s)}")
    return f"renewed {silent_s:.0f} s ago"


def _ahead_by(written: float, now: float) -> float:
    return written - now if ahead(written, now) else 0.0


def _span(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f}".rstrip("0").rstrip(".") + " min"
