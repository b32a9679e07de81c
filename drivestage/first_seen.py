"""The first-seen mark: when retention first saw a file that it retires by age (an orphan
sidecar, :mod:`drivestage.orphans`; a lone autosave, :mod:`drivestage.lone_autosaves`).

Those wait until the store has held the file :data:`drivestage.orphans.MIN_AGE` (a day), in
case the other half of its upload is still on its way. Drive's ``createdDate`` and
``modifiedDate`` cannot say so alone: a client may set both when it creates a file (neither
is output-only in the v2 File; rclone ``-M`` sends a file's birth time and mtime, Drive for
desktop its mtime). A sidecar copied a second ago from a year-old run folder looked a year
old, went at once as an orphan, and its checkpoint, arriving alone with old dates, could go
next as a lone autosave (fidelity34). No Drive field gives the true arrival.

So the first retention pass (``prune``, a push's retention) that finds such a file old by
its dates writes this machine's clock on it, and the file goes only once that mark is
:data:`~drivestage.orphans.MIN_AGE` old too (the later of the two). On Drive the mark is a
PUBLIC custom property (:data:`SEEN_MARK`, one ``properties.insert``; every OAuth client
sees it, so a laptop's prune and a Colab VM's push share it). A listing shows it (no request
on later passes); where the listing shows none (Drive's may leave properties out), the
file's own properties are read first (one ``files.get``, for these candidates only). A file
the mark cannot be written on (no writer access: nor could it be deleted) is kept. A mark
that is not a whole number of seconds, or later than this machine's clock (planted, or
written by a clock running ahead), is written again with now: it never ages a file early.

A directory store keeps no marks (:meth:`drivestage.store.RemoteStore.first_seen`): it
retires nothing by age anyway, since its mtimes are the copy tool's word.
"""
from __future__ import annotations

import math
import re
import time
from typing import Callable, Optional

from drivestage.store import RemoteEntry, RemoteStore

__all__ = ["SEEN_MARK", "Seen", "on", "parse", "stamp", "when"]

#: The key of the mark (Drive: a PUBLIC custom property, its value whole seconds since the
#: epoch, by the clock of the machine that first saw the file).
SEEN_MARK = "drivestage-seen"

#: What retention asks of a file old by its dates: when it was first seen (the mark, written
#: now where it has none), or None where no mark can be kept (the file is kept).
Seen = Callable[[RemoteEntry], Optional[float]]

_WHOLE = re.compile(r"[0-9]{1,12}")


def parse(value: Optional[str], now: float) -> Optional[float]:
    """The time a mark's ``value`` says, or None where it says none that may be trusted: not
    a whole number of seconds, or later than ``now`` (this machine's clock)."""
    if value is None or not _WHOLE.fullmatch(value.strip()):
        return None
    at = float(value.strip())
    return at if math.isfinite(at) and at <= now else None


def stamp(now: float) -> str:
    """A mark's value for ``now``."""
    return str(int(now))


def when(at: float) -> str:
    """A mark's time as the plan's table says it (UTC, to the minute)."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at))


def on(store: RemoteStore, *, write: bool = True, now: Optional[float] = None) -> Seen:
    """The marks of ``store`` as retention asks them, by this machine's clock now (``write``
    False, a dry run: a missing mark is taken as now, not written)."""
    at = time.time() if now is None else now
    return lambda entry: store.first_seen(entry, at, write)
