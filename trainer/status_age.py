"""How long ago ``trainer status``'s checkpoint was verified on Drive, and how sure that is.

Three clocks speak of it: Drive's own date of the checkpoint (its ``modifiedDate``: Drive's
clock when it was written, whatever sits between), this machine's clock, and Drive's clock
now as its answers' ``Date`` says it (:func:`drivestage.drive.server_clock.drive_clock`; a
cache's answer read with its ``Age``). Where the last two agree (within
``server_clock.TOLERANCE``) the age is plain. Where they disagree, one is wrong:

- Drive's date of the checkpoint later than Drive's clock as the ``Date`` says it (the age by
  it below zero): that ``Date`` is not Drive's clock (a proxy dating answers by its own clock,
  behind), and the age is by this machine's (attackr248: "0 s ago" for a state an hour old;
  the user, told it was just saved, stops the VM).
- Drive's date later than this machine's clock: this machine's clock is behind, and the age
  is by the ``Date`` (attack48: "0 s ago" for a state two hours old).
- Neither: both readings are possible, and no rule on these three clocks tells them apart
  (clock49): a machine two hours ahead with a checkpoint just sent, and a proxy two hours
  behind with one sent two hours ago, give the same three readings, 0 s and 2 h the true ages.
  The age by the ``Date`` is given (through an ``https://`` proxy the ``Date`` is Drive's own,
  which a tunnel cannot change; only a proxy that reads and rewrites the TLS can), and a line
  says both readings and by how much the clocks disagree.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

from drivestage.drive import server_clock

from trainer.drive import age_text


@dataclass(frozen=True)
class Age:
    """A checkpoint's age on Drive: ``seconds``, the range it may be in (``low``, ``high``:
    both ``seconds`` where the clocks agree or one is shown wrong) and the line that says
    which clock it is by and why (None where the clocks agree)."""

    seconds: float
    low: float
    high: float
    note: Optional[str] = None


def verified_age(modified: float) -> Age:
    """The age of a checkpoint Drive dated ``modified`` (its ``modifiedDate``), now."""
    local = time.time()
    drive = server_clock.drive_clock()
    by_local = local - modified
    if drive is None or abs(drive - local) <= server_clock.TOLERANCE:
        # (no Date heard, or one within a minute of this machine's clock: Drive's is the best
        # known either way, as before)
        plain = max(0.0, (local if drive is None else drive) - modified)
        return Age(plain, plain, plain)
    by_date = drive - modified
    apart = server_clock.span_text(abs(drive - local))
    way = "ahead of" if drive > local else "behind"
    date_wrong = by_date < -server_clock.TOLERANCE
    local_wrong = by_local < -server_clock.TOLERANCE
    if date_wrong and local_wrong:
        return Age(0.0, 0.0, 0.0, "age unknown: Drive's own date of it is later than this "
                   f"machine's clock and than Drive's answers' Date ({apart} {way} it)")
    if date_wrong:
        return Age(by_local, by_local, by_local,
                   f"age by this machine's clock: Drive's answers are dated {apart} {way} it, "
                   "and before Drive's own date of this checkpoint, so their Date is not "
                   "Drive's clock (a proxy's?)")
    if local_wrong:
        return Age(by_date, by_date, by_date,
                   f"age by Drive's clock: this machine's clock is {apart} behind it (and "
                   "behind Drive's own date of this checkpoint)")
    by_local, by_date = max(0.0, by_local), max(0.0, by_date)
    return Age(by_date, min(by_local, by_date), max(by_local, by_date),
               f"age uncertain: {age_text(by_date)} by Drive's clock as its answers' Date says "
               f"it, {age_text(by_local)} by this machine's clock; the two disagree by "
               f"{apart} and which is wrong is not known (a clock kept by NTP is right)")
