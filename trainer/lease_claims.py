"""The run's lease claims as read from ``drive.logs`` (:mod:`trainer.lease` holds the lease).

A claim is a small file ``trainer-lease-<token>.json``: its owner (a random token), the
host, the pid, this boot's pid namespace and a generation number (``released``: its run
ended where Drive refused the claim's removal). Its times are Drive's own (the file's
``modifiedDate``: the last renewal), read against Drive's clock as its answers say it
(:func:`drivestage.drive.server_clock.now`). Split from :mod:`trainer.lease` (its 500-line
cap): what a claim is, how claims are listed and read (each read once per version), whether
a claim's holder is gone, the holder as ``trainer status`` shows it, and the stop's name.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from typing import Any, Optional

from drivestage.drive import server_clock
from trainer.errors import ConfigError
from drivestage.errors import NotFoundError, RemoteChangedError
# (PREFIX, SUFFIX: one name for claims; drivestage dedupe reads them too)
from drivestage import run_claims
from drivestage.run_claims import MAX_GENERATION, PREFIX, SUFFIX
from drivestage.store import RemoteEntry

MAX_CLAIMS = 20   # (read per listing: a folder littered by a fault: the newest are read)
#: Listings of the claims' folder where a claim changed between its listing and its read.
MAX_LISTS = 3
#: Reads by id (its metadata, then its bytes) of a claim that changed after every listing.
MAX_READS_BY_ID = 2

#: What a trainer that found the lease held when it first reached Drive (Drive was down at
#: its start: :func:`trainer.lease_pending.late`) says of the holder: nothing was taken
#: over, so its stop is not named a take-over (:func:`stop_name`).
HELD = "holds the run's lease on"
#: Why a claim lost to another in the folder its path leads to now (RunLease._listed).
MOVED = ("; this trainer's claim was in the folder the path led to before, moved, renamed or "
         "trashed on Drive since")

#: How a trainer took over a claim :func:`unrenewed` found (the take-over's line says it).
AHEAD = ("its holder is gone: not renewed while this trainer watched it, its date ahead of "
         "Drive's clock")


@dataclass(frozen=True)
class Claim:
    """One claim file as listed and read."""

    entry: RemoteEntry
    owner: str
    host: str
    pid: int
    machine: str        # this boot's pid namespace (trainer: drivestage.temps.namespace_tag)
    generation: int
    #: Its run ended, but Drive refused the claim's removal (a shared drive's Contributor
    #: deletes nothing): no one's, at once.
    released: bool = False
    #: A property of the run folder, not a file (:mod:`trainer.lease_props`: Drive's
    #: storage was full).
    on_folder: bool = False
    #: Its trainer names its claim in the run folder's arbiter (:mod:`trainer.lease_cas`):
    #: it stands back where the arbiter names another, whatever the listing shows.
    arbiter: bool = False

    @property
    def order(self) -> tuple[int, float, str]:
        """Sorts the holder first: the highest generation, then made first, then the id."""
        return (-self.generation, self.entry.created or self.entry.modified, self.entry.id)

    @property
    def who(self) -> str:
        return f"pid {self.pid} on {self.host}"


def span_text(seconds: float) -> str:
    """A wait as lines say it: ``"40 s"``, ``"2.5 min"`` (age_text's whole minutes said 2 min
    of the default 150 s)."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f}".rstrip("0").rstrip(".") + " min"


def is_claim(name: str) -> bool:
    """Whether ``name`` is a lease claim's (what a push never sends and retention never
    counts: it is made on Drive only)."""
    return name.startswith(PREFIX) and name.endswith(SUFFIX)


def silent(claim: Claim) -> float:
    """Seconds since ``claim`` was last renewed, by Drive's clock; dated ahead of it, since
    this machine first saw it unchanged (:func:`drivestage.run_claims.silent_for`)."""
    return run_claims.silent_for(claim.entry.id, claim.entry.modified, server_clock.now())


def ahead_s(claim: Claim) -> float:
    """How far ``claim``'s date is ahead of Drive's clock (0: not past
    :data:`drivestage.run_claims.AHEAD_S`): its renewals are told by its changes only."""
    now = server_clock.now()
    return claim.entry.modified - now if run_claims.ahead(claim.entry.modified, now) else 0.0


def renewed_text(claim: Claim, lead: str = "last ") -> str:
    """``last renewed 20 s ago`` (whole minutes past 90 s; ``lead``: its first word), or,
    where its date tells nothing of its renewals (dated ahead of Drive's clock, or no
    ``Date`` heard), how long it has been seen unchanged
    (:func:`drivestage.run_claims.renewed_text`: not "renewed 0 s ago" for a claim dead
    since a day it is dated ahead)."""
    from trainer.drive import age_text

    ahead = ahead_s(claim)
    if ahead or not server_clock.dated():
        return run_claims.renewed_text(silent(claim), ahead)
    return f"{lead}renewed {age_text(silent(claim))} ago"


def gone(claim: Claim, stale_s: float, token: str = "") -> bool:
    """Whether ``claim``'s holder is gone: silent for ``stale_s``, released, or a process of
    this machine that has ended (never the claim of ``token``: this trainer's own)."""
    return claim.owner != token and run_claims.gone(   # (the one rule: dedupe's too)
        claim.released, silent(claim), stale_s, claim.machine, claim.host, claim.pid)


def unrenewed(live: list[Claim], first: dict[str, tuple[float, float]],
              stale_s: float, now: float) -> set[str]:
    """The ids of ``live`` claims a starting trainer watched unchanged for ``stale_s`` and
    more (``first``: each one's date, and the watch's clock when first seen; ``now``: that
    clock now): their holders are gone. Each reads live by its date, being dated ahead of
    Drive's clock (a property's writer whose clock ran ahead with no ``Date`` heard, a file's
    date set by a client): no trainer took the lease, refused until that date passed, a day
    (attacklease42)."""
    return {c.entry.id for c in live if c.entry.id in first and c.entry.modified ==
            first[c.entry.id][0] and now - first[c.entry.id][1] >= stale_s}


class ClaimReader:
    """The claims of a store's folder, each claim file read once per version (id, md5)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._read: dict[tuple[str, str], Optional[Claim]] = {}   # (id, md5) -> claim
        # A claim file's owner, host, pid and generation as last read (a renewal rewrites
        # only its times): what stands for it where it changes at every read.
        self._by_id: dict[str, Claim] = {}

    def claims(self, folder: RemoteEntry) -> list[Claim]:
        """The claims listed in ``folder`` now (the newest :data:`MAX_CLAIMS`), as listed.

        A claim renewed between the listing and its read (Drive lists the bytes it had: the
        read's md5 is another) is a live claim, not none: the folder is listed again, at
        most :data:`MAX_LISTS` times, and then it stands as last read. Read as none, a
        ``--take-over`` counted its generation without it, took the same one, and lost to
        the holder it was to take the lease from (speed38b)."""
        for listed in range(MAX_LISTS):
            out, changed = [], []
            found = [e for e in self.store.list(folder) if not e.is_dir and is_claim(e.name)]
            found.sort(key=lambda e: e.modified, reverse=True)
            for e in found[:MAX_CLAIMS]:
                key = (e.id, e.md5 or "")
                if key not in self._read or not e.md5:
                    try:
                        claim = self._parse(e)
                    except RemoteChangedError:   # (renewed since the listing)
                        changed.append(e)
                        continue
                    # (one version kept per claim: each renewal is a new one, and a run
                    # renewing each period kept them all, 2,880 a day: attacksvc39)
                    for older in [k for k in self._read if k[0] == e.id]:
                        del self._read[older]
                    self._read[key] = claim
                claim = self._read[key]
                if claim is not None:
                    self._by_id[e.id] = claim
                    out.append(dataclasses.replace(claim, entry=e))   # (as listed now)
            if not changed:
                return out
        for e in changed:   # (still changing: as last read, where it was read once)
            if e.id in self._by_id:
                out.append(dataclasses.replace(self._by_id[e.id], entry=e))
                continue
            # Never read: read by id, as it is now (Drive's listings lag a renewal by
            # seconds, its reads by id do not; dropped, a --take-over took the holder's own
            # generation and both held the lease: attacksvc39).
            claim = self._read_by_id(e)
            if claim is not None:
                self._by_id[e.id] = claim
                out.append(claim)
        return out

    def _read_by_id(self, listed: RemoteEntry) -> Optional[Claim]:
        """The claim ``listed`` holds now, read by its id (its metadata, then its bytes, at
        most :data:`MAX_READS_BY_ID` times); None where it is gone or holds none; raises
        :class:`RemoteChangedError` where it changed at every read (a live claim of someone
        unknown: no decision is made on the lease without it)."""
        for _ in range(MAX_READS_BY_ID):
            try:
                entry = self.store.stat(listed)
                return self._parse(entry)
            except NotFoundError:   # (removed, or trashed, since the listing)
                return None
            except RemoteChangedError:
                continue
        raise RemoteChangedError(f"the run's lease claim {listed.name} changed on Drive at each "
                                 f"of {MAX_LISTS} listings and {MAX_READS_BY_ID} reads; "
                                 "run again")

    def _parse(self, entry: RemoteEntry) -> Optional[Claim]:
        """The claim ``entry`` holds; None where it holds none (gone since the listing, not
        a claim); :class:`RemoteChangedError` where it changed since it was listed."""
        if entry.size > 4096:
            return None
        try:
            data = json.loads(b"".join(self.store.read_range(entry, 0, entry.size)) or b"{}")
            pid, generation = int(data["pid"]), int(data["generation"])
            # (pid: no process's, os.kill of it raised OverflowError; generation: run_claims)
            if not 0 < pid < 1 << 31 or not 0 < generation < MAX_GENERATION:
                return None
            return Claim(entry, str(data["owner"]), str(data["host"]), pid,
                         str(data.get("machine", "")), generation, data.get("released") is True,
                         arbiter=data.get("arbiter") is True)
        except (NotFoundError, ValueError, KeyError, TypeError,
                OverflowError):   # (a number JSON read as infinity: garbage, attackfence37)
            return None   # (gone since the listing, or not a claim: no one's)


def last_holder(claims: list[Claim], stale_s: float) -> Optional[Claim]:
    """The claim that holds the lease, or held it last where none is live (its trainer gone,
    not released): what ``trainer status`` shows. None: no claim, or only released ones."""
    live = [c for c in claims if not gone(c, stale_s)]
    if live:
        return min(live, key=lambda c: c.order)
    left = [c for c in claims if not c.released]
    return min(left, key=lambda c: c.order) if left else None


def view(claim: Claim, stale_s: float) -> dict[str, Any]:
    """``trainer status --json``'s ``lease``: who holds it (or held it last), the generation,
    seconds since its last renewal (Drive's clock), and whether it is stale (its holder gone:
    the next trainer of the run takes it over at once); ``ahead_s`` only where its date is
    ahead of Drive's clock (its age is then the time this machine saw it unchanged)."""
    return {"holder": claim.who, "host": claim.host, "pid": claim.pid,
            "generation": claim.generation, "renewed_age_s": round(silent(claim), 1),
            "stale": gone(claim, stale_s), "stale_after_s": stale_s,
            # (dated ahead of Drive's clock: renewed_age_s is the time seen unchanged)
            **({"ahead_s": round(ahead_s(claim), 1)} if ahead_s(claim) else {})}


def held_text(spec: str, holder: Claim, stale_s: float) -> str:
    """The refusal of a trainer that found the lease held (:class:`trainer.errors.
    LeaseHeldError`): who holds it, when it last renewed, what to do."""
    return (f"drive.logs {spec} is the folder of a run another trainer still trains: "
            f"{holder.who} holds its lease ({renewed_text(holder)}); two "
            f"trainers of one run overwrite each other's checkpoints there. Stop that one, or "
            f"wait {span_text(stale_s)} after it stopped renewing and start again, or start "
            "this one with --take-over (that one then stops at its next save); or give "
            "this run another drive.logs")


def stop_name(detail: Optional[str]) -> str:
    """The name of a stop the lease asked for (:data:`trainer.stopping.LEASE_LOST`), from its
    ``detail`` (:meth:`trainer.lease.RunLease._lose`'s text): a take-over, or a trainer that
    found another holding the lease when it first reached Drive (nothing taken over)."""
    if HELD in (detail or ""):
        return "another trainer holding the run's lease"
    return "the take-over of the run's lease"


def settle_seconds(default: float) -> float:
    """``TRAINER_LEASE_SETTLE`` (seconds a new claim waits before the listing that decides),
    else ``default``. ConfigError when it is no number of seconds from 0 to 60: "abc", NaN,
    -1 or 1e300 ended in the traceback of ``float()`` or ``time.sleep``, with the claim on
    Drive already (attackcli39)."""
    given = os.environ.get("TRAINER_LEASE_SETTLE", "").strip()
    if not given:
        return default
    try:
        value = float(given)
    except ValueError:
        value = float("nan")
    if not 0 <= value <= 60:
        raise ConfigError(f"TRAINER_LEASE_SETTLE={given!r} is not a number of seconds from 0 "
                          "to 60 (2 by default; 0 against the emulator)")
    return value


def boot_clock() -> float:
    """Seconds on a clock that counts the time this machine slept (suspended: a laptop's lid
    closed), which :func:`time.monotonic` does not on Linux: a lease that lapsed while this
    machine slept is not taken for one renewed a moment ago."""
    boot = getattr(time, "CLOCK_BOOTTIME", None)
    return time.clock_gettime(boot) if boot is not None else time.monotonic()
