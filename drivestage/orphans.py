"""Orphan sidecars: a checkpoint's sidecar left in the managed folder without its checkpoint.

Retention deletes a checkpoint before its sidecar (the other order would leave a checkpoint no
sidecar vouches for, kept for ever as the newest of the checkpoints without a run), so a push,
prune or CheckpointSync killed between the two deletions leaves the sidecar alone. The plan
(:mod:`drivestage.retention`) leaves every ``.json`` without its checkpoint alone; this module
says which such sidecars may go, as a pure function of what the caller read
(:func:`drivestage.pruning.view` finds the orphans, :func:`drivestage.pruning.apply` deletes).

An orphan ``X.json`` is retired only when all of these hold:

* **A managed name.** It is the sidecar of a name the policy manages (``X.pt``, ``X.pth``, ...
  :data:`SUFFIXES`, or the legacy ``X.pt.json`` of ``X.pt``), and no file of the folder bears
  such a name (else it is no orphan). Other JSONs (``config.json``, ``results.json``, the
  sidecar of a ``best.pt`` the policy does not manage) are never touched, nor is a name with
  several files (Drive allows duplicates).
* **It vouches for bytes that are not there.** It names an md5, a size (every sidecar
  drivestage wrote with an md5 has both: a user's notes naming a dataset's md5 are no
  sidecar) and an epoch (from the sidecar or the name), and no file of the folder holds that
  md5 (a checkpoint the user renamed in the folder keeps its sidecar).
* **Superseded, or old.** Either

  - *superseded in its run*: a verified checkpoint of the same run (a sidecar naming no run
    is a run of its own) is on the store, further on in training, saved later where both
    sidecars say when, and arrived on the store after the orphan did (by the store's times,
    :func:`arrived` and :func:`_first_held`: a sidecar that arrived later may be the first
    half of an upload whose checkpoint is still on its way), and the plan made with its
    checkpoint put back (verified, as its sidecar describes it) deletes that checkpoint: one
    that would be the newest of its run, the best or an every-E epoch keeps its sidecar.
    The order trusts dates a client may set (and the orphan's own first-seen mark's
    ``came``: the mark's write may move its modifiedDate), and needs no wait: wrong, it
    costs quota only, never a checkpoint retention keeps, since one the plan deletes is all
    that may still come, unverified (kept, in the run-less group) or as a lone autosave;
  - or *old*: the store has held the sidecar, as it is, for :data:`MIN_AGE` at least (a day;
    :func:`arrived`; only on a store that stamps arrivals itself, Drive: a directory's mtimes
    are what the copy tool set), and it was first seen by a retention pass as long ago (its
    first-seen mark, :mod:`drivestage.first_seen`: a client may set Drive's dates, and
    ``rclone copy -M`` of a year-old run folder sent a sidecar that looked a year old on
    arrival; until then the plan keeps it, saying since when it was seen): an upload that sent the sidecar first (Drive for desktop, rclone) has
    long delivered its checkpoint or never will. Its checkpoint is gone whatever the policy
    would do with it, so the sidecar keeps nothing: the quota it takes and a listing that
    ranks checkpoints by their sidecars are all it still costs. (A sidecar that is the only
    record of its run goes too, a day on.)

  and neither its checkpoint nor itself is protected (``--protect``, by name or id).

Before the deletion the folder is listed once more (:func:`still_orphan`): a checkpoint of
that name back on the store (another machine sending it again under the same name) or a
sidecar changed since the plan cancels it. That second listing is the evidence against a
listing that lags (Drive's is eventually consistent; a search by name is a listing too, no
better): a checkpoint the plan's listing did not show yet is seen there. What no number of
listings can rule out is a checkpoint that reaches the store in the last moments before the
re-check, a day or more after its sidecar: its sidecar is retired, and the checkpoint stays
unverified (kept as the newest of the run-less ones) until its uploader sends the sidecar
again. Nothing is lost but the quota of that one checkpoint; ``--use-trash`` keeps the
sidecar restorable. Retiring costs no request of its own: the re-check listing is shared by
every deletion of the plan, and each orphan is one deletion.
"""
from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Sequence

from drivestage import first_seen, lineage, sidecar
from drivestage.retention import AUTOSAVE, CHECKPOINT, OTHER, SIDECAR, Candidate, Decision, \
    Plan, RetentionPolicy, plan
from drivestage.sidecar import Described, Sidecar
from drivestage.store import RemoteEntry

#: Suffixes of a checkpoint whose sidecar ``X.json`` is (the default pattern's, and push's;
#: then none: ``X``).
SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".safetensors", ".h5", ".keras", ".weights",
            ".pkl", ".npz", ".tar")


@dataclass(frozen=True)
class Orphan:
    """A sidecar on the store without its checkpoint, and what it says."""

    entry: RemoteEntry              # the sidecar as listed (its md5 and modified time)
    checkpoint: str                 # the managed name it is the sidecar of
    sidecar: Sidecar


def checkpoint_name(name: str, policy: RetentionPolicy) -> Optional[str]:
    """The name the policy manages whose sidecar ``name`` is, or None."""
    if not sidecar.is_sidecar(name) or policy.kind_of(name) != SIDECAR:
        return None
    stem = name[: -len(sidecar.SUFFIX)]
    legacy = [stem] if os.path.splitext(stem)[1] in SUFFIXES else []  # X.pt.json of X.pt
    for ckpt in legacy + [stem + suffix for suffix in SUFFIXES if suffix] + [stem]:
        if ckpt and (sidecar.name_for(ckpt) == name or ckpt + sidecar.SUFFIX == name) \
                and policy.kind_of(ckpt) in (CHECKPOINT, AUTOSAVE):
            return ckpt
    return None


#: How long the store must have held an orphan sidecar, unchanged, before it goes without a
#: newer checkpoint of its run (seconds): longer than any upload of a checkpoint that an
#: uploader sending the sidecar first may still complete, and than Drive's listings lag.
#: (A lone autosave, a checkpoint whose sidecar never came, waits as long:
#: :mod:`drivestage.lone_autosaves`.)
MIN_AGE = 24 * 3600.0


def arrived(entry: RemoteEntry, mark: Optional[first_seen.Mark] = None) -> float:
    """When the store received ``entry`` as it is now, as late as its times allow: the later
    of Drive's createdDate and modifiedDate (the later one when the file changed in place),
    or the earlier time its own first-seen ``mark`` says
    (:func:`drivestage.first_seen.arrival`: the mark's own write may move modifiedDate to
    its time). Drive stamps both dates on
    arrival unless the client sets them (rclone ``-M``, Drive for desktop: a sidecar sent
    today may say a year ago), so an age by these alone never retires a file: its first-seen
    mark must be as old (:func:`waits`). A store without creation times (a directory: 0)
    has its mtime."""
    return first_seen.arrival(entry, mark)


def _first_held(d: Described) -> float:
    """When the store held the checkpoint ``d`` first, as early as its times allow (the
    earlier of its creation and modified times that are known): a superseder counts as
    arriving after an orphan only when even this is later than :func:`arrived` of it."""
    known = [t for t in (d.created, d.modified) if t > 0]
    return min(known) if known else 0.0


def superseded_by(orphan: Orphan, described: Iterable[Described],
                  came: Optional[float] = None) -> Optional[Described]:
    """The newest verified checkpoint of the orphan's run that supersedes it (further on,
    saved later where both say, on the store since after the orphan arrived: at ``came``,
    else :func:`arrived` by its dates), or None."""
    said = orphan.sidecar
    came = arrived(orphan.entry) if came is None else came
    later = [d for d in described
             if d.verified and d.sidecar.run == said.run and d.sidecar.epoch is not None
             and d.sidecar.progress > said.progress and _first_held(d) > came
             and (said.saved is None
                  or (d.sidecar.saved is not None and d.sidecar.saved > said.saved))]
    return sidecar.newest(later) or _left_by_record(orphan, described)


def _left_by_record(orphan: Orphan, described: Iterable[Described]) -> Optional[Described]:
    """The verified branch record in force of the orphan's run that left its checkpoint
    behind (:mod:`drivestage.lineage`: further on than the record, saved before it), or
    None. Such a checkpoint is not where the run goes on: were it sent again, retention
    would rank it below the record's line, so waiting for it keeps nothing (a retention
    killed between a left-behind checkpoint's deletion and its sidecar's)."""
    said, mark = orphan.sidecar, "\0" + orphan.entry.id
    checkpoints = [d for d in described if d.verified]
    points = [lineage.Point(d.name, d.sidecar.run,
                            d.sidecar.progress if d.sidecar.epoch is not None else None,
                            d.sidecar.saved, d.sidecar.branch) for d in checkpoints]
    points.append(lineage.Point(mark, said.run, said.progress if said.epoch is not None
                                else None, said.saved))
    record = lineage.left_behind(points).get(mark)
    return next((d for d in checkpoints if record is not None and d.name == record.key), None)


def waits(entry: RemoteEntry, seen: Optional[first_seen.Seen],
          now: float) -> tuple[Optional[str], float]:
    """Why ``entry``, old by its dates (:func:`arrived`), waits still (None: it may go), and
    how long the store has held it at least (since the later of its dates and its mark): it
    waits while its first-seen mark (``seen``, written by the first pass that asks) is not
    :data:`MIN_AGE` old, or where none can be kept (no ``seen``: a caller keeping none)."""
    mark = seen(entry) if seen is not None else None
    if mark is None:
        return "its first-seen mark could not be written on the store, so it is kept", 0.0
    held = now - max(mark.at, arrived(entry))
    if now - mark.at < MIN_AGE:
        return f"first seen {first_seen.when(mark.at)}; retired {_ago(MIN_AGE)} after", held
    return None, held


def _ago(seconds: float) -> str:
    """An age in whole hours (whole days from three days on), rounded down."""
    hours = int(seconds // 3600)
    return f"{hours} h" if hours < 72 else f"{hours // 24} days"


def retire(decided: Plan, candidates: Sequence[Candidate], described: Sequence[Described],
           orphans: Sequence[Orphan], policy: RetentionPolicy, *, protect: Iterable[str] = (),
           also_keep: Optional[Mapping[str, Iterable[str]]] = None,
           now: Optional[float] = None, seen: Optional[first_seen.Seen] = None) -> Plan:
    """``decided`` (the plan of ``candidates``) with the orphans that may go deleted: each
    one's decision becomes a delete, labelled as an orphan's retirement; one old by its
    dates whose first-seen mark is not yet (``seen``, :mod:`drivestage.first_seen`; None:
    none kept, so none retired by age) is kept saying since when. ``now``: this machine's
    clock (seconds since the epoch), against which an orphan's age is measured."""
    if not policy.active:
        return decided
    now = time.time() if now is None else now
    protect = list(protect)
    pinned = set(protect) | {n for names in (also_keep or {}).values() for n in names}
    retired: dict[str, Decision] = {}
    kept: dict[str, str] = {}   # id -> why an orphan old by its dates waits
    for orphan in orphans:
        if orphan.entry.md5 is None:
            continue
        came = arrived(orphan.entry, first_seen.listed(orphan.entry, now))
        newer = superseded_by(orphan, described, came)
        if newer is not None:
            said = orphan.sidecar
            back = Candidate(orphan.checkpoint, said.size or 0, orphan.entry.modified,
                             dict(said.metrics), said.epoch, None, True, said.run, said.saved,
                             said.epoch_iteration)
            again = plan(list(candidates) + [back], policy, protect=protect,
                         also_keep=also_keep)
            if any(d.name == orphan.checkpoint and d.id is None and not d.keep for d in again):
                retired[orphan.entry.id] = Decision(
                    orphan.entry.name, False,
                    f"orphan sidecar: {orphan.checkpoint} is not here, and {newer.name} of its "
                    + ("run is further on and verified" if newer.sidecar.progress > said.progress
                       else "run is where it went back to (verified)"),
                    orphan.entry.size, orphan.entry.id,
                    SIDECAR, orphan_md5=orphan.entry.md5)
                continue
        # Old: whatever supersedes it or not. Only on a store that stamps arrivals itself
        # (Drive's createdDate): a directory's mtimes are the writer's word (cp -p, rsync -t
        # give a file sent today last year's). A client may set Drive's dates too (rclone
        # -M), so the first-seen mark must be as old (waits). ``now`` is the earlier of this
        # machine's clock and Drive's (RemoteStore.clock: one running ahead ages nothing
        # early; one behind gives a smaller age, kept longer). The age is by
        # its dates as they are now (the later: a mark's own write or a rename that moved
        # modifiedDate makes it wait longer, never less); the order above took its mark's.
        age = now - arrived(orphan.entry)
        if orphan.entry.created > 0 and age >= MIN_AGE and not {orphan.checkpoint, orphan.entry.name,
                                   orphan.entry.id} & pinned:
            why, age = waits(orphan.entry, seen, now)
            if why is not None:
                kept[orphan.entry.id] = f"orphan sidecar: {orphan.checkpoint} is not here; {why}"
                continue
            retired[orphan.entry.id] = Decision(
                orphan.entry.name, False,
                f"orphan sidecar: {orphan.checkpoint} is not here, and this sidecar reached the "
                f"store {_ago(age)} ago", orphan.entry.size, orphan.entry.id, SIDECAR,
                orphan_md5=orphan.entry.md5)
    if not retired and not kept:
        return decided
    return dataclasses.replace(decided, decisions=tuple(
        retired[d.id] if d.kind == OTHER and d.id in retired
        else dataclasses.replace(d, reason=kept[d.id]) if d.kind == OTHER and d.id in kept
        else d for d in decided))


def still_orphan(decision: Decision, listing: Iterable[RemoteEntry]) -> bool:
    """The orphan sidecar ``decision`` retires is on the store as planned (same md5), and no
    checkpoint of its name came back (``listing``: the folder, listed again)."""
    entries = list(listing)
    names = {e.name for e in entries if not e.is_dir}
    if decision.name in sidecar.owners(names):
        return False
    return any(e.id == decision.id and e.md5 == decision.orphan_md5 for e in entries)
