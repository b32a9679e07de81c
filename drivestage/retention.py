"""Retention: a pure function from "what exists" to "what to delete".

Nothing here touches a store or the disk. The caller lists the managed folder, reads the
checkpoint sidecars it wants to use (:mod:`drivestage.sidecar`), builds :class:`Candidate`
objects and asks :func:`plan` what to keep. Every :class:`Decision` carries its ``kind``
(``checkpoint``, ``autosave``, ``sidecar`` or ``other``), so callers never read the reason text.

Rules (all of them are documented behaviour, and tested):

* **Managed files.** A file is a managed checkpoint when ``re.search(pattern, name)`` matches
  and its name does not end in ``.json``. Anything else is never deleted (kind ``other``,
  reason ``"not a checkpoint ..."``); names with ``/`` or ``\\``, ``.``, ``..`` are outside.
* **Autosaves.** A file matching ``autosave_pattern`` (default ``autosave_<number>``; a trainer's
  time-based checkpoints ``autosave_<iteration>.pt``) is an autosave, whatever ``pattern``
  says. Autosaves never count against ``keep_last``/``keep_best``/``keep_every``: the plan
  keeps the newest *verified* one (``Candidate.verified``, which the caller sets from the
  sidecar), every one newer than it (still in flight) and the verified one *saved last*
  (``Candidate.saved``, as for checkpoints), and deletes the older ones. With
  no verified autosave, none is deleted (one on the store without a sidecar, a push killed
  between its two uploads, names no run: :mod:`drivestage.lone_autosaves` says when it
  goes). Their order is the number in the name when every autosave has one, else
  ``modified``. They count toward ``max_bytes``, and the budget never
  deletes them.
* **Sidecars.** A checkpoint's sidecar (``epoch_004.json`` for ``epoch_004.pt``, or the
  legacy ``epoch_004.pt.json``; :func:`drivestage.sidecar.owners`) follows it: it is deleted
  exactly when every checkpoint it belongs to is deleted (and it is not itself protected). A
  ``.json`` without its checkpoint (an orphan, e.g. a sidecar uploaded first) is left alone
  here; :mod:`drivestage.orphans` says which orphans may go.
  :func:`plan` takes sidecar *contents already parsed*, in ``Candidate.metrics`` /
  ``Candidate.epoch`` of the checkpoint, so it stays pure.
* **Branches.** Checkpoints and autosaves a branch left behind (further on than a *branch
  record* of their run, on any file, ``best.pt`` too, and saved before it:
  :mod:`drivestage.lineage`; ``Candidate.branch``)
  are older than every other one of their run, whatever their epoch: ``keep_last`` keeps the
  newest of the line the run goes on with first, the budget deletes them first, and the
  newest is that line's. A run never sent back has no record: nothing changes for it.
* **Age order.** By the ``epoch`` named group of the pattern (or ``Candidate.epoch``, which
  wins, e.g. from a sidecar) when every managed checkpoint has one; otherwise by when each
  was written for all of them: ``Candidate.saved`` (the sidecar's) where known, else
  ``modified`` (mtime). Ties: ``modified``, then name, then id (deterministic).
* **Keep rules** (a file is kept when any rule keeps it): ``keep_last`` keeps the N newest;
  ``keep_best`` the K best by ``metric`` under ``mode`` (ties go to the newer checkpoint;
  files without the metric, or with NaN or an infinity, are never "best": an infinity would
  stay best for ever; a warning names it, once per name and process); ``keep_every`` epochs that are
  multiples of E. The metric comes from ``Candidate.metrics`` (a sidecar) or, failing that,
  from a named group of the pattern with the metric's name.
* **With no option set, nothing is deleted.** With only ``max_bytes`` set,
  everything is kept unless the budget demands otherwise.
* **Runs.** A checkpoint whose sidecar names a ``run`` (``Candidate.run``) is only ever
  compared with checkpoints of the same run: age order, ``keep_last``, ``keep_best``,
  ``keep_every``, the newest and the autosave rule apply within each run (checkpoints whose
  sidecar names no run are one run of their own), so every run keeps at least its newest.
  ``keep_runs`` N keeps the N most recent named runs (by their newest file's ``modified``)
  and deletes the older runs' checkpoints and autosaves (``protect`` still wins; checkpoints
  whose sidecar names no run are never dropped by it).
* **Never deleted:** the newest managed checkpoint of every run, the newest *verified* one
  (``Candidate.verified``: a newer checkpoint whose sidecar is not written yet does not retire
  it), the verified one *saved last* (``Candidate.saved``, the sidecar's ``saved``: for an
  honest run the newest itself, so nothing more is kept; when a sidecar claims more progress
  than its run made, or a run resumed from an older checkpoint, the newest and the one
  written last both stay; checkpoints without a save time get no such protection), the kept
  best, anything in ``protect`` (e.g. the checkpoint a run resumed from) or ``also_keep``
  (with its own label: e.g. what :func:`just_written` names, a push's newest local
  checkpoint and autosave of every run, so a sidecar on the store claiming more progress
  never keeps them from it), unmanaged files.
* **Budget.** ``max_bytes`` bounds the managed checkpoints and autosaves (their sidecars
  included) plus ``incoming_bytes``. When over, the oldest kept checkpoints that are not
  newest/best/protected are deleted until it fits, the oldest run's first. When it cannot
  fit even after that, *no* budget deletion is planned (deleting and then failing the upload
  would lose data for nothing) and ``Plan.fits`` is False so the caller can fail before uploading;
  ``Plan.floor_bytes`` is then the smallest budget that holds what no budget deletes
  (``Plan.pinned``), which the error names (:func:`drivestage.pruning.over_budget`).
"""
from __future__ import annotations

from typing import Callable, Iterable, Mapping, Optional

from drivestage import sidecar
from drivestage.retention_plan import Decision as Decision
from drivestage.retention_plan import Plan as Plan
from drivestage.retention_plan import format_plan as format_plan
from drivestage.retention_policy import AUTOSAVE as AUTOSAVE
from drivestage.retention_policy import CHECKPOINT as CHECKPOINT
from drivestage.retention_policy import DEFAULT_AUTOSAVE_PATTERN as DEFAULT_AUTOSAVE_PATTERN
from drivestage.retention_policy import DEFAULT_PATTERN as DEFAULT_PATTERN
from drivestage.retention_policy import OTHER as OTHER
from drivestage.retention_policy import SIDECAR as SIDECAR
from drivestage.retention_policy import RetentionPolicy as RetentionPolicy
from drivestage.retention_policy import inside_folder as _inside_folder
from drivestage.retention_policy import check_metric_name, lone_json_reason
# What orders and ranks the files lives in its own module; its names stay importable here.
from drivestage.retention_order import Candidate as Candidate
from drivestage.retention_order import kept_runs as kept_runs
from drivestage.retention_order import (_age_ordered, _Ckpt, _managed, _mark_left,
                                        _runs_dropped, _runs_oldest_first)
from drivestage.sizes import format_size, parse_size  # noqa: F401 (parse_size: trainer)


def just_written(files: Iterable[Candidate], policy: RetentionPolicy,
                 local: Iterable[str]) -> set[str]:
    """What a push never prunes: among ``files`` (everything in the managed folder) named in
    ``local`` (the files about to be pushed), the newest checkpoint and the newest autosave of
    every run the policy keeps, in the plan's age order among the local ones alone. The
    checkpoint just written then always reaches the store: a sidecar there that claims more
    progress (damaged, or written by a buggy tool) can cost quota, never new checkpoints."""
    files = list(files)
    mine = set(local)
    runs = kept_runs(files, policy)
    out: set[str] = set()
    # (A branch left behind is judged over the whole folder: the record may be there only.)
    managed = _mark_left([_managed(c, policy.kind_of(c.name), policy) for c in files
                          if policy.kind_of(c.name) in (CHECKPOINT, AUTOSAVE)],
                         [c for c in files if policy.kind_of(c.name) == OTHER])
    for kind in (CHECKPOINT, AUTOSAVE):
        local_ones = [c for c in managed if c.cand.name in mine and c.kind == kind
                      and c.cand.run in runs]
        for run in runs:
            ordered = _age_ordered([c for c in local_ones if c.cand.run == run])
            if ordered:
                out.add(ordered[-1].cand.name)
    return out


def plan(files: Iterable[Candidate], policy: RetentionPolicy, *, protect: Iterable[str] = (),
         also_keep: Optional[Mapping[str, Iterable[str]]] = None,
         incoming_bytes: int = 0) -> Plan:
    """Decide, for every file in the managed folder, keep or delete (with a reason).

    ``files``: every file listed in the folder (sidecars included).
    ``protect``: names (or ids) that must survive (the checkpoint resumed from), labelled
    "protected". ``also_keep``: more names (or ids) that must survive, by the label their
    decision gives (``{"just written": ...}``). ``incoming_bytes``: the size about to be
    uploaded, counted against ``max_bytes``. The result is in a stable order: managed
    checkpoints oldest first, each followed by its sidecar, then autosaves the same way,
    then other files by name.
    """
    files = list(files)
    pins = [("protected", set(protect))] + [(why, set(names))
                                            for why, names in (also_keep or {}).items()]

    def pinned_by(c: Candidate) -> list[str]:
        """The labels of what keeps ``c`` whatever the rules say (by name or id)."""
        return [why for why, names in pins
                if c.name in names or (c.id is not None and c.id in names)]

    ckpts: list[_Ckpt] = []
    autos: list[_Ckpt] = []
    jsons: list[Candidate] = []
    others: list[tuple[Candidate, str]] = []
    for cand in files:
        kind = policy.kind_of(cand.name)
        if kind == SIDECAR:
            jsons.append(cand)
        elif kind == AUTOSAVE:
            autos.append(_managed(cand, kind, policy))
        elif kind == CHECKPOINT:
            ckpts.append(_managed(cand, kind, policy))
        elif not _inside_folder(cand.name):
            others.append((cand, "outside the managed folder"))
        else:
            others.append((cand, "not a checkpoint (name does not match the pattern)"))

    # A --metric typo ranks nothing: refused before anything is planned (see the function).
    check_metric_name(policy, (c.cand.metrics for c in ckpts))

    # Sidecars follow the checkpoints and autosaves they describe (both name forms).
    owned = sidecar.owners([c.cand.name for c in ckpts + autos] + [j.name for j in jsons])
    sidecars: list[tuple[Candidate, set[str]]] = []
    unmanaged = [c.name for c, _ in others]
    # A sidecar belongs to one checkpoint name: ``X.json`` for both ``X.pt`` and ``X.pth``
    # is the one whose bytes it vouches for (prune24: it stayed while either was kept, the
    # vouched one deleted: an epoch and metrics about bytes gone, beside the other name).
    # Vouching for neither, it stays while either is kept (nothing tells them apart).
    vouched = {c.cand.name for c in ckpts + autos if c.cand.verified}
    for j in jsons:
        if j.name in owned:
            sidecars.append((j, (owned[j.name] & vouched) or owned[j.name]))
        else:
            others.append((j, lone_json_reason(j.name, unmanaged)))

    # Every rule applies within one run; runs in the order they last wrote (oldest first).
    _mark_left(ckpts + autos, [c for c, _ in others])
    runs = _runs_oldest_first(ckpts + autos)
    ckpts = [c for run in runs for c in _age_ordered([c for c in ckpts if c.cand.run == run])]
    autos = [c for run in runs for c in _age_ordered([c for c in autos if c.cand.run == run])]
    for run in runs:
        _keep_checkpoints([c for c in ckpts if c.cand.run == run], policy)
        _keep_autosaves([c for c in autos if c.cand.run == run], policy.active)
    if policy.keep_runs is not None:
        dropped = _runs_dropped(ckpts + autos, policy.keep_runs)
        for c in ckpts + autos:
            if c.cand.run in dropped:
                c.keep = c.pinned = False
                c.reasons.clear()
                c.delete_reason = (f"an older run ({c.cand.run}) than the "
                                   f"{policy.keep_runs} most recent (keep_runs)")
    for c in ckpts + autos:
        whys = pinned_by(c.cand)
        if whys:
            c.keep = c.pinned = True
            c.reasons[:0] = [why for why in whys if why not in c.reasons]
        if not c.keep and not c.delete_reason:
            c.delete_reason = f"not kept by the policy ({policy.describe()})"
        if not c.keep and c.left is not None:
            c.delete_reason = f"left behind (the run went back to epoch {c.left}); " \
                + c.delete_reason

    def kept_total() -> int:
        kept_names = {c.cand.name for c in ckpts + autos if c.keep}
        return (sum(c.cand.size for c in ckpts + autos if c.keep)
                + sum(j.size for j, owners in sidecars if owners & kept_names or pinned_by(j)))

    kept_bytes = kept_total()
    fits, floor = True, 0
    pinned: tuple[str, ...] = ()
    if policy.max_bytes is not None and kept_bytes + incoming_bytes > policy.max_bytes:
        victims: list[_Ckpt] = []
        for c in ckpts:  # oldest first
            if kept_total() + incoming_bytes <= policy.max_bytes:
                break
            if c.keep and not c.pinned:
                c.keep = False
                victims.append(c)
        if kept_total() + incoming_bytes <= policy.max_bytes:
            for c in victims:
                c.delete_reason = (f"over the {format_size(policy.max_bytes)} budget "
                                   "(oldest deletable first)")
        else:
            fits = False  # deleting would not help: plan no budget deletions at all
            # What is left now is what no budget deletes: the least a budget must hold.
            floor = kept_total() + incoming_bytes
            pinned = tuple(c.cand.name for c in ckpts + autos if c.keep)
            for c in victims:
                c.keep = True
        kept_bytes = kept_total()
    return Plan(_decisions(ckpts + autos, sidecars, others, pinned_by), fits=fits,
                kept_bytes=kept_bytes, incoming_bytes=incoming_bytes,
                max_bytes=policy.max_bytes, floor_bytes=floor, pinned=pinned)


def _keep_checkpoints(ckpts: list[_Ckpt], policy: RetentionPolicy) -> None:
    """The keep rules over the managed checkpoints (oldest first)."""
    if not policy.active:
        for c in ckpts:
            c.keep = True
            c.reasons.append("no retention policy")
    else:
        if not any(v is not None for v in (policy.keep_last, policy.keep_best,
                                           policy.keep_every)):
            # Only a budget and/or keep_runs: neither retires a kept run's older epochs (the
            # budget deletes the oldest later, and only when over).
            why = "within budget" if policy.max_bytes is not None else "a kept run (keep_runs)"
            for c in ckpts:
                c.keep = True
                c.reasons.append(why)
        if policy.keep_last is not None:
            for c in ckpts[-policy.keep_last:]:
                c.keep = True
                c.reasons.append(f"last {policy.keep_last}")
        if policy.keep_best is not None:
            ranked = [(i, c) for i, c in enumerate(ckpts) if c.metric is not None]
            sign = -1.0 if policy.mode == "max" else 1.0
            # Best first; on equal metric, the newer (later in age order) wins.
            ranked.sort(key=lambda ic: (sign * (ic[1].metric or 0.0), -ic[0]))
            for rank, (_, c) in enumerate(ranked[: policy.keep_best], start=1):
                c.keep = c.pinned = True
                c.reasons.append(f"best {rank}/{policy.keep_best} by {policy.metric}="
                                 f"{c.metric:g} ({policy.mode})")
        if policy.keep_every is not None:
            for c in ckpts:
                if c.epoch is not None and c.epoch % policy.keep_every == 0:
                    c.keep = True
                    c.reasons.append(f"every {policy.keep_every} epochs")
    if ckpts:
        newest = ckpts[-1]
        newest.keep = newest.pinned = True
        newest.reasons.insert(0, "newest")
        verified = [c for c in ckpts if c.cand.verified]
        if verified and verified[-1] is not newest:
            # The newest one is not vouched for yet (its sidecar is still being written):
            # until it is, the newest verified one is what a resume needs.
            verified[-1].keep = verified[-1].pinned = True
            verified[-1].reasons.insert(0, "newest verified")
        last = _saved_last(ckpts)
        if last is not None and last is not newest and not (verified and last is verified[-1]):
            # Its sidecar claims less progress than the newest's, yet it was written later
            # (a run resumed from an older checkpoint, or the newest's sidecar lies): keep both.
            last.keep = last.pinned = True
            last.reasons.insert(0, "saved last")


def _saved_last(ckpts: list[_Ckpt]) -> Optional[_Ckpt]:
    """The verified checkpoint whose sidecar says it was written last (ties: the later in age
    order); None when no verified one has a save time."""
    timed = [c for c in reversed(ckpts) if c.cand.verified and c.cand.saved is not None]
    return max(timed, key=lambda c: c.cand.saved or 0.0) if timed else None


def _keep_autosaves(autos: list[_Ckpt], active: bool) -> None:
    """The newest verified autosave, every newer one (in flight) and the verified one saved
    last stay; older ones go (none without a policy: with no option set, nothing is
    deleted)."""
    verified = [i for i, c in enumerate(autos) if c.cand.verified]
    first_kept = verified[-1] if verified and active else 0
    for i, c in enumerate(autos):
        c.pinned = True  # the budget never deletes an autosave
        if i < first_kept:
            c.delete_reason = (f"an older autosave ({autos[first_kept].cand.name} is newer "
                               "and verified)")
        elif i == first_kept and verified and active:
            c.keep = True
            c.reasons.append("newest verified autosave")
        else:
            c.keep = True
            c.reasons.append("no retention policy" if not active else
                             "autosave newer than the newest verified one" if verified
                             else "autosave (none verified yet)")
    last = _saved_last(autos)
    if active and last is not None and not last.keep:
        # Written after the newest verified one by number (its name claims more progress
        # than its run made): the run's real newest autosave, as for checkpoints.
        last.keep = True
        last.delete_reason = ""
        last.reasons.append("saved last")


def _decisions(files: list[_Ckpt], sidecars: list[tuple[Candidate, set[str]]],
               others: list[tuple[Candidate, str]],
               pinned_by: "Callable[[Candidate], list[str]]") -> tuple[Decision, ...]:
    """Checkpoints then autosaves in age order, each followed by its sidecars; then others."""
    position = {c.cand.name: i for i, c in enumerate(files)}
    after: dict[int, list[tuple[Candidate, set[str]]]] = {}
    for j, owners in sidecars:
        after.setdefault(max(position[o] for o in owners), []).append((j, owners))
    kept_names = {c.cand.name for c in files if c.keep}
    out: list[Decision] = []
    for i, c in enumerate(files):
        reason = ", ".join(c.reasons) if c.keep else c.delete_reason
        out.append(Decision(c.cand.name, c.keep, reason, c.cand.size, c.cand.id, c.kind,
                            md5=c.cand.md5))
        for j, owners in sorted(after.get(i, []), key=lambda jo: (jo[0].name, jo[0].id or "")):
            owner = " / ".join(sorted(owners))
            if owners & kept_names:
                keep, why = True, f"sidecar of {owner}"
            elif pinned_by(j):
                keep, why = True, ", ".join(pinned_by(j))
            else:
                keep, why = False, f"sidecar of {owner} (deleted with it)"
            out.append(Decision(j.name, keep, why, j.size, j.id, SIDECAR, md5=j.md5))
    for cand, why in sorted(others, key=lambda cw: (cw[0].name, cw[0].id or "")):
        out.append(Decision(cand.name, True, why, cand.size, cand.id, OTHER, md5=cand.md5))
    return tuple(out)
