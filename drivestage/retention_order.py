"""What orders and ranks the managed files of a retention plan: :class:`Candidate` (one file
as listed, with its parsed sidecar), its epoch or autosave number, its metric (never NaN or an
infinity), the age order (a branch's abandoned line first), and the runs ``keep_runs`` keeps.
Pure, as :mod:`drivestage.retention`, which decides with these.
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional

from drivestage import lineage
from drivestage.retention_policy import AUTOSAVE, CHECKPOINT, RetentionPolicy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    """One file in the managed folder, as listed (plus parsed sidecar contents)."""

    name: str
    size: int = 0
    modified: float = 0.0
    metrics: Mapping[str, float] = field(default_factory=dict)  # from the sidecar, if any
    epoch: Optional[int] = None     # from the sidecar; overrides the name's epoch
    id: Optional[str] = None        # backend id, to tell duplicates apart (Drive)
    verified: bool = False          # a sidecar vouches for its bytes (on the store, or for a
                                    # local file: beside it, so once both are sent)
    run: Optional[str] = None       # the training run its sidecar names (None: not named)
    saved: Optional[float] = None   # when its sidecar says it was written (format 3)
    epoch_iteration: int = 0        # from the sidecar: steps into the next epoch
    branch: Optional[float] = None  # its sidecar is a branch record (:mod:`drivestage.lineage`)
    md5: Optional[str] = None       # the store's copy ``id``: its md5 as listed
    # A local file's mtime by this machine's clock, where ``modified`` is that moved onto
    # the store's (their clocks differ: :meth:`drivestage.store.RemoteStore.clock_shift`).
    unshifted: Optional[float] = None


@dataclass
class _Ckpt:
    cand: Candidate
    kind: str
    epoch: Optional[int]
    metric: Optional[float]
    reasons: list[str] = field(default_factory=list)
    keep: bool = False
    pinned: bool = False      # newest, best, protected or an autosave: the budget keeps it
    delete_reason: str = ""
    left: Optional[int] = None  # the epoch of the branch record that left it behind


def _metric_of(cand: Candidate, match: "re.Match[str]", metric: Optional[str]) -> Optional[float]:
    if not metric:
        return None
    value: Optional[float] = None
    if metric in cand.metrics:
        try:
            value = float(cand.metrics[metric])
        except (TypeError, ValueError):
            value = None
    elif metric in match.re.groupindex and match.group(metric) is not None:
        try:
            value = float(match.group(metric).rstrip("."))
        except ValueError:
            value = None
    if value is None or math.isnan(value):
        return None
    if math.isinf(value):
        # An infinite metric would rank first (or last) for ever: a diverged epoch's
        # ``val_loss=inf``, ``1e999`` in a name. It counts as no metric, said once per name.
        if cand.name not in _warned_infinite:
            _warned_infinite.add(cand.name)
            log.warning("%s: its %s is %s, not a finite number; it is never kept as a best "
                        "checkpoint (the other rules still apply)", cand.name, metric, value)
        return None
    return value


#: Names whose infinite metric was already reported by this process (a mirror plans again
#: every period).
_warned_infinite: set[str] = set()


def _age_order(files: list[_Ckpt]) -> None:
    """Oldest first: those a branch left behind before all others (the run does not go on
    from them, :func:`_mark_left`), then by epoch when every file has one, else by when each
    was written (its sidecar's ``saved``, else mtime: a store's mtime is when the upload
    ended, and a push's parallel uploads end in any order). Ties: mtime, name, id."""
    if files and all(c.epoch is not None for c in files):
        files.sort(key=lambda c: (c.left is None, c.epoch, c.cand.modified, c.cand.name,
                                  c.cand.id or ""))
    else:
        files.sort(key=lambda c: (c.left is None,
                                  c.cand.modified if c.cand.saved is None else c.cand.saved,
                                  c.cand.modified, c.cand.name, c.cand.id or ""))


def _mark_left(files: list[_Ckpt], records: Iterable[Candidate] = ()) -> list[_Ckpt]:
    """Set ``left`` on the checkpoints and autosaves a branch record left behind (all
    managed files of every run at once: a record on an autosave leaves epochs behind too).
    Only a verified record counts: until its sidecar vouches for it on the store (or beside
    it, for a push that sends both first), the line it leaves stays ranked as before."""
    def progress(c: _Ckpt) -> Optional[tuple[int, int]]:
        # (An autosave's ``_Ckpt.epoch`` is its number: only its sidecar's epoch counts.)
        epoch = c.cand.epoch if c.cand.epoch is not None or c.kind == AUTOSAVE else c.epoch
        return None if epoch is None else (epoch, c.cand.epoch_iteration)

    points = [lineage.Point(str(i), c.cand.run, progress(c), c.cand.saved,
                            c.cand.branch if c.cand.verified else None)
              for i, c in enumerate(files)]
    # Verified records on files the policy does not manage (best.pt): they rank nothing.
    points += [lineage.Point(f"r{i}", r.run, None if r.epoch is None else
                             (r.epoch, r.epoch_iteration), r.saved, r.branch)
               for i, r in enumerate(records) if r.branch is not None and r.verified]
    for key, record in lineage.left_behind(points).items():
        if not key.startswith("r"):
            files[int(key)].left = record.progress[0] if record.progress else None
    return files


def _age_ordered(files: list[_Ckpt]) -> list[_Ckpt]:
    _age_order(files)
    return files


def _runs_oldest_first(files: list[_Ckpt], unshifted: bool = False) -> list[Optional[str]]:
    """The runs among ``files``, the one whose newest file is oldest first (``unshifted``: a
    local file's time by this machine's clock, :attr:`Candidate.unshifted`)."""
    last: dict[Optional[str], float] = {}
    for c in files:
        at = c.cand.unshifted if unshifted and c.cand.unshifted is not None else c.cand.modified
        last[c.cand.run] = max(last.get(c.cand.run, at), at)
    return sorted(last, key=lambda run: (last[run], run or ""))


def _runs_dropped(files: list[_Ckpt], keep: int) -> set[Optional[str]]:
    """The runs ``keep_runs`` ``keep`` drops: older than the ``keep`` most recent by the
    store's clock and by this machine's. Where the two differ (a local file's mtime is this
    machine's, a store's file's date the store's), which is wrong is not known: read by a
    wrong one, the run being trained here, or another machine's newer one, read older and
    went (attack48). A run goes only where both say so."""
    return _dropped_runs(_runs_oldest_first(files), keep) & \
        _dropped_runs(_runs_oldest_first(files, unshifted=True), keep)


def _dropped_runs(runs: list[Optional[str]], keep: int) -> set[Optional[str]]:
    """The named runs older than the ``keep`` most recent ones. Checkpoints whose sidecar
    names no run are never dropped: one written a moment ago whose sidecar has not arrived
    yet must not make its own run look old."""
    named = [r for r in runs if r is not None]
    return set(named[:-keep])


def kept_runs(files: Iterable[Candidate], policy: RetentionPolicy) -> set[Optional[str]]:
    """The runs of the managed checkpoints and autosaves among ``files`` that ``keep_runs``
    keeps (all of them without it)."""
    managed = [_Ckpt(c, policy.kind_of(c.name), None, None) for c in files
               if policy.kind_of(c.name) in (CHECKPOINT, AUTOSAVE)]
    runs = _runs_oldest_first(managed)
    if policy.keep_runs is None:
        return set(runs)
    return set(runs) - _runs_dropped(managed, policy.keep_runs)


_NUMBER = re.compile(r"\d+")


def _autosave_number(name: str, policy: RetentionPolicy) -> Optional[int]:
    """The first number of the autosave pattern's match (the trainer writes its iteration
    there: ``autosave_00004120.pt``)."""
    prefix = policy.autosave_regex.search(name)
    number = _NUMBER.search(name, prefix.start() if prefix else 0)
    try:   # (a title of 5,000 digits: int()'s ValueError stopped every plan: attack44)
        return int(number.group()) if number else None
    except ValueError:
        return None


def _managed(cand: Candidate, kind: str, policy: RetentionPolicy) -> _Ckpt:
    """A managed checkpoint or autosave with what orders it (epoch, or an autosave's number)
    and ranks it (the metric)."""
    if kind == AUTOSAVE:
        return _Ckpt(cand, kind, _autosave_number(cand.name, policy), None)
    regex = policy.regex
    match = regex.search(cand.name)
    assert match is not None
    epoch = cand.epoch
    if epoch is None and "epoch" in regex.groupindex and match.group("epoch") is not None:
        try:
            epoch = int(match.group("epoch"))
        except ValueError:
            epoch = None
    return _Ckpt(cand, kind, epoch, _metric_of(cand, match, policy.metric))
