"""Drive's clock, as the ``Date`` header of its answers says it, against this machine's.

Retention retires a file by age (:mod:`drivestage.first_seen`): its first-seen mark is the
clock of the machine that wrote it, and its age is this machine's clock less the mark (and
less Drive's dates). Two machines' clocks differ: a Colab VM and a laptop, one whose clock
runs ahead by d, read a mark a correct one wrote as d older, and retired the file d early
(a day ahead: at once, while its other half was still on its way). Drive's answers carry
its own clock (``Date``, HTTP's, to the second), the same for every machine.

So every answer's ``Date`` is heard (:func:`heard`, from :mod:`drivestage.drive.connections`
for every request of the process), and where Drive's clock as last heard and this machine's
differ by more than :data:`TOLERANCE`, :func:`span` gives both, the earlier first: retention
measures an age by the earlier (nothing goes sooner than either clock says: a server or
proxy whose ``Date`` runs ahead changes nothing, and the answer's second is cut short and
was sent before it came), and writes a mark with the later (a mark never says it was seen
earlier than either clock: a machine whose clock runs behind, by a year after a dead RTC
battery, wrote marks a year old, and every other machine retired those files at once). A
mark later than the later clock is one to write again (planted, or from a clock ahead).

A ``Date`` past :data:`TOLERANCE` from this machine's clock (skew44: a proxy that sets its own
from a clock hours off, or this machine's clock off) is trusted no more than none: which of
the two is wrong is not known, and a claim another machine dated by Drive's real clock read
hours silent by a ``Date`` hours ahead (a live trainer's lease taken over, a merge under a
live mirror). :func:`dated` is then False, so claims are judged by how long this machine has
seen them unchanged (:mod:`drivestage.run_claims`), and one warning says so (:func:`skew`).

One answer is not enough to move Drive's clock as heard: a new offset (past
:data:`TOLERANCE` from the one known) is taken once two answers in a row say it (attackr248:
one proxy of a pool with a clock twelve hours ahead, heard last before a save, dated the save
twelve hours late); every answer after a real step says the new offset.

An answer a cache kept and serves again carries the ``Date`` Drive gave it when made and an
``Age``, how long the cache has kept it (RFC 9111 4.2.3): Drive's clock when it came is the
``Date`` plus the ``Age`` (clock49: read alone, an answer kept two hours said Drive's clock
ran two hours behind). An ``Age`` that cannot be read leaves the answer's ``Date`` unheard,
as an unreadable ``Date`` is.

A ``Retry-After`` given as an HTTP date is the server's clock too (skewlefts44): read against
this machine's, a proxy's 5 s came out as three hours (capped by the retry policy) or none.
:func:`drive_clock` gives the base to read it against: the answer's own ``Date`` (plus its
``Age``: a refusal a cache kept asked for its wait when Drive made it, claim50), else Drive's
clock as last heard.
"""
from __future__ import annotations

import datetime
import email.utils
import logging
import time
from typing import Any, Optional

from drivestage import latest_clock

__all__ = ["TOLERANCE", "age_of", "http_date", "answered", "dated", "drive_clock", "heard", "heard_skew",
           "latest", "now", "skew", "span", "stamped", "stamps_say", "wrote"]

log = logging.getLogger(__name__)

#: How far this machine's clock and Drive's may differ before both are taken (seconds): past a
#: second's truncation and a slow answer's time on the way, and small against the day
#: retention waits. Past it, no ``Date`` is trusted to date a claim (:func:`dated`): NTP-synced
#: clocks agree within seconds, so 60 s is no false alarm; and a skew within it cannot read a
#: live claim stale, as the shortest lease (1 min) is stale after 150 s, 90 s past a renewal
#: (:func:`drivestage.run_claims.stale_after`).
TOLERANCE = 60.0

#: Drive's clock less this machine's, as the last answer with a ``Date`` said (None: none
#: heard yet). One float, set whole: threads hearing at once leave one of their readings.
_behind: Optional[float] = None

#: A reading of Drive's clock less this machine's past :data:`TOLERANCE` from ``_behind``,
#: waiting for the next answer to say it too (:func:`heard`).
_pending_reading: Optional[float] = None

#: The answers heard below 400 (done as asked: 2xx, a resumable upload's 308). Threads hearing
#: at once may count one where two came: the count still moves, all a reader asks of it.
_answered = 0

#: Whether the last answer heard carried a ``Date`` (False: a proxy that strips it, where
#: this machine's clock is all it knows of Drive's: :func:`dated`).
_dated = True

#: Whether the warning of a skewed ``Date`` was given (once a process: :func:`_warn`).
_warned = False

#: The latest date Drive stamped on an item this process read (its ``createdDate``:
#: :func:`stamped`; None: none read). What Drive's own clock is at least.
_stamped: Optional[float] = None

#: The latest ``createdDate`` read on an item this app made (:mod:`~drivestage.drive.made_mark`:
#: :func:`stamped` with ``made``; None: none read). Drive's own stamp for sure: no client sent it.
_stamped_made: Optional[float] = None

#: Drive's clock less this machine's, at least, as the answers to this process's own writes
#: say it (:func:`wrote`; None: none written). Those stamps Drive set itself.
_wrote: Optional[float] = None


def heard(response: Any) -> None:
    """Note the ``Date`` of an answer (httplib2's response: a mapping of lower-case header
    names), received now, and count it where it did what was asked (:func:`answered`)."""
    global _behind, _answered, _dated, _pending_reading
    status = getattr(response, "status", None)
    if isinstance(status, int) and status < 400:
        _answered += 1
    value = response.get("date") if hasattr(response, "get") else None
    if not isinstance(value, str):
        _dated = not hasattr(response, "get")   # (an answer without one: a proxy stripped it)
        return
    sent = http_date(value)
    if sent is None:
        _dated = False
        return
    kept = age_of(response.get("age"))
    if kept is None:
        _dated = False   # (a stored answer kept for a time not known: its Date is no clock)
        return
    _dated = True
    reading = sent + kept - time.time()
    behind = _behind
    if behind is not None and abs(reading - behind) > TOLERANCE:
        # A new offset is taken once two answers in a row say it (attackr248): one answer of
        # a pool of proxies whose clock is wrong, heard last before a save, dated the save
        # hours late; a real step (this machine's clock set by NTP) is said by every answer.
        pending, _pending_reading = _pending_reading, reading
        if pending is None or abs(reading - pending) > TOLERANCE:
            return
    _pending_reading = None
    _behind = reading
    if not _warned and abs(reading) > TOLERANCE:
        _warn(reading)


def http_date(value: str) -> Optional[float]:
    """An HTTP date (a ``Date``, a ``Retry-After``) as seconds since the epoch; None where it
    cannot be read. One that names no zone (C's asctime form, which RFC 9110 5.6.7 bids a
    recipient read, and RFC 5322's ``-0000``: Python's ``formatdate()``) is UTC, as every
    HTTP date is: read as this machine's local time, a proxy's such ``Date`` on a machine
    eight hours west of UTC said Drive's clock ran eight hours ahead (clock51)."""
    try:
        when = email.utils.parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.timezone.utc)
        return when.timestamp()
    except (TypeError, ValueError, OverflowError, IndexError):
        return None


def age_of(value: object) -> Optional[float]:
    """How long a cache kept the answer (its ``Age``, RFC 9111 5.1: delta-seconds; the first
    of several): 0 where none is said, None where one is said that cannot be read. Its
    ``Date`` and a ``Retry-After`` it carries are that much older (:func:`drive_clock`).
    One past 2^31 s (RFC 9111 1.2.2's cap: 68 years) says nothing of Drive's clock now and
    cannot be read either: 400 nines were infinity, and Drive's clock so heard dated a
    mirror's claim ``inf``, which every other machine read as no one's (attack50)."""
    if value is None:
        return 0.0
    first = str(value).split(",")[0].strip()
    return float(first) if first.isascii() and first.isdigit() and len(first) < 20 \
        and int(first) <= 2 ** 31 else None


def _warn(behind: float) -> None:
    global _warned
    _warned = True
    way = "ahead of" if behind > 0 else "behind"
    log.warning("Drive's answers are dated %s %s this machine's clock (a proxy's clock or "
                "this machine's is wrong): neither is trusted to date a run's lease or a "
                "mirror's claim, so each is judged by how long it is seen unchanged (gone once "
                "seen unchanged for its stale period)",
                span_text(abs(behind)), way)


def span_text(seconds: float) -> str:
    """``40 s`` below 90 s, else minutes (``180 min``, ``1.5 min``)."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f}".rstrip("0").rstrip(".") + " min"


def skew() -> Optional[float]:
    """Drive's clock less this machine's, as the last answer's ``Date`` said it, where the
    two differ by more than :data:`TOLERANCE` (None: they agree, or no ``Date`` heard)."""
    behind = _behind
    return behind if _dated and behind is not None and abs(behind) > TOLERANCE else None


def heard_skew() -> Optional[float]:
    """Drive's clock less this machine's as the last answer with a ``Date`` said it, where
    past :data:`TOLERANCE`, whether or not the answers since carried one (None: they agree,
    or none was heard). To date by Drive's clock (a save time, a run's age): with
    :func:`skew`, one answer a proxy stripped of its ``Date`` between the last dated one and
    a save sent the save back to this machine's clock, days behind (attackr248). A claim's
    judgement keeps :func:`skew` (:func:`dated`): there, no ``Date`` is trusted no more."""
    behind = _behind
    return behind if behind is not None and abs(behind) > TOLERANCE else None


def dated() -> bool:
    """Whether Drive's clock is known: the last answer carried a ``Date`` within
    :data:`TOLERANCE` of this machine's clock. Not, behind a proxy that strips it, :func:`now`
    is this machine's clock, which another machine's may differ from by any amount
    (:mod:`trainer.lease` then proves its lease by a listing, not a date); nor where the two
    differ past it (:func:`skew`: one of them is wrong, which is not known)."""
    return _dated and skew() is None


def drive_clock(date: Optional[str] = None, kept: float = 0.0) -> Optional[float]:
    """Drive's clock at an answer, to read a date it sent (a ``Retry-After``) by: the
    answer's own ``Date`` where it carries a readable one (``date``), plus ``kept``, how long
    a cache kept it (its ``Age``, :func:`age_of`: the ``Date`` is when Drive made it, not
    now), else this machine's clock moved by Drive's offset as last heard (skewed or not: the
    best known); None where none was heard (this machine's clock is all there is)."""
    sent = http_date(date) if date else None
    if sent is not None:
        return sent + kept
    behind = _behind
    return None if behind is None else time.time() + behind


def answered() -> int:
    """How many answers below 400 this process heard so far: one that moved since a request
    failed says Drive answers again (a 503 outage over, a connection back)."""
    return _answered


def span() -> tuple[float, float]:
    """The earlier and the later of this machine's clock and Drive's as last heard (both
    this machine's where none was heard, or where they differ by :data:`TOLERANCE` at most)."""
    local = time.time()
    behind = _behind
    if behind is None or abs(behind) <= TOLERANCE:
        return local, local
    return min(local, local + behind), max(local, local + behind)


def now() -> float:
    """Drive's clock now, as the last answer's ``Date`` said it (to the second, cut short: a
    little behind Drive's), or this machine's where none was heard (a local store). For
    comparing with Drive's own dates (a file's ``modifiedDate``) across machines whose clocks
    differ (:mod:`trainer.lease`). Where the two differ past :data:`TOLERANCE`
    (:func:`skew`), the later of them: a date written by it (a property claim's) reads no
    older than it is to a machine whose clock is right (a live claim read stale), and a
    renewal by it is no later than due. So too where the answers since carry no ``Date`` (a
    pool of proxies, one skewed, one stripping it): the skewed offset, kept whole, dated a
    mirror's claim three hours back, and a machine with the right ``Date`` merged under the
    live mirror (attack45)."""
    behind = _behind
    if behind is not None and abs(behind) > TOLERANCE:
        return time.time() + max(0.0, behind)
    return time.time() + (behind or 0.0)


def stamped(*dates: float, made: bool = False) -> None:
    """Note dates Drive stamped on an item read (a listing's, a get's: its ``createdDate``,
    Drive's own; a ``modifiedDate`` is the client's mtime for rclone or Drive for desktop):
    Drive's clock was at least the latest of them when it answered (:func:`latest`).
    ``made``: the item carries this app's mark (:mod:`drivestage.drive.made_mark`), so its
    ``createdDate`` is Drive's, never a client's (rclone ``-M`` sends one: clock51)."""
    global _stamped, _stamped_made
    newest = max(dates, default=0.0)
    if newest > 0 and (_stamped is None or newest > _stamped):
        _stamped = newest
    if made and newest > 0 and (_stamped_made is None or newest > _stamped_made):
        _stamped_made = newest


def _read_stamp() -> Optional[float]:
    """The newest ``createdDate`` read that bounds Drive's clock: of the items this app made
    where one was read (an item another client made beside them may carry a date of its
    own, days ahead: clockmark51), else of any item (a run another OAuth client pushed, or
    one pushed before the mark was: clock49's stamps, which no mark of this app's shows)."""
    made = _stamped_made
    return made if made is not None else _stamped


def wrote(*dates: float) -> None:
    """Note the dates Drive stamped on an item in its answer to this process's own write (a
    create: ``createdDate``; a create or a content update: ``modifiedDate``): drivestage
    sends neither, so Drive set both from its own clock, which was at least the latest of
    them when it answered, and is at least as far ahead of this machine's now."""
    global _wrote
    newest = max(dates, default=0.0)
    if newest > 0:
        offset = newest - time.time()
        if _wrote is None or offset > _wrote:
            _wrote = offset


def stamps_say() -> Optional[float]:
    """Drive's clock now, at least, as its own stamps say it: the answers to this process's
    own writes (:func:`wrote`), the newest ``createdDate`` of an item read
    (:func:`stamped`); None where neither was heard. A lower bound only: what a ``Date``
    behind says (a proxy's clock hours slow, two answers in a row) is no later than it. No
    later than the later of this machine's clock and the ``Date`` (as :func:`latest`): an
    item's ``createdDate`` may be a client's (rclone ``-M``: clock51)."""
    own, stamp = _wrote, _read_stamp()
    said = [v for v in (None if own is None else time.time() + own, stamp) if v is not None]
    return min(span()[1], max(said)) if said else None


def latest() -> float:
    """The later of this machine's clock and Drive's, Drive's only as far as its own stamps
    say it too: its clock as the answers' ``Date`` says it, no later than its stamps on
    this process's own writes say it now (:func:`wrote`), else the newest date it stamped
    on an item read (:func:`stamped`). A ``Date`` alone far ahead (a proxy's clock; two
    answers say it) raised what "in the future" is for every sidecar read here, a local
    liar's too, where Drive's stamps showed its clock right (claim50); and an item's stamp
    may be a client's (``setModifiedDate``; ``createdDate`` too, sent with its create by
    rclone ``-M``: clock51), where this process's own writes' stamps are Drive's; so, of
    the items read, those this app made are taken where there are any (:func:`_read_stamp`).
    This machine's clock where no stamp was read."""
    local, own, stamp = time.time(), _wrote, _read_stamp()
    if own is not None:
        return max(local, min(span()[1], local + own))
    return local if stamp is None else max(local, min(span()[1], stamp))


# (What "in the future" is, below the store layers: drivestage.latest_clock; a sidecar's save
# time read by this machine's clock days behind was none: clock49. By Drive's stamps too:
# a Date alone ahead made a local liar saved last, claim50.)
latest_clock.told_by(latest)
