"""Where a run starts: a fresh run, a checkpoint path, or the newest checkpoint (local, then Drive).

Runs have an identity (:func:`trainer.state.new_run_id`), recorded in every checkpoint and
sidecar. One folder holds one run: ``--resume none`` refuses to start a new run where
``train.out_dir`` or ``drive.logs`` already holds checkpoints (retention would rank the new
run's ``epoch_001`` below the old ``epoch_050`` and never upload it, and a later
``--resume auto`` would continue the old run). ``--resume auto`` continues the run written
last in the folder, from its most advanced readable checkpoint: the local folder first (unless
Drive holds a verified checkpoint of the same run saved later at another point: another
machine went on), else Drive, falling back past an unreadable newest one with a warning. A
checkpoint further on than its run's checkpoint saved last is never taken: the run was
resumed on purpose from an older checkpoint since (a diverged loss sent back), and goes on
from there (:func:`drivestage.sidecar.left_behind`). Such a branch is recorded before its
first iteration (:func:`record_branch`), not only at its first save.

Rank 0 decides; under multi-machine DDP the other machines' local rank 0 pull the same file.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional, Sequence

from drivestage.errors import ChecksumMismatchError, DriveStageError, NotFoundError, \
    RemoteChangedError
from drivestage import sidecar as sidecars
from drivestage.sidecar import Sidecar
from drivestage.store import RemoteEntry
from trainer import checkpoint as ckpt
from trainer import resume_checks as checks
from trainer import distributed
from trainer.drive import DriveFolder, RemoteCheckpoint, newest_of_current_run
from trainer.errors import CheckpointError
from trainer.resume_fallback import Tried, Vet
from trainer.state import TrainState, describe_run, new_run_id

logger = logging.getLogger(__name__)

NO_RESUME = ("", "none", "no", "false")


@dataclass(frozen=True)
class Start:
    """Where training starts: a checkpoint (``path``) or a fresh run (``run``)."""

    run: str                           # the identity of a fresh run (replaced by the checkpoint's)
    path: Optional[str] = None         # local checkpoint to load
    where: Optional[str] = None        # how to name it in messages (a path, or drive:...)
    remote: Optional[str] = None       # the drive: file it came from (other machines pull it)
    safe: Optional[RemoteCheckpoint] = None  # the newest verified checkpoint on Drive, if seen
    side_copies: bool = False          # a machine loads rank 0's bytes from a hidden copy
                                       # (:func:`loaded` removes them once every rank loaded)
    # The checkpoints of the run on Drive as listed for the decision (None: not listed, or
    # the start came from there): what :func:`record_branch` compares the start with.
    seen: Optional[tuple[RemoteCheckpoint, ...]] = None
    given: bool = False                # the user named the checkpoint (--resume PATH)


@dataclass(frozen=True)
class Chosen:
    """The bytes rank 0 resumes from, which every machine must load (multi-machine DDP)."""

    where: str                          # how messages name them (a path, or drive:...)
    md5: str                            # hex md5 of rank 0's file
    size: int
    entry: Optional[RemoteEntry] = None  # the Drive file holding exactly these bytes, if any


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
            start = _decide(cfg, resume, drive, vet)
            chosen = (chosen_bytes(start.path, start.where or start.path, _drive_copy(start))
                      if start.path and info.distributed else None)
        except BaseException as exc:
            # The others wait in the broadcast below: tell them, or they wait for the timeout.
            distributed.broadcast_object(("failed", _one_line(exc)))
            raise
        shared = distributed.broadcast_object(
            (start.run, start.path, start.where, start.remote, chosen,
             os.path.abspath(cfg.train.out_dir)))
    else:
        shared = distributed.broadcast_object(None)
        if shared[0] == "failed":
            raise CheckpointError(f"rank 0 could not choose where to start: {shared[1]}")
    run, path, where, remote, chosen, main_out_dir = shared
    if not path or not info.distributed:
        return start if start is not None else Start(run, path, where, remote)
    here = path if info.is_main else _here(path, main_out_dir, cfg.train.out_dir)
    load, failure = here, None
    if info.is_local_main and not info.is_main:
        try:
            load = ensure_local_checkpoint(here, chosen)
        except Exception as exc:   # any failure: the other ranks must hear of it
            failure = _one_line(exc)
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
    side = any(_is_side_copy(r[1]) for r in results)   # then removed once all loaded
    if start is not None:
        return replace(start, side_copies=side)
    return Start(run, load, where, remote, side_copies=side)


def _here(path: str, main_out_dir: str, out_dir: str) -> str:
    """Rank 0's ``path`` on this machine: in this machine's ``train.out_dir`` when it is in
    rank 0's (the same config names the same folder; a machine may mount it elsewhere)."""
    if os.path.dirname(os.path.abspath(path)) == main_out_dir:
        return os.path.join(os.path.abspath(out_dir), os.path.basename(path))
    return path


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _drive_copy(start: Start) -> Optional[RemoteEntry]:
    """The Drive file that may hold the chosen bytes: the one fetched, else the newest
    verified checkpoint of the run (the same bytes as a local one, once mirrored); which one
    really does is for :func:`chosen_bytes` to check."""
    return start.safe.entry if start.safe is not None else None


def _decide(cfg: Any, resume: Optional[str], drive: Optional[DriveFolder],
            vet: Optional[Vet] = None) -> Start:
    out_dir = cfg.train.out_dir
    ckpt.describe_killed_saves(out_dir)  # (a save killed between a checkpoint and its sidecar)
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
    tried = Tried(vet, run)     # candidates that load but fail the resume checks: passed over
    if found:
        path = ckpt.find_latest(out_dir, run=run, any_run=False, usable=lambda c, state: (
            tried.usable(state, c.path, c.sidecar.md5)))
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
                return _fetch_newest(drive, ahead, out_dir, fallback=lambda bad: Start(
                    new_run_id(), path, path, safe=newest_of_current_run(ours or [], run, skip=bad),
                    seen=tuple(ours or [])),
                    keep=lambda c: _went_on(c.sidecar, mine), tried=tried)
            return Start(new_run_id(), path, path, safe=safe,
                         seen=None if ours is None else tuple(ours))
    if drive is None:
        if found:
            raise tried.refusal() or _all_unreadable(out_dir, run, local)
        logger.info("no checkpoint in %s: starting fresh", out_dir)
        return Start(new_run_id())
    remote = drive.checkpoints()
    if found and remote:
        # Every local checkpoint of the run is unreadable: continue that run from Drive, never
        # another run that drive.logs holds into this folder.
        remote = _of_run(run, out_dir, drive, remote)
    remote = tried.without_bad(remote) or []
    if not remote:
        if found:
            raise tried.refusal() or _all_unreadable(out_dir, run, local)
        logger.info("no checkpoint in %s nor on %s: starting fresh", out_dir, drive.spec)
        return Start(new_run_id())
    logger.info("the local run folder has no checkpoint; taking the newest from %s", drive.spec)
    return _fetch_newest(drive, remote, out_dir, tried=tried)


def _as_on_drive(mine: Optional[Sidecar], ours: Sequence[RemoteCheckpoint]) -> Optional[Sidecar]:
    """This folder's sidecar ``mine`` dated no later than its checkpoint's copy on Drive is
    (Drive dates a sidecar no later than it arrived there): compared with Drive's dates, a
    date of this machine's clock running ahead would put this state after the saves another
    machine made since, continuing from it (:func:`_went_on`). Only a copy whose sidecar
    says the very ``saved`` of ``mine`` counts (this sidecar, pushed): one dated earlier is
    the sidecar before this folder re-dated it, a branch recorded here whose push to Drive
    did not happen (:func:`record_branch`, killed in between); capped by it, the branch read
    as left behind by the run's diverged newest on Drive, and was fetched over it."""
    if mine is None or mine.md5 is None or mine.saved is None:
        return mine
    there = [c.sidecar.saved for c in ours if (c.described.md5 or "").lower() == mine.md5
             and c.sidecar.saved is not None and _raw_saved(c) == mine.saved]
    if there and min(there) < mine.saved:
        import dataclasses

        return dataclasses.replace(mine, saved=min(there))
    return mine


def _raw_saved(remote: RemoteCheckpoint) -> Optional[float]:
    """The ``saved`` its sidecar on Drive says (not capped at its arrival there)."""
    side = sidecars.parse(remote.sidecar_bytes) if remote.sidecar_bytes else None
    return side.saved if side is not None else None


def _went_on(there: Sidecar, here: Sidecar) -> bool:
    """Whether the run went on from the state ``here`` (this folder's) to ``there`` (on Drive,
    another machine): saved later at another point, when both say when they were saved (a
    run sent back on purpose there is at an earlier point, and where it goes on; one sent
    back here has the later save); without save times, further on."""
    if there.saved is not None and here.saved is not None:
        return there.saved > here.saved and there.progress != here.progress
    return there.progress > here.progress


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
        return
    from trainer.state import Position

    s = old.sidecar
    label = Position(s.epoch or 0, s.iteration or 0, s.epoch_iteration).label
    raise CheckpointError(
        f"{where} already holds checkpoints of {describe_run(s.run)} (newest: {old.name}, "
        f"{label}); {verb} run {new} there would mix the two runs. Continue the old "
        f"run with --resume auto, or give the new run its own folders: "
        f"--set train.out_dir=<a new folder> --set drive.logs=<a new Drive folder>")


def _check_drive_run(run: Optional[str], out_dir: str,
                     drive: Optional[DriveFolder]) -> Optional[list[RemoteCheckpoint]]:
    """Continuing ``run`` from the local folder: Drive must hold that run (or nothing).
    Returns that run's checkpoints on Drive; None when there is no Drive or it could not
    be listed."""
    if drive is None:
        return None
    try:
        remote = drive.checkpoints()
    except DriveStageError as exc:  # the local checkpoint is enough to go on; saving retries
        logger.warning("could not list %s (%s); resuming from the local checkpoint", drive.spec, exc)
        return None
    return _of_run(run, out_dir, drive, remote)


def _of_run(run: Optional[str], out_dir: str, drive: DriveFolder,
            remote: Sequence[RemoteCheckpoint]) -> list[RemoteCheckpoint]:
    """``run``'s checkpoints among ``remote``; refuses when Drive holds only other runs'."""
    ours = [c for c in remote if c.sidecar.run == run]
    others = sorted({describe_run(c.sidecar.run) for c in remote if c.sidecar.run != run})
    if others and not ours:
        raise CheckpointError(
            f"{out_dir} holds {describe_run(run)} but {drive.spec} holds checkpoints of "
            f"{', '.join(others)}; resuming would mix the two runs on Drive. Set drive.logs to "
            f"the Drive folder of {describe_run(run)}, or move {out_dir} aside to continue the "
            f"run on Drive")
    if others:
        logger.warning("%s also holds checkpoints of %s; they are left alone", drive.spec,
                       ", ".join(others))
    return ours


def _safe(drive: Optional[DriveFolder]) -> Optional[RemoteCheckpoint]:
    if drive is None:
        return None
    try:
        return newest_of_current_run(drive.checkpoints())
    except DriveStageError as exc:
        logger.warning("could not list %s: %s", drive.spec, exc)
        return None


#: Times a resume lists drive.logs again because the checkpoint it fetched changed meanwhile
#: (another machine pushing the same names): bounded, a folder rewritten without end fails.
MAX_RELISTS = 3


def _fetch_newest(drive: DriveFolder, remote: Sequence[RemoteCheckpoint], out_dir: str, *,
                  fallback: Optional[Callable[[list[str]], Start]] = None,
                  keep: Callable[[RemoteCheckpoint], bool] = lambda c: True,
                  tried: Optional[Tried] = None) -> Start:
    """The current run's most advanced checkpoint on Drive that loads; older ones as fallback
    (then ``fallback(names found unusable)``, when given: what it shows as safe on Drive must
    not be one of them). A listing made again (a checkpoint changed during its fetch) counts
    only the checkpoints ``keep`` takes, as ``remote`` did (those further on than the local
    folder's: else an older one on Drive would send the run back behind it). ``tried`` vets
    each candidate's contents (--resume auto): one that fails is passed over as an unreadable
    one is; Drive keeps it."""
    tried = tried or Tried(None)
    bad: list[str] = []
    newest = newest_of_current_run(remote)
    assert newest is not None
    run = newest.sidecar.run
    tried.run = tried.run or run
    relisted = 0
    while True:
        chosen = newest_of_current_run(remote, run, skip=bad)
        if chosen is None and fallback is not None:
            return fallback(bad)
        if chosen is None:
            raise tried.refusal() or CheckpointError(
                f"no checkpoint of {describe_run(run)} on {drive.spec} can be read "
                f"({', '.join(bad)} cannot); start over with --resume none in new folders, or "
                f"--resume a checkpoint file you have")
        if tried.known_bad(chosen.sidecar.md5):
            bad.append(chosen.name)     # (a listing made again: no second download of it)
            continue
        dest = os.path.join(out_dir, chosen.name)
        try:
            drive.fetch(chosen, dest)
            state = ckpt.load_checkpoint(dest)
            _check_matches_sidecar(state, chosen)
        except RemoteChangedError as exc:
            if relisted >= MAX_RELISTS:
                raise
            # Another machine pushed a new version of it meanwhile (it saves the same names):
            # the folder as it is now, not the next older checkpoint.
            relisted += 1
            logger.warning("%s changed on Drive while it was fetched (%s); listing %s again",
                           chosen.where, exc, drive.spec)
            _drop_fetched(dest)
            remote = [c for c in drive.checkpoints() if keep(c)]
            continue
        except (CheckpointError, ChecksumMismatchError, NotFoundError) as exc:
            # NotFoundError: deleted since the listing (another machine's retention)
            logger.warning("the newest verified checkpoint on Drive, %s, cannot be used (%s); "
                           "falling back to the next older one", chosen.where, exc)
            _drop_fetched(dest)
            bad.append(chosen.name)
            continue
        if not tried.usable(state, chosen.where, chosen.sidecar.md5):
            _drop_fetched(dest)      # Drive keeps it: only this fetched copy goes
            bad.append(chosen.name)
            continue
        # The sidecar as Drive has it: the mirror then finds both files unchanged.
        from drivestage.localfs import atomic_write

        atomic_write(ckpt.sidecar_path(dest), chosen.sidecar_bytes, mode=0o644)
        return Start(new_run_id(), dest, chosen.where, chosen.where, safe=chosen)


def _drop_fetched(dest: str) -> None:
    """A fetched checkpoint that is not used, and what its download left for a rerun."""
    from drivestage.partials import remove_partial, stale_partials

    ckpt.remove_checkpoint(dest)
    for partial in stale_partials(dest):
        remove_partial(partial)


def _check_matches_sidecar(state: dict, chosen: RemoteCheckpoint) -> None:
    """The file holds the run and position its sidecar claims (the sidecar chose it: one that
    lies would continue another run, or another point of this one)."""
    why = ckpt.sidecar_mismatch(state, chosen.sidecar)
    if why is not None:
        raise CheckpointError(why)


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


def chosen_bytes(path: str, where: str, entry: Optional[RemoteEntry]) -> Chosen:
    """What rank 0 sends of the checkpoint ``path`` it resumes from: its md5 and size, and the
    Drive file ``entry`` when that holds the same bytes (the others fetch it by id)."""
    md5, size = _file_md5(path)
    same = entry is not None and (entry.md5 or "").lower() == md5 and entry.size == size
    return Chosen(where=where, md5=md5, size=size, entry=entry if same else None)


def record_branch(out_dir: str, start: Start, run: Optional[str], writer: Any) -> Optional[str]:
    """Record at once that ``run`` goes on from ``start``'s checkpoint when a ``--resume``
    would not pick it (an older one resumed on purpose: a diverged loss sent back): its
    sidecar in the run folder is dated now (``writer.taken()``: after every save of the run
    seen here or on Drive, whatever this machine's clock says), and pushed to Drive at once
    when Drive's newest is another one. Returns the name recorded, None when nothing was to
    record (a resume from the run's newest writes nothing, here or on Drive).

    The branch used to exist only once it saved: a run stopped before its first save (a
    Colab disconnect) was forgotten, and the next ``--resume auto`` went on from the state
    it left, here and from Drive. The checkpoint's bytes stay as they are (its sidecar's
    md5 still names them); only ``saved`` changes. A failed push raises
    :class:`~drivestage.errors.MirrorError` before anything is trained: going on would leave
    Drive saying the run goes on from the state the user left, silently, until the branch's
    first save reaches Drive."""
    path = start.path
    mine = ckpt.read_sidecar(path) if path else None
    if path is None or mine is None or run is None or mine.run != run:
        return None  # (a checkpoint of 0.1.0 names no run: there is no branch to tell apart)
    local = [c for c in ckpt.list_checkpoints(out_dir) if c.sidecar.run == run]
    seen = [c for c in start.seen or () if c.sidecar.run == run]
    here = ckpt.newest(local, run=run)
    there = newest_of_current_run(seen, run) if seen else None
    on_drive = any(_same_state(c.sidecar, mine) for c in seen)
    # Drive's newest is another state: a branch (the start is behind it, or is a copy there
    # left behind by a later branch); not Drive lagging behind this folder (the start
    # further on, not there yet: the first save's push sends it as usual).
    stale_there = there is not None and not _same_state(there.sidecar, mine) and \
        (on_drive or mine.progress < there.sidecar.progress or _before(mine, there.sidecar))
    # Here only for a checkpoint the user named: --resume auto took the start here, and may
    # have passed over a newer one it could not load (that is no branch).
    stale_here = start.given and here is not None and not _same_state(here.sidecar, mine)
    if not (stale_here or stale_there):
        return None
    copies = _copies_in_run_folder(out_dir, path, mine, local)
    if not copies:
        return None
    # Later than every save of the run seen: the branch is then the run's checkpoint saved
    # last (drivestage.sidecar.left_behind), here, on Drive, and for retention.
    writer.not_before(max((c.sidecar.saved for c in [*local, *seen] if c.sidecar.saved),
                          default=0.0))
    when = writer.taken()
    # The state as Drive has it was first saved no later than it arrived there (``seen`` is
    # dated back to arrival): a copy pulled from a machine whose clock ran ahead must not
    # date it after a record it predates (that record then stayed in force, and the line
    # the run goes back to ranked as left behind).
    arrived = [t for c in seen if _same_state(c.sidecar, mine)
               for t in (c.sidecar.branch, c.sidecar.saved) if t]
    for copy in copies:
        side = ckpt.read_sidecar(copy)
        if side is not None:
            # ``branch`` marks the record, for retention (drivestage.lineage): the line left
            # behind ranks older than this one. It keeps when the state was first saved (a
            # second record of it keeps the first's), which orders it among other records.
            first = side.branch if side.branch is not None else (side.saved or 0.0)
            first = min([first, *arrived])
            sidecars.write(copy, dataclasses.replace(side, saved=when, branch=first))
    name = os.path.basename(copies[0])
    left = there.name if there is not None else (here.described.name if here else "?")
    drive = writer.drive
    where = "here"
    if stale_there and drive is not None:
        _push_branch(drive, copies, name, left)
        where = f"here and on {drive.spec}"
    # Said once it is true: this line came before the push, and a kill (or a push Drive
    # refused) in between left Drive saying the run goes on from ``left``.
    logger.info("resumed on purpose from %s, not the run's newest (%s): %s is now dated as "
                "saved last, %s, so --resume auto goes on from it until this run saves", name,
                left, name, where)
    return name


def _before(mine: Sidecar, there: Sidecar) -> bool:
    """The start, further on than Drive's pick, was saved before it: a return to the line a
    branch recorded there left (retention prunes that line from Drive first, so the start
    need not be there), not Drive lagging behind this folder (whose newest was saved after
    everything of the run seen, by the writer's floor)."""
    return mine.saved is not None and there.saved is not None and mine.saved < there.saved


def _same_state(a: Sidecar, b: Sidecar) -> bool:
    """Whether two sidecars describe the same checkpoint bytes (by md5; without one, the same
    run and progress)."""
    if a.md5 is not None and b.md5 is not None:
        return a.md5 == b.md5
    return a.run == b.run and a.progress == b.progress


def _copies_in_run_folder(out_dir: str, path: str, mine: Sidecar,
                          local: Sequence[ckpt.LocalCheckpoint]) -> list[str]:
    """The checkpoints of the run folder holding the start's state (the start first, when it
    is there); for a start from elsewhere with no copy there, one made under its name (when
    free): the branch must be where ``--resume auto`` and the mirror look."""
    same = sorted((c.path for c in local if _same_state(c.sidecar, mine)),
                  key=lambda p: (not os.path.samefile(p, path), p))
    if same:
        return same
    target = os.path.join(out_dir, os.path.basename(path))
    if os.path.exists(target) or os.path.exists(ckpt.sidecar_path(target)):
        logger.warning("%s is not in %s and %s there is another file: --resume auto goes on "
                       "from this branch only once it saves", path, out_dir,
                       os.path.basename(target))
        return []
    ckpt.copy_checkpoint(path, target)
    return [target]


def _push_branch(drive: DriveFolder, copies: Sequence[str], name: str, left: str) -> None:
    """Push the re-dated sidecar now, as every save's push does (the whole run folder, then
    retention; the checkpoint resumed from protected); fail loudly when it did not reach
    Drive (nothing is trained yet: running the command again costs nothing)."""
    from drivestage.errors import MirrorError

    names = [os.path.basename(c) for c in copies]
    sides = {os.path.basename(ckpt.sidecar_path(c)) for c in copies}
    why = ""
    try:
        result = drive.push(names)
        if sides.isdisjoint(result.uploaded):
            why = "it was left as it is there" if result.left else "it was not sent"
    except DriveStageError as exc:
        why = str(exc).rstrip(".")
    if why:
        raise MirrorError(
            f"could not record on {drive.spec} that the run goes on from {name} ({why}); "
            f"nothing was trained. Run the same command again: until it reaches Drive, "
            f"--resume auto from Drive on another machine continues from {left}")


#: The hidden copy of rank 0's bytes on a machine that holds other bytes under their name:
#: ``.<name>.<md5>.resume.tmp`` (``.*.tmp``: never mirrored to Drive, never listed as a
#: checkpoint).
_SIDE_SUFFIX = ".resume.tmp"


def _side_copy(path: str, md5: str) -> str:
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.{md5}{_SIDE_SUFFIX}")


def _is_side_copy(path: Optional[str]) -> bool:
    name = os.path.basename(path or "")
    return name.startswith(".") and name.endswith(_SIDE_SUFFIX)


def ensure_local_checkpoint(path: str, chosen: Chosen) -> str:
    """The file on this machine that holds exactly rank 0's ``chosen`` bytes: ``path`` when it
    does; else those bytes fetched from Drive *by id* (a new version of the name pushed since
    rank 0 chose is other bytes), verified against rank 0's md5, into ``path`` when nothing is
    there, or into a hidden copy beside it when ``path`` holds other bytes (this machine's own
    file, kept: it may be the only copy of that state). Raises CheckpointError, one line."""
    if os.path.isfile(path):
        md5, size = _file_md5(path)
        if md5 == chosen.md5 and size == chosen.size:
            return path
        logger.warning("%s on this machine is not the checkpoint rank 0 resumes from (md5 %s, "
                       "rank 0's %s); it is kept, and rank 0's is loaded instead", path, md5,
                       chosen.md5)
        other = True
    else:
        other = False
    if chosen.entry is None:
        has = f"this machine holds other bytes at {path}" if other else \
            f"which this machine does not have at {path}"
        raise CheckpointError(
            f"rank 0 resumes from {chosen.where} (md5 {chosen.md5}), {has} and Drive does "
            f"not hold; put that file there on every machine, or resume from a checkpoint on "
            f"Drive (--resume auto with drive.logs set)")
    target = _side_copy(path, chosen.md5) if other else path
    if other and os.path.isfile(target) and _file_md5(target) == (chosen.md5, chosen.size):
        return target   # a rerun: this machine fetched these bytes already
    from drivestage.download import download
    from drivestage.errors import ChecksumMismatchError, NotFoundError, RemoteChangedError
    from drivestage.remote import open_store

    logger.info("fetching %s (md5 %s) from Drive for this machine", chosen.where, chosen.md5)
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    try:
        store, _ = open_store(f"drive:id:{chosen.entry.id}")
        # By id, verified against rank 0's md5 and size (the entry it saw): never the name's
        # newest version. The bytes wait in a hidden partial until they matched.
        download(store, chosen.entry, target, describe=chosen.where)
    except (NotFoundError, RemoteChangedError, ChecksumMismatchError) as exc:
        _drop_partials(target)
        raise CheckpointError(
            f"{chosen.where} changed on Drive while the run started (rank 0 loads md5 "
            f"{chosen.md5}; {_one_line(exc)}); run again") from None
    return target


def _drop_partials(target: str) -> None:
    """What a failed fetch of bytes that are gone from Drive left: never of use again."""
    from drivestage.partials import remove_partial, stale_partials

    for partial in stale_partials(target):
        remove_partial(partial)


def loaded(start: Start, info: distributed.DistInfo) -> None:
    """Every rank has loaded ``start``: a machine that loaded rank 0's bytes from a hidden
    copy removes it (every rank calls this; a collective only when some machine made one)."""
    if not start.side_copies:
        return
    distributed.barrier()
    if info.is_local_main and start.path is not None and _is_side_copy(start.path):
        drop_side_copy(start.path)


def drop_side_copy(path: str) -> None:
    """Remove a hidden copy of rank 0's bytes (this machine's own file of the name stays)."""
    if _is_side_copy(path):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def restore(run: Any, start: Start) -> Optional[dict]:
    """Load every piece of state of ``start.path`` into ``run``; returns this rank's RNG state
    (restored by the loop once the resumed epoch is seeded). Refuses another model shape."""
    path = start.path
    state = ckpt.load_checkpoint(path, map_location="cpu")
    ckpt.check_signature(state.get("signature", {}), run.signature, path)
    _check_classes(state.get("class_names"), list(run.class_names), path)
    # Well formed is not enough: NaN weights, or an EMA/optimizer of another model, are
    # refused here in one line (trainer.resume_checks), before a step is trained.
    checks.check_finite(state["model"], "model weights", path)
    try:
        run.bare_model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"cannot resume from {path}: the model does not match "
                              f"({_mismatch(run.bare_model, state['model'], exc)})") from None
    if run.ema is not None and state.get("ema"):
        checks.load_ema(run.ema, state["ema"], path)
    checks.load_optimizer(run.optimizer, state["optimizer"], path)
    if state.get("scaler") and run.scaler.is_enabled():
        run.scaler.load_state_dict(state["scaler"])
    fresh_run = run.state.run
    run.state = TrainState.from_checkpoint(state)
    if not state.get("run"):
        run.state.run = fresh_run
        if run.info.is_main:
            logger.info("%s has no run identity (trainer 0.1.0); it continues as run %s", path,
                        fresh_run)
    run.state.resumed_from = os.path.basename(path)
    run.checkpointer.load_state_dict(state)
    run.resumed_from = start.where
    if run.info.is_main:
        _warn_changed(state.get("config"), run.cfg.to_dict(), path)
        _repair_run_folder(run, path)
        best = run.checkpointer.best_map50
        logger.info("resumed from %s at %s (run %s; best mAP@0.5 %s)", start.where,
                    run.state.pos.label, run.state.run,
                    "none yet" if best is None else f"{best:.4f}")
    rng = state.get("rng") or []
    return rng[run.info.rank] if run.info.rank < len(rng) else None


#: Config keys a run may change on resume, but not silently: what the network sees and learns
#: from (the class list and the shapes are refused instead), and what orders an epoch's
#: samples (a resume in the middle of an epoch skips the batches done at the new size).
WATCHED_KEYS = ("data.drive_zip", "data.voc_root", "data.year", "data.train", "data.val",
                "model.input_size", "model.anchors", "train.batch_size",
                "train.freeze_batch_size", "train.seed")


def _warn_changed(saved: Any, current: dict[str, Any], path: Optional[str]) -> None:
    """One warning naming the :data:`WATCHED_KEYS` whose value differs from the checkpoint's."""
    if not isinstance(saved, dict):
        return
    diffs = []
    for key in WATCHED_KEYS:
        section, name = key.split(".")
        before, now = (saved.get(section) or {}).get(name), current[section][name]
        if name in (saved.get(section) or {}) and before != now:
            diffs.append(f"{key} ({before}, now {now})")
    if diffs:
        logger.warning("%s was trained with another %s; training goes on with the config's",
                       path, ", ".join(diffs))


def _check_classes(saved: Any, names: list[str], path: Optional[str]) -> None:
    """Refuse a checkpoint trained on other class names, or in another order, than the config
    gives (the signature compares their count only): each output would go on learning
    another class. Checkpoints without names (trainer 0.1.0) are let through."""
    if not isinstance(saved, list) or [str(n) for n in saved] == [str(n) for n in names]:
        return

    def listed(items: Sequence[Any]) -> str:
        return "[" + ", ".join(str(n) for n in items) + "]"

    raise CheckpointError(
        f"cannot resume from {path}: it was trained on the classes {listed(saved)} and the "
        f"config names {listed(names)} (data.classes; a class is its place in the list). "
        f"Resume with the classes it was trained on, or start a new run that fine-tunes from "
        f"it: --resume none --set model.weights={path}")


def _mismatch(model: Any, given: dict, exc: RuntimeError) -> str:
    """Why ``given`` does not load into ``model``, on one line (torch's own text lists every
    key, on many lines)."""
    return checks.describe_mismatch(model.state_dict(), given) or " ".join(str(exc).split())


def _repair_run_folder(run: Any, path: str) -> None:
    """After fetching a checkpoint from Drive, rebuild what the local folder would hold."""
    s, best = run.state, run.checkpointer.best_epoch
    if ckpt.read_sidecar(path) is None:
        # A checkpoint given by path without its sidecar: write one, so the mirror has it.
        from drivestage import sidecar as sidecars

        md5, size = _file_md5(path)
        row = s.history[-1] if s.history and not s.pos.epoch_iteration else {}
        sidecars.write(path, sidecars.Sidecar(
            epoch=s.pos.epoch, iteration=s.pos.iteration, epoch_iteration=s.pos.epoch_iteration,
            metrics={k: row[k] for k in ("val_loss", "map50", "map") if row.get(k) is not None},
            run=s.run, md5=md5, size=size))
    _describe_copies(path)
    t = run.cfg.train
    in_run_folder = os.path.dirname(os.path.abspath(path)) == os.path.abspath(t.out_dir)
    target = os.path.join(t.out_dir, "best.pt")
    if best == s.pos.epoch and not s.pos.epoch_iteration and ckpt.read_sidecar(target) is None \
            and in_run_folder:
        # The run died before best.pt reached Drive, or before its sidecar (then best.pt may
        # still hold the previous best, undescribed); this checkpoint is that state.
        _copy_for_repair(path, target)
    target = os.path.join(t.out_dir, f"epoch_{s.pos.epoch:03d}.pt")
    if s.pos.epoch and not s.pos.epoch_iteration and in_run_folder and \
            (s.pos.epoch % t.save_period == 0 or s.pos.epoch == t.epochs) and \
            ckpt.read_sidecar(target) is None:
        # Its epoch copy could not be written (a full disk, something in the way) or the run
        # died first: last.pt holds the epoch but never goes to Drive, so without the copy
        # Drive would never get this epoch, however often the run is started again.
        _copy_for_repair(path, target)


def _copy_for_repair(path: str, target: str) -> None:
    """Make ``target`` a copy of ``path``; a failure (a full disk) is a warning: training
    goes on from ``path`` all the same, and the next resume tries again."""
    try:
        ckpt.copy_checkpoint(path, target)
    except (OSError, CheckpointError) as exc:
        logger.warning("could not make %s from %s (%s); the next resume tries again",
                       os.path.basename(target), os.path.basename(path), exc)


def _describe_copies(path: str) -> None:
    """Give a copy of ``path`` in its folder that has no sidecar the sidecar of ``path``.

    A run killed between a copy (``epoch_002.pt``, ``best.pt``) and its sidecar left the copy
    complete but undescribed: never a checkpoint to resume from, and on Drive never verified,
    for ever. Only files of the same size are hashed (few: the others are other files)."""
    folder = os.path.dirname(os.path.abspath(path))
    size, md5 = os.path.getsize(path), None
    for other in ckpt.undescribed(folder):
        if os.path.abspath(other) == os.path.abspath(path):
            continue
        try:
            if os.path.getsize(other) != size:
                continue
            md5 = md5 or _file_md5(path)[0]
            side = ckpt.read_sidecar(path)
            if side is None or side.md5 != md5 or _file_md5(other)[0] != md5:
                continue  # (a sidecar that does not describe its own file describes no copy)
            ckpt.copy_sidecar(path, other)
        except OSError:
            continue  # gone meanwhile
        logger.info("%s had no sidecar (a run stopped between it and its sidecar); it is %s's "
                    "copy and now has its sidecar", os.path.basename(other), os.path.basename(path))


def _file_md5(path: str) -> tuple[str, int]:
    from drivestage.localfs import file_md5

    return file_md5(path), os.path.getsize(path)
