"""Where a run starts: a fresh run, a checkpoint path, or the newest checkpoint (local, then Drive).

Runs have an identity (:func:`trainer.state.new_run_id`), recorded in every checkpoint and
sidecar. One folder holds one run: ``--resume none`` refuses a new run where ``train.out_dir``
or ``drive.logs`` holds checkpoints, with a sidecar or alone (retention would rank the new run's
``epoch_001`` below the old ``epoch_050`` and never upload it, a later ``--resume auto`` would go
on with the old run, a same-named one be replaced). ``--resume auto`` continues the run written
last in the folder, from its most advanced readable checkpoint: the local folder first (unless
Drive holds a verified checkpoint of the same run saved later at another point: another
machine went on), else Drive, falling back past a damaged newest one with a warning (one
whose bytes its sidecar vouches for but that does not load here stops the run instead:
:mod:`trainer.checkpoint_load`, ``LoadFailedError``, every rank; loadfail37; unless Drive
holds the run further on than it: from there, attackload37). A checkpoint further on than its run's
checkpoint saved last is never taken: the run was resumed on purpose from an older checkpoint since
(a diverged loss sent back), and goes on from there (:func:`drivestage.sidecar.left_behind`). Such a
branch is recorded before its first iteration (:func:`record_branch`), not only at its first save.

Rank 0 decides; under multi-machine DDP the other machines' local rank 0 pull the same file.

This module holds the decision (:func:`choose`); the rest of a resume lives beside it:
:mod:`trainer.start` (where the run starts, :class:`Start`), :mod:`trainer.resume_drive` (the
run's checkpoints on Drive, the newest that loads fetched), :mod:`trainer.resume_fallback`
(past checkpoints that fail the content checks of :mod:`trainer.resume_checks`),
:mod:`trainer.chosen` (the same bytes on every machine), :mod:`trainer.restore` (the state
into the run, the run folder repaired) and :mod:`trainer.branches` (a resume on purpose from
an older checkpoint, recorded).
"""
from __future__ import annotations

import logging
import os
from dataclasses import replace
from typing import Any, Optional, Sequence

from drivestage.store import RemoteEntry
from trainer import checkpoint as ckpt, resume_checks as checks
from trainer import distributed, drive_lone, kept_copies, start_weights
from trainer.drive import DriveFolder, RemoteCheckpoint, newest_of_current_run, \
    unvouched_ahead, unvouched_text
from trainer.errors import CheckpointError, LoadFailedError
from trainer.resume_fallback import Tried, Vet
# Split out: where a run starts (trainres48), the checkpoints on Drive and their fetch
# (trainres48), the copies fetched from Drive to look at (trainer24), the rest (trainer23).
from trainer.start import NO_RESUME, Start
from trainer.resume_drive import MAX_RELISTS, _as_on_drive, _check_drive_run, _fetch_newest, \
    _of_run, _raw_saved, _safe, _went_on
from trainer.state import Position, describe_run, new_run_id
from trainer.branches import record_branch
from trainer.chosen import Chosen, chosen_bytes, drop_side_copy, ensure_local_checkpoint, \
    is_side_copy, loaded, one_line
from trainer.restore import WATCHED_KEYS, _copy_for_repair, _repair_run_folder, _warn_changed, \
    restore

logger = logging.getLogger(__name__)


def choose(cfg: Any, resume: Optional[str], info: distributed.DistInfo,
           drive: Optional[DriveFolder], vet: Optional[Vet] = None) -> Start:
    """Decide on rank 0 and tell every rank; make sure every machine loads the same bytes.

    Rank 0 sends the md5, size and Drive file of the bytes it chose along with the name; each
    other machine's local rank 0 checks the file it has under that name, or fetches those
    bytes by id (:func:`ensure_local_checkpoint`). Then every rank learns whether every
    machine got them, in one collective: a failure on one machine fails all ranks with its
    line, instead of leaving the others waiting in the first collective of training (DDP
    would otherwise average the gradients of different models, or hang for the timeout).

    ``vet(state, path)`` checks a candidate's contents for ``--resume auto``, which goes on
    from the newest checkpoint that passes (:mod:`trainer.resume_fallback`)."""
    start: Optional[Start] = None
    if info.is_main:
        try:
            tried = Tried(vet)
            start = _decide(cfg, resume, drive, vet, tried=tried)
            if (resume or "").strip().lower() == "auto" and _one_machine(info):
                # An earlier stop's copy of the run's state in /tmp, further on (grace32).
                start = kept_copies.prefer(start, cfg.train.out_dir, tried)
            start = replace(start, passed_over=tried.here())
            _say_unvouched(drive, start)
            chosen = (chosen_bytes(start.path, start.where or start.path, _drive_copy(start, drive))
                      if start.path and info.distributed else None)
        except BaseException as exc:
            # The others wait in the broadcast below: tell them, or they wait for the timeout.
            # (A checkpoint that failed to load here: each rank raises the same error type.)
            distributed.broadcast_object(("failed", one_line(exc),
                                          isinstance(exc, LoadFailedError)))
            raise
        shared = distributed.broadcast_object(
            (start.run, start.path, start.where, start.remote, chosen,
             os.path.abspath(cfg.train.out_dir)))
    else:
        shared = distributed.broadcast_object(None)
        if shared[0] == "failed":
            error = LoadFailedError if shared[2] else CheckpointError
            raise error(f"rank 0 could not choose where to start: {shared[1]}")
    run, path, where, remote, chosen, main_out_dir = shared
    if not path or not info.distributed:
        return start if start is not None else Start(run, path, where, remote)
    here, into = (path, None) if info.is_main else _here(path, main_out_dir, cfg.train.out_dir)
    load, failure = here, None
    if info.is_local_main and not info.is_main:
        try:
            load = ensure_local_checkpoint(here, chosen, into)
        except Exception as exc:   # any failure: the other ranks must hear of it
            failure = one_line(exc)
    results = distributed.all_gather_object((failure, load, info.local_rank))
    failed = [(r, f) for r, (f, _, _) in enumerate(results) if f is not None]
    if failed:
        rank, why = failed[0]
        raise CheckpointError(why if isinstance(why, str) else f"rank {rank} failed")
    # This machine's local rank 0 holds the global rank ``rank - local_rank`` (torchrun numbers
    # each machine's ranks in a row): its answer names the file this machine loads.
    mine = results[info.rank - info.local_rank]
    if mine[2] == 0:
        load = mine[1]
    side = any(is_side_copy(r[1]) for r in results)   # then removed once all loaded
    if start is not None:
        return replace(start, side_copies=side)
    return Start(run, load, where, remote, side_copies=side)


def _say_unvouched(drive: Optional[DriveFolder], start: Start) -> None:
    """A warning for each checkpoint on Drive further on than ``start`` that its sidecar does
    not vouch for (:func:`trainer.drive.unvouched_ahead`; of these, nothing was said)."""
    side = ckpt.read_sidecar(start.path) if drive is not None and start.path else None
    if drive is None:
        return
    progress = side.progress if side is not None else None
    for c in unvouched_ahead(drive, side.run if side is not None else None, progress):
        logger.warning("%s; --resume auto passes over it, and Drive keeps it as it is",
                       unvouched_text(c))
    drive_lone.say_ahead(drive, side, start.where)   # (those with no sidecar at all)


def _one_machine(info: distributed.DistInfo) -> bool:
    """Whether every rank runs on this machine (a copy in its /tmp reaches every one)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", info.world_size)) >= info.world_size


def _here(path: str, main_out_dir: str, out_dir: str) -> tuple[str, Optional[str]]:
    """Rank 0's ``path`` on this machine: in this ``train.out_dir`` when in rank 0's (a machine
    may mount it elsewhere); else as it is, and the run folder its bytes go to, if need be."""
    if os.path.dirname(os.path.abspath(path)) == main_out_dir:
        return os.path.join(os.path.abspath(out_dir), os.path.basename(path)), None
    return path, os.path.abspath(out_dir)


def _drive_copy(start: Start, drive: Optional[DriveFolder]) -> Optional[RemoteEntry]:
    """The Drive file that may hold the chosen bytes: the one fetched, else the newest verified
    checkpoint of the run (the same bytes as a local one, once mirrored), else one with no
    sidecar (taken up: trainer.drive_lone); which one really does: :func:`chosen_bytes`."""
    return start.safe.entry if start.safe is not None else drive_lone.entry_of(drive, start.path)


def _decide(cfg: Any, resume: Optional[str], drive: Optional[DriveFolder],
            vet: Optional[Vet] = None, *, tried: Optional[Tried] = None) -> Start:
    out_dir = cfg.train.out_dir
    ckpt.describe_killed_saves(out_dir)  # (a save killed between a checkpoint and its sidecar)
    checks.refuse_foreign(out_dir)   # (another program's file under a name the saves write)
    local = ckpt.list_checkpoints(out_dir)
    mode = (resume or "").strip().lower()
    if mode in NO_RESUME:
        run = new_run_id()
        remote = drive.checkpoints() if drive is not None else []
        _refuse_mixing(run, out_dir, local, drive, remote)
        return Start(run)
    if mode != "auto":
        if not os.path.isfile(resume):
            raise CheckpointError(f"--resume {resume}: no such file; use --resume auto or a "
                                  f"checkpoint path")
        side = ckpt.read_sidecar(resume)
        run = side.run if side is not None else ckpt.load_checkpoint(resume).get("run")
        if run is not None:  # a checkpoint of 0.1.0 (no identity) may continue anywhere
            if any(c.sidecar.run != run for c in local):
                _refuse_mixing(run, out_dir, [c for c in local if c.sidecar.run != run], None, (),
                               verb="continuing")
            ours = _check_drive_run(run, out_dir, drive)
            return Start(new_run_id(), resume, resume,
                         safe=newest_of_current_run(ours, run) if ours else None,
                         seen=None if ours is None else tuple(ours), given=True)
        return Start(new_run_id(), resume, resume, safe=_safe(drive), given=True)
    found, run = ckpt.current_run([c.described for c in local])
    checks.refuse_two_runs(out_dir, local, run)   # never go on over another run's files
    # Candidates that load but fail the resume checks: passed over (``tried``: the caller's,
    # to learn which of this folder's files were, trainer24).
    tried = tried if tried is not None else Tried(vet)
    tried.run = run
    if found:
        try:
            path = ckpt.find_latest(out_dir, run=run, any_run=False, usable=lambda c, state: (
                tried.usable(state, c.path, c.sidecar.md5)))
        except LoadFailedError as stop:
            return _past_unloadable(stop, run, out_dir, drive, tried)
        if path is not None:
            # Drive's copies of a state found bad here are as bad: never "further on" there.
            ours = tried.without_bad(_check_drive_run(run, out_dir, drive))
            safe = newest_of_current_run(ours, run) if ours else None
            mine = _as_on_drive(ckpt.read_sidecar(path), ours or [])
            if drive is not None and safe is not None and mine is not None and \
                    _went_on(safe.sidecar, mine):
                # Another machine continued this run from Drive further than this folder got.
                logger.warning("%s is behind %s: %s there has gone further than %s here; "
                               "continuing from Drive", out_dir, drive.spec, safe.name,
                               os.path.basename(path))
                ahead = [c for c in ours or [] if _went_on(c.sidecar, mine)]
                # Past states found bad on Drive (fetched, vetted): not among those seen, as
                # a bad state here is not: else the start read as a branch left from them
                # (record_branch: "resumed on purpose", a push before training, and
                # retention deleting the bad line Drive was said to keep).
                return _fetch_newest(drive, ahead, out_dir, fallback=lambda bad: Start(
                    new_run_id(), path, path, safe=newest_of_current_run(ours or [], run, skip=bad),
                    seen=tuple(tried.without_bad(ours) or [])),
                    keep=lambda c: _went_on(c.sidecar, mine), tried=tried)
            return Start(new_run_id(), path, path, safe=safe,
                         seen=None if ours is None else tuple(ours))
    if drive is None:
        if found:
            raise tried.refusal() or _all_unreadable(out_dir, run, local)
        start_weights.refuse_fresh(cfg, None)   # (no weights to start from: said, exit 2)
        logger.info("no checkpoint in %s: starting fresh", out_dir)
        return Start(new_run_id())
    remote = listed = drive.checkpoints()
    # Deleted on Drive since the early check listed it (trainres48): said, the newest left taken.
    gone = start_weights.say_gone(drive, listed)
    if found and remote:
        # Every local checkpoint of the run is unreadable: continue that run from Drive, never
        # another run that drive.logs holds into this folder.
        remote = _of_run(run, out_dir, drive, remote)
    remote = tried.without_bad(remote) or []
    if not remote:
        if found:
            raise tried.refusal() or _all_unreadable(out_dir, run, local)
        if not listed and drive_lone.take_up(drive, drive.lone, out_dir):   # (attacktrain42)
            return _decide(cfg, resume, drive, vet, tried=tried)
        start_weights.refuse_fresh(cfg, drive, gone)
        logger.info("no checkpoint in %s nor on %s: starting fresh", out_dir, drive.spec)
        return Start(new_run_id())
    logger.info("the local run folder has no checkpoint; taking the newest from %s", drive.spec)
    return _fetch_newest(drive, remote, out_dir, tried=tried)


def _past_unloadable(stop: LoadFailedError, run: Optional[str], out_dir: str,
                     drive: Optional[DriveFolder], tried: Tried) -> Start:
    """The run folder's newest does not load here (``stop``, loadfail37): Drive's newest of
    the run where another machine went on further than it (nothing of it lost: the run's
    saves come after), said; else ``stop``. Raised first, it kept auto from asking Drive,
    and said to go back to an older checkpoint behind Drive's (attackload37)."""
    ours = tried.without_bad(_check_drive_run(run, out_dir, drive))
    mine = _as_on_drive(ckpt.read_sidecar(stop.path), ours or [])
    if drive is None or not ours or mine is None:
        raise stop
    ahead = [c for c in ours if _went_on(c.sidecar, mine)]
    if not ahead:
        raise stop
    logger.warning("%s does not load here, but %s holds this run further on (%s: another "
                   "machine went on from it); continuing from Drive", stop.path, drive.spec,
                   newest_of_current_run(ahead, run).name)

    def still(bad: list[str]) -> Start:   # (none of those further on can be used either)
        raise stop

    return _fetch_newest(drive, ahead, out_dir, fallback=still,
                         keep=lambda c: _went_on(c.sidecar, mine), tried=tried)




def _all_unreadable(out_dir: str, run: Optional[str],
                    local: Sequence[ckpt.LocalCheckpoint]) -> CheckpointError:
    """The folder holds a run none of whose checkpoints loads, and Drive has none of it: a new
    run there would mix with its files (what --resume none refuses), so say so instead of
    starting over silently."""
    names = sorted(c.described.name for c in local if c.sidecar.run == run)
    return CheckpointError(
        f"{out_dir} holds checkpoints of {describe_run(run)}, and none of them can be read "
        f"({', '.join(names)}); start over with --resume none in new folders (--set "
        f"train.out_dir=<a new folder>), or --resume a checkpoint file you have")


def _refuse_mixing(new: str, out_dir: str, local: Sequence[ckpt.LocalCheckpoint],
                   drive: Optional[DriveFolder], remote: Sequence[RemoteCheckpoint], *,
                   verb: str = "starting") -> None:
    """A new run where checkpoints already are: one line naming both runs and the ways out."""
    where, old = None, None
    if local:
        newest = ckpt.newest(local, run=ckpt.current_run([c.described for c in local])[1])
        where, old = out_dir, newest.described if newest else local[0].described
    elif remote:
        newest = newest_of_current_run(remote)
        where, old = drive.spec, (newest or remote[0]).described
    if old is None:
        drive_lone.refuse_new(drive, new)   # (only checkpoints alone there: lefts43)
        return
    s = old.sidecar
    label = Position(s.epoch or 0, s.iteration or 0, s.epoch_iteration).label
    raise CheckpointError(
        f"{where} already holds checkpoints of {describe_run(s.run)} (newest: {old.name}, "
        f"{label}); {verb} run {new} there would mix the two runs. Continue the old "
        f"run with --resume auto, or give the new run its own folders: "
        f"--set train.out_dir=<a new folder> --set drive.logs=<a new Drive folder>")




def saved_before(out_dir: str, run: Optional[str], start: Start) -> float:
    """The latest save time among the checkpoints of ``run`` seen at the start: the run
    folder's, the one resumed, and the newest on Drive (0 when none says). Taken on this
    machine, the run's next state is later than all of them, even where its clock is behind
    the machine that saved them (:meth:`trainer.writer.BackgroundWriter.taken`)."""
    sides = [c.sidecar for c in ckpt.list_checkpoints(out_dir)]
    sides.append(ckpt.read_sidecar(start.path) if start.path else None)
    sides.append(start.safe.sidecar if start.safe is not None else None)
    return max((s.saved for s in sides if s is not None and s.run == run and s.saved is not None),
               default=0.0)

__all__ = ["NO_RESUME", "MAX_RELISTS", "Start", "Chosen", "choose", "saved_before", "restore",
           "loaded", "record_branch", "ensure_local_checkpoint", "chosen_bytes",
           "drop_side_copy", "WATCHED_KEYS", "_decide", "_copy_for_repair",
           "_repair_run_folder", "_warn_changed", "_fetch_newest", "_raw_saved", "_as_on_drive",
           "_went_on", "_of_run", "_safe", "_check_drive_run"]
