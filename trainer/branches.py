"""A resume on purpose from an older checkpoint, recorded before the run's first iteration.

``--resume PATH`` to a checkpoint that is not the run's newest (a diverged loss sent back)
starts a branch: :func:`record_branch` dates that checkpoint's sidecar now (later than every
save of the run seen, here or on Drive) and pushes it to Drive at once, so that
``--resume auto`` anywhere goes on from the branch, not from the state it left, even when
the run stops before its first save (:mod:`drivestage.lineage` ranks the line left behind).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import TYPE_CHECKING, Any, Optional, Sequence

from drivestage import sidecar as sidecars
from drivestage.errors import DriveStageError
from drivestage.sidecar import Sidecar
from trainer import checkpoint as ckpt
from trainer.drive import DriveFolder, newest_of_current_run
from trainer.pushed import SafeOnDrive
from trainer.state import Position

if TYPE_CHECKING:
    from trainer.resume import Start

logger = logging.getLogger(__name__)


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
        there_now = _push_branch(drive, copies, name, left)
        where = f"here and on {drive.spec}"
        # Drive's newest is now this state (the line left behind ranks older, and goes
        # first): "safe on Drive", seeded with the state left, named it as the newest
        # verified there (the bar, a failed final push's line) until the branch passed it
        # (attacktr29).
        writer.safe = SafeOnDrive(there_now, Position(mine.epoch or 0, mine.iteration or 0,
                                                      mine.epoch_iteration), time.time())
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


def _push_branch(drive: DriveFolder, copies: Sequence[str], name: str, left: str) -> str:
    """Push the re-dated sidecar now, as every save's push does (the whole run folder, then
    retention; the checkpoint resumed from protected); fail loudly when it did not reach
    Drive (nothing is trained yet: running the command again costs nothing). The name of
    the copy recorded there (an epoch file before ``best.pt``)."""
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
    there = [os.path.basename(c) for c in copies
             if os.path.basename(ckpt.sidecar_path(c)) in result.uploaded]
    return min(there, key=lambda n: n == "best.pt")
