"""Lone autosaves: an autosave on the store without its sidecar, a process killed between the
two uploads of one save (the checkpoint goes first, then its sidecar).

On a machine whose disk is gone afterwards (Colab's usual end) nothing sends that sidecar
again. The file names no run (no sidecar says one), so the plan (:mod:`drivestage.retention`)
keeps it as the newest autosave of "no run", for good: a checkpoint's size of the quota per
unlucky kill. Nothing reads it either: a resume (``--resume auto``,
:meth:`drivestage.hooks.CheckpointSync.latest_remote_checkpoint`) takes only a checkpoint a
sidecar vouches for. (The mirror case of :mod:`drivestage.orphans`, a sidecar left alone;
attacktrain26's idea.) This module says which such files may go, as a pure function of what
the caller listed (:func:`find`, then :func:`retire`; :func:`drivestage.pruning.apply`
deletes, after :func:`still_lone` on a second listing).

A lone autosave ``L`` is retired only when all of these hold:

* **Ours, and alone.** Its name matches the policy's autosave pattern (``autosave_<n>``: a
  user's ``best.pt``, ``model.pt`` or ``epoch_003.pt``, described or not, is never one) and
  bears a number; it is the one file of its name, with an md5, that this account may delete
  (a shared drive's Contributor may not: a 403 at every push for a file nobody asked to
  delete), and neither it nor any sidecar of its name (``X.json``, ``X.pt.json``; a sidecar
  cut short or unreadable is one: that save did not die between the two uploads) is listed
  or about to be pushed.
* **Superseded.** A verified autosave numbered above it (``V``: its sidecar vouches for its
  bytes) reached the store after ``L`` did, by the store's own times (``V`` first held after
  ``L`` arrived: :func:`drivestage.orphans.arrived`); so the folder keeps a checkpoint that a
  resume can use, further on. And every run that saved a verified autosave before ``L``
  arrived has a verified one above ``L`` since: ``L`` names no run, and may be the newest
  state of any of them (two runs in one folder: one killed, the other going on).
* **Old.** The store has held it :data:`MIN_AGE` (a day, as an orphan sidecar; by
  Drive's dates, and only on a store that stamps arrivals: a directory's mtimes are the
  copier's word), and a retention pass first saw it as long ago (its first-seen mark,
  :mod:`drivestage.first_seen`: a client may set Drive's dates, ``rclone copy -M`` of an old
  run folder sends a file that looks a year old on arrival): a sidecar still on its way (another machine's
  push, a slow link) has long arrived, or never will. This machine's clock measures it: one
  behind the store's keeps the file longer; one ahead by a day would age it early, which
  costs at most an autosave older than a verified one (the run's own retention deletes those).
* **Not protected** (``--protect``, by name or id; a resume's start, a push's "just written").

Before the deletion the folder is listed once more (:func:`still_lone`): a sidecar of its
name there (one that arrived under a listing that lagged) or other bytes under its id cancel
it, with a warning. The plan's table says ``lone autosave: ...`` for one retired, and while
one waits out its day, why it is kept.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Iterable, Mapping, Optional, Sequence

from drivestage import first_seen, sidecar
from drivestage.orphans import MIN_AGE, _ago, _first_held, arrived, waits
from drivestage.retention import AUTOSAVE, Candidate, Decision, Plan, RetentionPolicy
from drivestage.retention_order import _autosave_number
from drivestage.sidecar import Described
from drivestage.store import RemoteEntry

__all__ = ["MIN_AGE", "find", "retire", "without", "insert", "still_lone"]


def find(files: Mapping[str, Sequence[RemoteEntry]], local: Iterable[str],
         policy: RetentionPolicy) -> list[RemoteEntry]:
    """The autosaves in ``files`` (the folder's listing: name -> entries) without a sidecar
    on the store or among ``local`` (the names a push is about to send), each the one file of
    its name, with an md5 and removable by this account; oldest name first."""
    if not policy.active:
        return []
    sending = set(local)
    paired = sidecar.pairs(set(files) | sending)
    out = []
    for name in sorted(files):
        entries = [e for e in files[name] if not e.is_dir]
        if policy.kind_of(name) != AUTOSAVE or name in sending or name in paired \
                or _autosave_number(name, policy) is None or len(entries) != 1:
            continue
        entry = entries[0]
        if entry.md5 and entry.removable:
            out.append(entry)
    return out


def retire(lone: Sequence[RemoteEntry], described: Sequence[Described],
           policy: RetentionPolicy, *, protect: Iterable[str] = (),
           also_keep: Optional[Mapping[str, Iterable[str]]] = None,
           now: Optional[float] = None,
           seen: Optional[first_seen.Seen] = None) -> dict[str, Decision]:
    """id -> the decision for each lone autosave that is superseded (see the module): a
    deletion when the store has held it :data:`MIN_AGE`, by its dates and by its first-seen
    mark (``seen``; None: none kept, so none retired), and nothing protects it, else a keep
    that says why it waits. ``described``: the folder's checkpoints and autosaves with their
    sidecars; ``now``: this machine's clock (seconds since the epoch)."""
    if not policy.active:
        return {}
    now = time.time() if now is None else now
    pinned = set(protect) | {n for names in (also_keep or {}).values() for n in names}
    autos = [(d, _autosave_number(d.name, policy)) for d in described
             if d.verified and policy.kind_of(d.name) == AUTOSAVE]
    out: dict[str, Decision] = {}
    for entry in lone:
        number = _autosave_number(entry.name, policy)
        if number is None or {entry.name, entry.id} & pinned:
            continue
        numbered = [(d, n) for d, n in autos if n is not None]
        mark = first_seen.listed(entry, now)
        newer = _superseder(arrived(entry, mark), number, numbered)
        if newer is None and mark is None and seen is not None and entry.created > 0 \
                and _superseder(entry.created, number, numbered) is not None:
            # Its own mark may say it came earlier than its dates do now: the mark's write
            # may have moved its modifiedDate past every autosave above it (seen35), and a
            # listing may leave properties out. Asked of the store (a read, and a write
            # where it has none: once per file) only where its createdDate, which no write
            # moves, would let one supersede it.
            mark = seen(entry)
            newer = None if mark is None else _superseder(arrived(entry, mark), number, numbered)
        if newer is None:
            continue
        age = now - arrived(entry)   # (its dates now: the order above took its mark's)
        old = entry.created > 0 and age >= MIN_AGE
        wait, age = waits(entry, seen, now) if old else (None, age)
        if old and wait is None:
            why, keep = (f"lone autosave: no sidecar on the store, {newer.name} is further on "
                         f"and verified, and this file reached the store {_ago(age)} ago"), False
        elif wait is not None:
            why, keep = f"autosave without a sidecar on the store: {wait}", True
        else:
            why, keep = ("autosave without a sidecar on the store: retired once the store has "
                         f"held it {_ago(MIN_AGE)} (its sidecar may be on its way)"), True
        out[entry.id] = Decision(entry.name, keep, why, entry.size, entry.id, AUTOSAVE,
                                 orphan_md5=None if keep else entry.md5, md5=entry.md5)
    return out


def _superseder(came: float, number: int,
                autos: Sequence[tuple[Described, int]]) -> Optional[Described]:
    """Of the verified autosaves ``autos`` (with their numbers), the one numbered highest
    above ``number`` (a lone one's) that reached the store after ``came`` (when the lone one
    did), when every run that had a verified autosave there before has one such; else None."""
    later = [(d, n) for d, n in autos if n > number and _first_held(d) > came]
    before = {d.sidecar.run for d, _ in autos if _first_held(d) <= came}
    if not later or not before <= {d.sidecar.run for d, _ in later}:
        return None
    return max(later, key=lambda dn: (dn[1], dn[0].name))[0]


def insert(decided: Plan, retired: Mapping[str, Decision]) -> Plan:
    """``decided`` (planned without the lone autosaves that go) with the decisions of
    :func:`retire`: a kept one's reason replaced, a deleted one placed before the first
    autosave of the plan (else before the files the policy does not manage)."""
    if not retired:
        return decided
    out = [retired.get(d.id or "", d) if d.kind == AUTOSAVE else d for d in decided]
    placed = {d.id for d in out}
    gone = [d for i, d in retired.items() if i not in placed]
    at = next((i for i, d in enumerate(out) if d.kind == AUTOSAVE or not d.managed), len(out))
    return dataclasses.replace(decided, decisions=tuple(out[:at] + gone + out[at:]))


def without(candidates: Iterable[Candidate], retired: Mapping[str, Decision]) -> list[Candidate]:
    """``candidates`` but the lone autosaves :func:`retire` deletes (the plan, its budget
    included, is made as the folder will be)."""
    gone = {i for i, d in retired.items() if not d.keep}
    return [c for c in candidates if c.id is None or c.id not in gone]


def still_lone(decision: Decision, listing: Iterable[RemoteEntry]) -> bool:
    """The lone autosave ``decision`` retires is on the store as planned (same id and md5)
    and still without a sidecar (``listing``: the folder, listed again)."""
    entries = [e for e in listing if not e.is_dir]
    if decision.name in sidecar.pairs({e.name for e in entries}):
        return False
    return any(e.id == decision.id and e.md5 == decision.orphan_md5 for e in entries)
