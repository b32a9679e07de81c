"""Which checkpoints of a run a branch left behind: the line a run no longer goes on from.

A run resumed on purpose from an older checkpoint (a diverged loss sent back) writes a
**branch record** at once: that checkpoint's sidecar gets a new ``saved``, later than every
save of the run seen, and ``branch``, when the state was first saved
(:func:`trainer.resume.record_branch`, :mod:`drivestage.sidecar`). The checkpoints of the
run further on than a record and saved before it are the line it left behind. Retention
ranks them older than every checkpoint of the line the run goes on with
(:mod:`drivestage.retention`), so ``keep_last`` keeps that line's newest first.

Only a record says a run branched: without one nothing is left behind, whatever the save
times say (they come from each machine's clock; a stale folder pushed from a machine whose
clock runs ahead must not read as a branch). A record's own ``saved`` is taken after every
save of the run its machine saw (the writer's floor), so "saved before the record" does not
depend on that machine's clock being right.

A record is **in force** unless a later record goes back to a state first saved before it
(its ``branch`` is earlier): the run then went back to the line that record left, or to
before it, and that line is where it goes on. Sent back twice along one line (to 5, then to
6 of the new line), both records are in force; sent back to 5 and then to the 10 it left,
only the second. Pure: no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

from drivestage.sidecar import Described


@dataclass(frozen=True)
class Point:
    """One checkpoint as lineage sees it."""

    key: str                                # what the answer names it by (a name, an index)
    run: Optional[str]
    progress: Optional[tuple[int, int]]     # (epoch, steps into the next); None: unknown
    saved: Optional[float]                  # its sidecar's ``saved``
    branch: Optional[float] = None          # a *verified* record's first ``saved``; else None


def left_behind(points: Iterable[Point]) -> dict[str, Point]:
    """key -> the record in force that left it behind, for every point further on than a
    record of its run and saved before it. Points without progress or save time are never
    left behind (a doubt keeps the ranking as it was)."""
    by_run: dict[Optional[str], list[Point]] = {}
    for p in points:
        by_run.setdefault(p.run, []).append(p)
    out: dict[str, Point] = {}
    for pts in by_run.values():
        for record in in_force(pts):
            for p in pts:
                if p.key not in out and _left_by(p, record):
                    out[p.key] = record
    return out


def in_force(points: Iterable[Point]) -> list[Point]:
    """The records in force among ``points`` (one run's), oldest first."""
    records = sorted((p for p in points if p.branch is not None and p.saved is not None
                      and p.progress is not None), key=lambda p: (p.saved or 0.0, p.key))
    active: list[Point] = []
    for record in records:
        # An earlier record saved after this record's state was first saved: this one goes
        # back to the line that record left (or to before it), so that record no longer
        # says where the run goes on.
        active = [a for a in active if (a.saved or 0.0) < (record.branch or 0.0)]
        active.append(record)
    return active


def _left_by(p: Point, record: Point) -> bool:
    if p.progress is None or p.saved is None or record.progress is None or record.saved is None:
        return False
    return p.progress > record.progress and p.saved < record.saved


def left_described(checkpoints: Iterable[Described]) -> set[str]:
    """Names of the checkpoints on a store (their sidecars as read there) that a record in
    force of their run left behind; only verified checkpoints and records count."""
    points = [Point(c.name, c.sidecar.run,
                    c.sidecar.progress if c.sidecar.epoch is not None else None,
                    c.sidecar.saved, c.sidecar.branch if c.verified else None)
              for c in checkpoints if c.verified]
    return set(left_behind(points))
