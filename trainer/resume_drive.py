"""Resuming from ``drive.logs``: the run's checkpoints there (:func:`_check_drive_run`,
:func:`_of_run`), whether another machine went on there further than this folder got
(:func:`_went_on`, :func:`_as_on_drive`), and the newest of them that loads, fetched into
the run folder (:func:`_fetch_newest`). Split out of :mod:`trainer.resume` (trainres48),
which makes the decision; the names are importable from there too."""
from __future__ import annotations

import logging
import os
from typing import Callable, Optional, Sequence

from drivestage.errors import ChecksumMismatchError, DriveStageError, NotFoundError, \
    RemoteChangedError
from drivestage import sidecar as sidecars
from drivestage.drive import server_clock
from drivestage.sidecar import Sidecar
from trainer import checkpoint as ckpt
from trainer.drive import DriveFolder, RemoteCheckpoint, age_text, newest_of_current_run
from trainer.errors import CheckpointError
from trainer.fetched import _aside, _beside, _check_matches_sidecar, _drop_fetched, \
    _drop_looked, _load_looked
from trainer.resume_fallback import Tried
from trainer.start import Start
from trainer.state import describe_run, new_run_id

logger = logging.getLogger(__name__)


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
    mine = _not_ahead_of_drive(mine)
    if mine.saved is None:
        return mine
    there = [c.sidecar.saved for c in ours if (c.described.md5 or "").lower() == mine.md5
             and c.sidecar.saved is not None and _raw_saved(c) == mine.saved]
    if there and min(there) < mine.saved:
        import dataclasses

        return dataclasses.replace(mine, saved=min(there))
    return mine


def _not_ahead_of_drive(mine: Sidecar) -> Sidecar:
    """``mine`` without its save time where that is ahead of Drive's clock as just heard (past
    the skew allowed): this machine's clock ran ahead when it saved, and a state Drive never
    had, dated so, outranked the saves another machine made on Drive since, however much
    further on: the run went back to it, not a word said (attackb51). So dated, its progress
    decides, said in one line. Drive's clock is no earlier than its own stamps say (a
    checkpoint's ``createdDate`` listed here): a ``Date`` hours behind (a proxy's slow clock)
    made a state saved an hour ago by a right clock "ahead", and a run sent back here on
    purpose went on from Drive's further epoch, the line blaming this machine (attackd51)."""
    # (The stamps only raise a clock heard: a lower bound, they alone date nothing.)
    heard, stamps = server_clock.drive_clock(), server_clock.stamps_say()
    drive_now = heard if heard is None or stamps is None else max(heard, stamps)
    if mine.saved is None or drive_now is None or \
            mine.saved <= drive_now + server_clock.TOLERANCE:
        return mine
    import dataclasses

    logger.warning("the local checkpoint's save time is %s ahead of Drive's clock (this "
                   "machine's clock ran ahead when it saved?): it is not compared with the "
                   "saves on Drive; the run's progress decides which goes on",
                   age_text(mine.saved - drive_now))
    return dataclasses.replace(mine, saved=None)


def _raw_saved(remote: RemoteCheckpoint) -> Optional[float]:
    """The ``saved`` its sidecar on Drive says (not capped at its arrival there)."""
    side = sidecars.parse(remote.sidecar_bytes, sidecars.name_for(remote.entry.name)) \
        if remote.sidecar_bytes else None
    return side.speaking_for(remote.entry.md5).saved if side is not None else None


def _went_on(there: Sidecar, here: Sidecar) -> bool:
    """Whether the run went on from the state ``here`` (this folder's) to ``there`` (on Drive,
    another machine): saved later at another point, when both say when they were saved (a
    run sent back on purpose there is at an earlier point, and where it goes on; one sent
    back here has the later save); without save times, further on."""
    if there.saved is not None and here.saved is not None:
        return there.saved > here.saved and there.progress != here.progress
    return there.progress > here.progress


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
    deleted: list[str] = []   # (of ``bad``: gone from Drive since the listing)
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
            raise tried.refusal() or _none_left(run, drive, bad, deleted)
        if tried.known_bad(chosen.sidecar.md5):
            bad.append(chosen.name)     # (a listing made again: no second download of it)
            continue
        # The bound hit: refused before the download (it left the copy in the run folder,
        # undescribed: the next --resume auto described it and went on from it silently).
        tried.check_bound(chosen.where)
        dest = os.path.join(out_dir, chosen.name)
        # A file of that name here was passed over (bad, unreadable: "kept as it is"): the copy
        # is fetched beside it, never over it (one bad too was deleted with it).
        target = _beside(dest, chosen) if os.path.lexists(dest) else dest
        looked: Optional[str] = None
        try:
            drive.fetch(chosen, target)
            looked = _aside(target, dest)
            # (Bytes its sidecar vouches for that do not load here: LoadFailedError, the
            # copy removed below, Drive's kept; never the next older one: loadfail37.)
            state = _load_looked(looked, target, chosen)
            _check_matches_sidecar(state, chosen)
        except RemoteChangedError as exc:
            if relisted >= MAX_RELISTS:
                raise
            # Another machine pushed a new version of it meanwhile (it saves the same names):
            # the folder as it is now, not the next older checkpoint.
            relisted += 1
            logger.warning("%s changed on Drive while it was fetched (%s); listing %s again",
                           chosen.where, exc, drive.spec)
            _drop_fetched(target, looked)
            remote = [c for c in drive.checkpoints() if keep(c)]
            continue
        except ChecksumMismatchError as exc:
            # What arrived was not Drive's bytes, twice (a flaky link, a proxy): the copy on
            # Drive is verified (its md5 is the one its sidecar names). Going back to an older
            # one trained the epochs after it again, and its saves then left this one behind
            # on Drive, for retention to remove (attack49). Stopped; a rerun fetches it again.
            _drop_fetched(target, looked)
            raise _not_intact(chosen.where, run, exc) from None
        except (CheckpointError, NotFoundError) as exc:
            # NotFoundError: deleted since the listing (another machine's retention)
            logger.warning("the newest verified checkpoint on Drive, %s, cannot be used (%s); "
                           "falling back to the next older one", chosen.where, exc)
            _drop_fetched(target, looked)
            bad.append(chosen.name)
            if isinstance(exc, NotFoundError):
                deleted.append(chosen.name)
            continue
        except BaseException:
            _drop_looked(looked)   # (a Ctrl-C during the download keeps its partial, to go on)
            raise
        try:
            usable = tried.usable(state, chosen.where, chosen.sidecar.md5)
        except BaseException:
            _drop_looked(looked)
            raise
        if not usable:
            _drop_fetched(target, looked)    # Drive keeps it: only this fetched copy goes
            bad.append(chosen.name)
            continue
        os.replace(looked, dest)             # chosen: under its name from now on
        # The sidecar as Drive has it: the mirror then finds both files unchanged.
        from drivestage.localfs import atomic_write

        atomic_write(ckpt.sidecar_path(dest), chosen.sidecar_bytes, mode=0o644)
        return Start(new_run_id(), dest, chosen.where, chosen.where, safe=chosen)


def _not_intact(where: str, run: Optional[str], exc: ChecksumMismatchError) -> CheckpointError:
    """The refusal of a resume whose chosen checkpoint ``where`` never arrived as Drive holds
    it (``exc``): never a reason to go back to an older one (see :func:`_fetch_newest`)."""
    from trainer.chosen import one_line

    return CheckpointError(
        f"{where}, the checkpoint of {describe_run(run)} to go on from, did not arrive as Drive "
        f"holds it ({one_line(exc)}); --resume auto does not go back to an older one for that. "
        f"Run again (Drive keeps it); if it persists, check what lies between here and Drive "
        f"(a proxy?), or --resume a checkpoint file you have")


def _none_left(run: Optional[str], drive: DriveFolder, bad: Sequence[str],
               deleted: Sequence[str]) -> CheckpointError:
    """The refusal of a resume none of whose candidates on Drive could be used: each one
    ``deleted`` there since the listing (another machine's retention, a user; trainres48:
    said as "cannot be read" before), or else ``bad``, unreadable or damaged."""
    if deleted and len(deleted) == len(bad):
        return CheckpointError(
            f"the checkpoints of {describe_run(run)} on {drive.spec} were deleted while this "
            f"resume fetched them ({', '.join(deleted)}: another machine's retention, a "
            f"user?); --resume auto finds none left to go on from. Start over with --resume "
            f"none in new folders, or --resume a checkpoint file you have")
    return CheckpointError(
        f"no checkpoint of {describe_run(run)} on {drive.spec} can be read "
        f"({', '.join(bad)} cannot); start over with --resume none in new folders, or "
        f"--resume a checkpoint file you have")
