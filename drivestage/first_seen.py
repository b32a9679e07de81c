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
the mark cannot be written on (no writer access: nor could it be deleted) is kept.

A mark's value is ``<seen>:<came>:<tag>:<place>`` (:class:`Mark`, :func:`stamp`):

* ``seen``: whole seconds since the epoch, this machine's clock when it wrote the mark;
* ``came``: when the store had received the file, by its dates as that pass listed them
  (the later of ``createdDate`` and ``modifiedDate``, before the mark's own write). The
  write may move ``modifiedDate`` to its own time (a v2 metadata write sets it to now unless
  told otherwise, and ``properties.insert`` takes no such word; seen35): by the dates
  alone, a lone autosave marked today then "arrived" after every autosave that supersedes
  it, and was kept for good. For the order of arrivals retention takes the earlier of the
  dates and ``came`` (:func:`arrival`): the write cannot move it, and a later change of the
  file's bytes voids the mark (below), so it never says the bytes came before they did. A
  file's age stays by its dates as they are now (the later: a write that moved them makes
  it wait longer, never less) and by ``seen``;
* ``tag``: a digest of the file's id and md5 (:func:`tag`). ``files.copy`` carries custom
  properties to the copy (a user's "Make a copy", rclone's server-side copy), so a copy sent
  with old dates (``-M``) carried a week-old mark and went the moment it arrived; a file
  whose bytes were replaced in place kept the mark of the old ones. A mark whose tag is not
  this file's, as it is now, is no mark: written again, and the file waits a day more;
* ``place``: a digest of the folder retention listed the file in and its name there
  (:func:`place`). A sidecar first seen a week ago in one folder, moved by hand (or by
  ``rclone move``, which sends the old modification time along) into the run folder ahead
  of its checkpoint, went there at once on that mark; its checkpoint then came in alone,
  unverified (seen36). Moved or renamed, a file is first seen anew, and waits its day: the
  other half of a pair moved one file at a time is on its way as much as one uploaded.
  The folder is the one listed (not the answer's ``parents``, which a listing may leave out
  or, for a file kept in two folders from before Drive's single-parent rule, order either
  way: the mark would be written anew at every pass, and the file kept for good). A move
  does not change when the bytes came: ``came`` of a mark with this file's tag, wherever it
  was written, dates it for the order of arrivals and the ranking (:func:`came`), and goes
  into the mark written anew.

A mark that is not of this form (the bare ``<seconds>`` written before seen35 included: it
names no file, so a copy's is indistinguishable from the file's own; and seen35's three
parts, without ``place``), or whose ``seen`` is
later than this machine's clock (planted, or written by a clock running ahead), is written
again with now: such a mark never ages a file early, and costs it a day more of waiting at
most. (Any editor of the file may still write one that ages it at once, the tag of that very
file and all: a PUBLIC property is theirs to set, as the file is theirs to delete.)

No time Drive keeps could bound such a mark (pushlefts48, from Drive's references and the
clients that write these fields): the v2 File marks neither ``createdDate`` nor
``modifiedDate`` output-only (as it marks ``version``, ``md5Checksum``); ``createdDate`` is
the uploader's word at creation (rclone's drive backend: "btime … only writable on fresh
uploads - it can't be written for updates"), ``modifiedDate`` any editor's
(``setModifiedDate``), and ``modifiedByMeDate`` moves with it. ``version`` is Drive's, but
no time. The changes feed's ``modificationDate`` is Drive's clock, but read only from a page
token taken before the file came, which a pass meeting the file first does not hold, and a
mark's write is a change itself. Drive Activity's timestamps are Drive's, in another API
whose scope (``drive.activity.readonly``) drivestage's tokens, Colab's included, do not
carry. What bounds it instead: ``createdDate`` is never moved once the file exists, and a
file goes by age only where its dates are as old as its mark (:func:`dates`, the later;
:func:`drivestage.orphans.waits`), so a file whose uploader let Drive stamp its dates
(drivestage, the trainer) waits its day whatever mark is written on it
(``tests/test_pushlefts48_forged_mark.py``). Only a file sent with old dates (rclone
``-M``, a copy dated at its creation) has nothing but its mark to go by.

A sidecar's mark that has done its work goes (:func:`clear`): once its checkpoint is there
again (no orphan under any policy), the pass that lists it so removes the mark (one
``properties.delete``, once). Kept, it would age the file at once the next time it is
split: a sidecar whose checkpoint was deleted by hand and is on its way again, sent with old
dates, went the moment its checkpoint was gone. Cleared, it waits a day from then, as any
file first seen then. A checkpoint's mark (a lone autosave's whose sidecar came) stays: its
removal, as its write, may move its modifiedDate, by which retention ranks checkpoints
without a save time and runs; :func:`modified` reads the date from before the write.

A directory store keeps no marks (:meth:`drivestage.store.RemoteStore.first_seen`): it
retires nothing by age anyway, since its mtimes are the copy tool's word.
"""
from __future__ import annotations

import hashlib
import math
import re
import time
from typing import Callable, Iterable, Optional

from drivestage import sidecar
from drivestage.store import Mark, RemoteEntry, RemoteStore

__all__ = ["SEEN_MARK", "Mark", "Seen", "arrival", "came", "clear", "dates", "listed", "made",
           "modified", "on", "parse", "place", "spent", "stamp", "tag", "when", "whole"]

#: The key of the mark (Drive: a PUBLIC custom property; its value: :func:`stamp`).
SEEN_MARK = "drivestage-seen"


#: What retention asks of a file old by its dates: its mark (written now where it has none
#: that is its own), or None where no mark can be kept (the file is kept).
Seen = Callable[[RemoteEntry], Optional[Mark]]

_VALUE = re.compile(r"([0-9]{1,12}):([0-9]{1,12}):([0-9a-f]{16})(?::([0-9a-f]{16}))?")


def dates(entry: RemoteEntry) -> float:
    """When the store received ``entry`` as it is now, as late as its dates allow: the later
    of its creation and modified times (a store without creation times: its mtime)."""
    return max(entry.created, entry.modified)


def tag(entry: RemoteEntry) -> str:
    """The part of a mark that names the file it was written on: its id and its bytes."""
    return hashlib.sha256(f"{entry.id}\n{entry.md5 or ''}".encode()).hexdigest()[:16]


def place(entry: RemoteEntry) -> str:
    """The part of a mark that names where the file was seen: the folder retention listed it
    in (a Drive listing's entry knows it, whatever parents the answer showed), else its
    parent, and its name there."""
    above = getattr(entry, "ancestors", ())   # (DriveEntry: the folders of the listing)
    folder = above[-1] if above else entry.parent_id or ""
    return hashlib.sha256(f"{folder}\n{entry.name}".encode()).hexdigest()[:16]


def parse(value: Optional[str], entry: RemoteEntry, now: float) -> Optional[Mark]:
    """The mark ``value`` says for ``entry``, or None where it says none that may be trusted:
    not of the form :func:`stamp` writes, written on another file (a copy's) or other bytes,
    in another folder or under another name (moved or renamed since), or first seen later
    than ``now`` (this machine's clock)."""
    found = _VALUE.fullmatch(value.strip()) if value is not None else None
    if found is None or found[3] != tag(entry) or found[4] != place(entry):
        return None
    at, came = float(found[1]), float(found[2])
    return Mark(at, came) if math.isfinite(at) and 0 < at <= now else None


def came(value: Optional[str], entry: RemoteEntry) -> Optional[float]:
    """When ``value``, a mark written on these very bytes (wherever they were then, under
    whatever name), says the store had them: a move or a rename changes no arrival, while
    its write, the mark's own or a move's, may move ``modifiedDate``."""
    found = _VALUE.fullmatch(value.strip()) if value is not None else None
    return float(found[2]) if found is not None and found[3] == tag(entry) else None


def made(entry: RemoteEntry, now: float, old: Optional[str] = None) -> Mark:
    """The mark a pass seeing ``entry`` first at ``now`` (here, as it is named) writes: its
    arrival by its dates, or the earlier one ``old`` (its mark from before a move) says."""
    before = came(old, entry)
    arrived = dates(entry) if before is None else min(dates(entry), before)
    return Mark(float(int(now)), float(math.ceil(arrived)))


def stamp(entry: RemoteEntry, now: float, old: Optional[str] = None) -> str:
    """The value of the mark :func:`made` gives (short: Drive allows 124 bytes of key and
    value together)."""
    mark = made(entry, now, old)
    return f"{int(mark.at)}:{int(mark.came)}:{tag(entry)}:{place(entry)}"


def whole(entry: RemoteEntry, came_at: float) -> str:
    """The mark a checkpoint whole again keeps (:func:`clear`): no first sighting (``seen``
    0: :func:`parse` takes it for none), only when its bytes came (:func:`came`)."""
    return f"0:{int(came_at)}:{tag(entry)}:{place(entry)}"


def listed(entry: RemoteEntry, now: float) -> Optional[Mark]:
    """``entry``'s own mark as its listing showed it (no request), or None."""
    return parse(entry.seen_mark, entry, now)


def arrival(entry: RemoteEntry, mark: Optional[Mark]) -> float:
    """When the store received ``entry`` as it is now, as late as may be known: its
    :func:`dates`, or where its own ``mark`` says the bytes had come earlier (the mark's
    write, or a rename, moved ``modifiedDate`` since), that."""
    return min(dates(entry), mark.came) if mark is not None else dates(entry)


def modified(entry: RemoteEntry) -> float:
    """``entry``'s modified time as retention ranks it: where its own mark (as listed, when
    ever it was seen: ``came`` is Drive's dates) says the file had come by an earlier time,
    that (the mark's write may have moved ``modifiedDate`` to its own time: an old autosave
    would rank as the newest, and its run as the most recent)."""
    before = came(entry.seen_mark, entry)
    return entry.modified if before is None else min(entry.modified, before)


def when(at: float) -> str:
    """A mark's time as the plan's table says it (UTC, to the minute)."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at))


def on(store: RemoteStore, *, write: bool = True, now: Optional[float] = None) -> Seen:
    """The marks of ``store`` as retention asks them, now (``write`` False, a dry run: a
    missing mark is taken as made now, not written). ``now``: the later of this machine's
    clock and the store's (:meth:`drivestage.store.RemoteStore.clock`), by default: a mark
    later than it is none, and a new one is made with it; an age is measured by the earlier."""
    at = store.clock()[1] if now is None else now
    return lambda entry: store.first_seen(entry, at, write)


def spent(listing: Iterable[RemoteEntry]) -> list[tuple[RemoteEntry, Optional[float]]]:
    """The files of one folder's ``listing`` whose first-seen mark has done its work, each
    with what its mark is to keep: a sidecar that shows one (any value) and one of whose
    checkpoints is there (no orphan, whatever the policy): None, it goes; a checkpoint whose
    sidecar is there (no lone autosave) and that shows a first sighting of its own: when
    its bytes came. That one is written over, not removed: the removal, as the write, may
    move its modifiedDate to now, and retention ranks checkpoints without a save time, and
    runs, by the date from before (:func:`modified`). Kept as it was, a checkpoint whose
    sidecar went later (deleted by hand, to be sent again) went at once on a week-old mark
    (seen36)."""
    files = [e for e in listing if not e.is_dir]
    names = {e.name for e in files}
    sides, paired = set(sidecar.owners(names)), set(sidecar.pairs(names))
    out: list[tuple[RemoteEntry, Optional[float]]] = []
    for e in files:
        mark = parse(e.seen_mark, e, math.inf) if e.name in paired else None
        if e.seen_mark is not None and e.name in sides:
            out.append((e, None))
        elif mark is not None:
            out.append((e, mark.came))
    return out


def clear(store: RemoteStore, listing: Iterable[RemoteEntry],
          gone: Iterable[Optional[str]] = (),
          check: Callable[[], None] = lambda: None) -> int:
    """Clear the marks of :func:`spent` files of ``listing`` (but those whose ids are in
    ``gone``: deleted by this pass) on ``store``; how many went. ``check`` (a push's guard:
    :mod:`drivestage.push_fence`) before each: a write too."""
    deleted = set(gone)
    cleared = 0
    for e, came_at in spent(listing):
        if e.id in deleted:
            continue
        check()
        cleared += bool(store.clear_seen(e, came_at))
    return cleared
