"""Checkpoint sidecars: the one convention the trainer and drivestage share.

A checkpoint ``X.pt`` has its sidecar ``X.json`` beside it (the stem plus ``.json``; a name
without a suffix gets ``name.json``). drivestage 0.1.0's hook wrote ``X.pt.json``: it is still
read, never written. A sidecar is small JSON (format 3)::

    {"format": 3, "epoch": 7, "iteration": 4120, "epoch_iteration": 300,
     "metrics": {"map50": 0.41}, "run": "20261201-151200-3f2a", "md5": "...", "size": 23456789,
     "saved": 1764689520.25, "branch": null}

* ``epoch``: epochs completed; ``iteration``: optimizer steps since the start of training;
  ``epoch_iteration``: steps completed in the epoch under way (0 at an epoch boundary). So
  ``(epoch, epoch_iteration)`` orders checkpoints by training progress.
* ``run``: the identity of the training run that wrote it (None for other loops).
* ``md5`` / ``size``: of the checkpoint file the sidecar describes.
* ``saved`` (format 3): when the checkpoint was written, Unix seconds by the clock of the
  machine that wrote it, taken before any upload (the trainer: when it took the state it
  then wrote, so that its saves are in the order of their progress; ``CheckpointSync``:
  the file's mtime). Within a run, retention never deletes the verified
  checkpoint saved last (:mod:`drivestage.retention`), so a sidecar claiming more progress
  than its run made cannot get the real newest deleted. Read as None (no save time, no such
  protection) when absent (formats 1 and 2), not a finite number, negative, or more than
  :data:`FUTURE_SLACK_S` ahead of this machine's clock (or of Drive's, where it and its stamps
  run ahead: :func:`drivestage.drive.server_clock.latest`).
  Read from a store, a ``saved`` later than the sidecar's own modified time there counts as
  that time (:func:`no_later_than`).
* ``coming`` (a push into a folder where it may not delete: :mod:`drivestage.sidecar_phases`):
  the sidecar of the checkpoint about to be written over this one, in place (its own
  ``md5``, ``size``, ``epoch``, ...). Such a sidecar vouches for two files of its name: the
  one it describes and the one coming, each with its own description
  (:meth:`Sidecar.speaking_for`). Older readers ignore the key: they read the sidecar of
  the checkpoint it describes, and take the one coming for unverified until the push's
  last write, as they did before.
* ``branch``: set on a **branch record** only (a run resumed on purpose from this older
  checkpoint re-dated its ``saved``: :func:`trainer.resume.record_branch`): the ``saved`` it
  had before the first such record, i.e. when this state was first saved (0: unknown).
  The checkpoints of the run further on than it and saved before the record are the line
  left behind (:mod:`drivestage.lineage`); absent or null on every other sidecar.

Readers ignore ``format`` and keys they do not know (every version so far has), so an older
drivestage reads a format-3 sidecar as before, without ``saved``; formats 1 and 2 and the
0.1.0 form (``global_step`` for ``iteration``) are read here.

A checkpoint on a store is **verified** when its sidecar is there (push uploads a sidecar only
after its checkpoint's md5 matched the remote's) and, when the sidecar names an md5, that md5
is the checkpoint's remote md5: a sidecar left from an older version of a replaced file does
not vouch for the new bytes. :func:`newest` is the one rule for "the newest verified
checkpoint", and :func:`vouched` the one rule for which of same-named copies is read.
Nothing here does I/O beyond local reads, the writes of :func:`write` and the one small read
of :func:`fetch`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional, Sequence, Union

from drivestage import latest_clock, sources
from drivestage.localfs import open_regular
from drivestage.paths import plain_name
from drivestage.store import RemoteEntry, RemoteStore

log = logging.getLogger(__name__)

SUFFIX = ".json"
FORMAT = 3
#: Files with these suffixes are checkpoints even without a sidecar: a push replaces one by
#: a new file, never overwrites it in place (a sidecar on the store may vouch for its bytes).
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")
#: Sidecars larger than this are not read (they are a few hundred bytes).
MAX_BYTES = 1 << 20
#: A ``saved`` time further ahead of this machine's clock than this is no save time: clocks
#: of machines disagree by seconds, and a save cannot happen in the future. Where Drive's
#: clock, as its answers say it, runs ahead of this machine's, ahead of Drive's
#: (:mod:`drivestage.latest_clock`).
FUTURE_SLACK_S = 86400.0


@dataclass(frozen=True)
class Sidecar:
    """What a sidecar says about its checkpoint."""

    epoch: Optional[int] = None
    iteration: Optional[int] = None
    epoch_iteration: int = 0
    metrics: Mapping[str, float] = field(default_factory=dict)
    run: Optional[str] = None
    md5: Optional[str] = None
    size: Optional[int] = None
    saved: Optional[float] = None   # when the checkpoint was written (Unix seconds)
    branch: Optional[float] = None  # a branch record's first ``saved`` (None: no record)
    #: The sidecar of the checkpoint being written over this one in place (see ``coming``
    #: above); None on every other sidecar.
    coming: Optional["Sidecar"] = None

    @property
    def progress(self) -> tuple[int, int]:
        """``(epochs completed, steps into the next epoch)``: training progress, comparable."""
        return (-1 if self.epoch is None else self.epoch, self.epoch_iteration)

    @property
    def md5s(self) -> frozenset[str]:
        """The md5s of the files this sidecar vouches for: its own, and the one coming."""
        return frozenset(m for m in (self.md5, self.coming and self.coming.md5) if m)

    def speaking_for(self, md5: Optional[str]) -> "Sidecar":
        """This sidecar as it describes the file of ``md5``: the one coming where that is
        its md5 (and not this one's), else this one."""
        coming, md5 = self.coming, (md5 or "").lower()
        if coming is not None and md5 and coming.md5 == md5 and self.md5 != md5:
            return coming
        return self

    def vouches_for(self, md5: Optional[str]) -> bool:
        """Whether it vouches for the bytes of ``md5``: it names no md5, or this one (its own
        or the one coming's); ``md5`` None (not known) counts as vouched for, as ever."""
        return self.md5 is None or md5 is None or md5.lower() in self.md5s

    def to_bytes(self) -> bytes:
        """The JSON text (keys sorted, finite metrics only)."""
        body = self._body()
        if self.coming is not None:   # (only a push's first write carries it)
            body["coming"] = self.coming._body()
        return json.dumps(body, indent=1, sort_keys=True).encode()

    def _body(self) -> dict[str, object]:
        body: dict[str, object] = {"format": FORMAT, "epoch": self.epoch, "iteration": self.iteration,
                "epoch_iteration": self.epoch_iteration,
                "metrics": {str(k): float(v) for k, v in self.metrics.items()
                            if _number(v) is not None},
                "run": self.run, "md5": self.md5, "size": self.size, "saved": self.saved}
        if self.branch is not None:  # (only a record carries it: other sidecars unchanged)
            body["branch"] = self.branch
        return body


def name_for(checkpoint: str) -> str:
    """The sidecar's name for a checkpoint name or path: ``epoch_004.pt`` -> ``epoch_004.json``."""
    stem, ext = os.path.splitext(checkpoint)
    return (stem if ext and ext != SUFFIX else checkpoint) + SUFFIX


def is_sidecar(name: str) -> bool:
    """True for a name that can only be a sidecar (``*.json``)."""
    return name.endswith(SUFFIX)


def pairs(names: Iterable[str]) -> dict[str, str]:
    """Checkpoint name -> its sidecar's name, among ``names`` (one folder's listing).

    The current form (``X.json`` for ``X.pt``) wins over the legacy one (``X.pt.json``). A
    name that is not one plain path component (a Drive title may hold ``/`` or be ``..``) is
    never a checkpoint: a resume would write it outside its folder."""
    present = {n for n in names if plain_name(n)}
    out: dict[str, str] = {}
    for name in present:
        if is_sidecar(name):
            continue
        for side in (name_for(name), name + SUFFIX):
            if side in present:
                out[name] = side
                break
    return out


def owners(names: Iterable[str]) -> dict[str, set[str]]:
    """Sidecar name -> the checkpoints among ``names`` it describes, in either form
    (``X.json`` for ``X.pt`` and ``X.pth``; the legacy ``X.pt.json`` for ``X.pt``): a sidecar
    goes when all of them are gone."""
    present = {n for n in names if plain_name(n)}
    out: dict[str, set[str]] = {}
    for name in present:
        if is_sidecar(name):
            continue
        for side in {name_for(name), name + SUFFIX}:
            if side in present:
                out.setdefault(side, set()).add(name)
    return out


def _number(value: object) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:  # a JSON integer past a float's range
        return None
    return None if math.isnan(value) or math.isinf(value) else value


def _save_time(value: object) -> Optional[float]:
    """A ``saved`` value, or None when it cannot be a save time (see the module docstring)."""
    when = _number(value)
    # (Against Drive's clock too where it runs ahead: a machine more than a day behind read
    # every other machine's save time as in the future: clock49.)
    if when is None or when < 0 or when > latest_clock.latest() + FUTURE_SLACK_S:
        return None
    return when


def _count(value: object) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


_MD5_RE = re.compile(r"^[0-9a-f]{32}\Z")


def parse(data: Union[bytes, str], name: Optional[str] = None) -> Optional[Sidecar]:
    """A sidecar from its JSON (current and 0.1.0 forms), or None when it is not one.
    ``name``: the sidecar's, which the warning of an unreadable one names.

    Never raises: one unreadable sidecar must not stop a prune or a resume."""
    try:
        obj = json.loads(data)
    except (ValueError, TypeError, RecursionError) as exc:  # RecursionError: deep nesting
        # (named: "ignoring an unreadable checkpoint sidecar: Expecting value: line 1
        # column 1 (char 0)" left the user to guess which of a run's files: attackcli39)
        log.warning("ignoring the unreadable checkpoint sidecar %s (%s): it vouches for no "
                    "checkpoint", name or "(unnamed)", exc)
        return None
    if not isinstance(obj, dict):
        return None
    side = _from(obj)
    coming = _from(obj["coming"]) if isinstance(obj.get("coming"), dict) else None
    # (one that names no md5 vouches for nothing: not kept)
    return dataclasses.replace(side, coming=coming) if coming and coming.md5 else side


def _from(obj: dict[str, object]) -> Sidecar:
    """The sidecar a JSON object holds (its own keys: never a ``coming`` one's)."""
    iteration = _count(obj.get("iteration"))
    if iteration is None:
        iteration = _count(obj.get("global_step"))  # the trainer's 0.1.0 sidecars
    metrics = obj.get("metrics")
    md5 = obj.get("md5")
    run = obj.get("run")
    return Sidecar(
        epoch=_count(obj.get("epoch")), iteration=iteration,
        epoch_iteration=_count(obj.get("epoch_iteration")) or 0,
        metrics={str(k): v for k, v in ((k, _number(v)) for k, v in metrics.items())
                 if v is not None} if isinstance(metrics, dict) else {},
        run=run if isinstance(run, str) and run else None,
        md5=md5.lower() if isinstance(md5, str) and _MD5_RE.match(md5.lower()) else None,
        size=_count(obj.get("size")), saved=_save_time(obj.get("saved")),
        branch=_branch(obj.get("branch")))


def _branch(value: object) -> Optional[float]:
    """A record's first save time: a number >= 0 (a save time; 0 when it had none), else
    None (no record). Not capped like ``saved``: only the order of records uses it."""
    when = _number(value)
    return None if when is None or when < 0 else when


def read(path: str, *, follow: bool = True, real: str = "") -> Optional[Sidecar]:
    """The local sidecar file ``path``, parsed; None when absent, unreadable, not a regular
    file, larger than :data:`MAX_BYTES` or not a sidecar (or a link, unless ``follow``: a
    push's walked file, pushlinks46; or, ``real`` given, not where the walk found it there:
    :func:`drivestage.sources.open_walked`)."""
    data = read_bytes(path, follow=follow, real=real)
    return parse(data, path) if data is not None else None


def read_bytes(path: str, *, follow: bool = True, real: str = "") -> Optional[bytes]:
    """The bytes of the local sidecar file ``path`` (at most :data:`MAX_BYTES`); None when
    absent, unreadable, larger, or not a regular file (never waited on: a FIFO under a
    sidecar's name, in a run folder from elsewhere, hung ``trainer status`` and a resume)."""
    try:
        with os.fdopen(sources.opened(path, follow, real), "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError:
        return None
    return data if len(data) <= MAX_BYTES else None


def on_disk(side: Optional[Sidecar], checkpoint_path: str) -> Optional[Sidecar]:
    """``side``, read from beside the local file ``checkpoint_path``, as it describes that
    file: one that vouches for a checkpoint coming as well (pulled, or fetched by a resume,
    while a push wrote it: :mod:`drivestage.sidecar_phases`) speaks for the one whose md5
    the file has (the file is hashed then, only then). None when ``side`` is."""
    if side is None or side.coming is None:
        return side
    try:
        with os.fdopen(open_regular(checkpoint_path), "rb") as fh:
            digest = hashlib.md5()
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return side
    return dataclasses.replace(side.speaking_for(digest.hexdigest()), coming=None)


def write(checkpoint_path: str, sidecar: Sidecar) -> str:
    """Write the sidecar of ``checkpoint_path`` atomically; returns its path."""
    from drivestage.localfs import atomic_write, umask

    path = name_for(checkpoint_path)
    # As a plain open() would make it, like its checkpoint: 0644 whatever the umask made a
    # private run's sidecars readable by every user of the machine (attack28).
    atomic_write(path, sidecar.to_bytes(), mode=0o666 & ~umask())
    return path


def has_bytes(entry: RemoteEntry) -> bool:
    """Whether a store entry may be a checkpoint or a sidecar: a file (or a link to one) the
    store holds bytes of; never a folder, nor a Google Doc of a managed name (read as a
    sidecar, Drive's refusal of its download stopped every push and prune: attacksync33)."""
    return not entry.is_dir and (entry.has_content or entry.linked)


def fetch(store: RemoteStore, entry: RemoteEntry) -> Optional[bytes]:
    """The bytes of the sidecar ``entry`` on ``store`` (one ranged read), or None when it is
    larger than :data:`MAX_BYTES` or has no bytes to read (a Google Doc of its name: Drive
    refuses its download, which stopped every push and prune of the folder; attacksync33):
    then it is not read, and counts as no sidecar. Raises what the store raises."""
    if entry.size > MAX_BYTES or not entry.has_content:
        return None
    return store.fetch_range(entry, 0, entry.size) if entry.size else b""


def held(path: str, remote: Optional[RemoteEntry], kept: RemoteEntry,
         olds: Sequence[RemoteEntry], real: str = "") -> list[RemoteEntry]:
    """Which of a replaced checkpoint's old copies ``olds`` must stay beside its new copy
    ``kept`` (:func:`held_by`). ``path``: the local sidecar, read only when it holds the bytes
    of its copy ``remote`` on the store (else all of ``olds`` stay). Read as a push reads its
    walked files: never through a link (one to ``/dev/zero`` put there read for ever:
    pushlinks46), nor, ``real`` given, through a folder on its way swapped for one
    (:func:`drivestage.sources.open_walked`)."""
    data: Optional[bytes]
    try:
        # (A regular file only, opened without waiting: a FIFO put at its name once it was
        # sent held the push here for good, waiting for a writer: attack46.)
        with os.fdopen(sources.opened(path, False, real), "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
            digest = hashlib.md5(data)
            if len(data) > MAX_BYTES:  # no sidecar (vouches for nothing), but the same file?
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
                data = None
    except OSError:
        return list(olds)
    if remote is None or digest.hexdigest() != remote.md5:
        return list(olds)
    return held_by(data, kept, olds, path)


def held_by(data: Optional[bytes], kept: RemoteEntry,
            olds: Sequence[RemoteEntry], name: Optional[str] = None) -> list[RemoteEntry]:
    """The one of ``olds`` a sidecar on the store (its bytes ``data``) vouches for instead of
    ``kept`` (one written after its checkpoint names the old md5): the copy readers take
    (:func:`vouched`), so it must stay. None when the sidecar vouches for ``kept``, for any
    copy (it names no md5), or is no sidecar at all (``data`` None or unreadable)."""
    said = parse(data, name) if data is not None else None
    if said is None or said.vouches_for(kept.md5 or ""):
        return []
    named = [e for e in olds if (e.md5 or "").lower() in said.md5s]
    return [vouched(named, said)] if named else []


def vouched(copies: Sequence[RemoteEntry], side: Optional[Sidecar]) -> RemoteEntry:
    """The copy to read among same-named copies of a checkpoint (a push replacing it, or
    another machine's): the newest one whose md5 the sidecar names (its own first, then the
    one coming's: :attr:`Sidecar.coming`), else the newest (which then counts as verified
    only when the sidecar names no md5). Ties: the higher id, the same on every machine."""
    def key(e: RemoteEntry) -> tuple[bool, float, str]:
        return (side is not None and (e.md5 or "").lower() == side.md5, e.modified, e.id)

    named = [e for e in copies if side is not None and side.md5 is not None
             and e.md5 is not None and e.md5.lower() in side.md5s]
    return max(named or copies, key=key)


@dataclass(frozen=True)
class Described:
    """A checkpoint as listed (name, md5, mtime) with its parsed sidecar."""

    name: str
    sidecar: Sidecar
    md5: Optional[str] = None        # the checkpoint's md5 where the store knows it
    modified: float = 0.0
    created: float = 0.0             # when the store made it (Drive's createdDate; 0: unknown)

    def __post_init__(self) -> None:
        # The sidecar as it describes these bytes: the one coming's description where a
        # push's first write vouches for them as the checkpoint coming (sidecar_phases).
        object.__setattr__(self, "sidecar", self.sidecar.speaking_for(self.md5))

    @property
    def verified(self) -> bool:
        """The sidecar vouches for these bytes (it names no md5, or this md5)."""
        return self.sidecar.md5 is None or self.md5 is None or \
            self.sidecar.md5 == self.md5.lower()


def newest(checkpoints: Iterable[Described], *, run: Optional[str] = None,
           prefer: Optional["re.Pattern[str]"] = None,
           skip: Iterable[str] = ()) -> Optional[Described]:
    """The newest verified checkpoint: the most training progress, then (equal progress) a
    name matching ``prefer``, then the newer file, then the name. With ``run``, only that
    run's checkpoints count; names in ``skip`` (found unreadable) never do."""
    skipped = set(skip)
    best: Optional[tuple[tuple[tuple[int, int], bool, float, str], Described]] = None
    for c in checkpoints:
        if not c.verified or c.name in skipped or c.sidecar.epoch is None:
            continue
        if run is not None and c.sidecar.run != run:
            continue
        key = (c.sidecar.progress, bool(prefer and prefer.search(c.name)), c.modified, c.name)
        if best is None or key > best[0]:
            best = (key, c)
    return best[1] if best else None


def left_behind(checkpoints: Iterable[Described]) -> set[str]:
    """Names of the verified checkpoints (of one run) saved before the one saved last yet
    claiming more progress: the run was resumed on purpose from an older checkpoint after
    they were saved (a diverged loss sent back), or their sidecar overstates. They are not
    where the run goes on. A checkpoint without a save time is never among them (a doubt
    leaves the ranking by progress as it was)."""
    pool = [c for c in checkpoints if c.verified and c.sidecar.epoch is not None]
    head = saved_last(pool)
    if head is None or head.sidecar.saved is None:
        return set()
    last = head.sidecar.saved
    return {c.name for c in pool if c.sidecar.saved is not None and c.sidecar.saved < last
            and c.sidecar.progress > head.sidecar.progress}


def saved_last(checkpoints: Iterable[Described]) -> Optional[Described]:
    """The verified checkpoint whose sidecar says it was saved last (ties: the name); None
    when no verified one has a save time. For an honest run it is :func:`newest` itself;
    when a sidecar claims more progress than its run made, this is the run's real newest."""
    timed = [c for c in checkpoints if c.verified and c.sidecar.saved is not None]
    return max(timed, key=lambda c: (c.sidecar.saved or 0.0, c.name)) if timed else None


def no_later_than(side: Optional[Sidecar], arrived: float) -> Optional[Sidecar]:
    """``side`` read from a store, its ``saved`` no later than ``arrived`` (when the sidecar
    reached the store: its modified time there). A sidecar is sent after its checkpoint was
    saved, so a later save time is a clock running ahead or a lie; either would otherwise
    stay "saved last" over every checkpoint saved since."""
    if side is None or side.saved is None or arrived <= 0 or side.saved <= arrived:
        return side
    return dataclasses.replace(side, saved=arrived)
