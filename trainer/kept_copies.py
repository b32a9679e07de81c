"""``--resume auto`` and the copies of the run's state an earlier stop kept on this machine.

A stop whose save the run folder did not take (a hung or slow disk, a mount gone: the line
says `its state is saved in /tmp/trainer-rescued-…/autosave_N.pt on this machine: --resume
<that path> goes on from it`), or whose copy sent from elsewhere Drive did not verify in time
(``trainer-stop-…``), leaves the run's newest state in this machine's temporary folder alone
(:mod:`trainer.stop_save`). ``--resume auto`` looked only in the run folder and on Drive: the
same command run again trained from the older state there, the copy only warned about on the
sweep's thread once training had begun (attackt31's design question 3).

``--resume auto`` means "go on from this run's newest state"; such a copy is one: so auto goes
on from it (:func:`prefer`), said in a warning, when it is this run's (the run auto chose),
its sidecar names its bytes (md5), its state loads and passes the resume checks, and it is
further on than the start auto chose and saved after every checkpoint of the run seen in the
run folder and on Drive (else the run went on elsewhere, or was sent back on purpose since:
the copy is left behind, as :func:`drivestage.sidecar.left_behind` ranks it). The run's
saves then go to the run folder and Drive as usual; the start's sweep keeps the copy until a
checkpoint further on is verified there (:func:`trainer.stop_save.sweep`).
"""
from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Optional

from trainer import checkpoint as ckpt
from trainer import stop_save
from trainer.errors import LoadFailedError
from trainer.resume_fallback import Tried
from trainer.state import Position

logger = logging.getLogger(__name__)


def prefer(start: Any, out_dir: str, tried: Any) -> Any:
    """``start`` (what ``--resume auto`` chose), or a :class:`~trainer.resume.Start` from the
    furthest copy of its run kept on this machine that may be gone on from (see above)."""
    mine = ckpt.read_sidecar(start.path) if start.path else None
    if mine is None or mine.run is None:
        return start   # (a fresh run, or a checkpoint naming no run: no copy is known its)
    sides = [mine, *(c.sidecar for c in ckpt.list_checkpoints(out_dir)),
             *(c.sidecar for c in start.seen or ()),
             *([start.safe.sidecar] if start.safe is not None else [])]
    last = max((s.saved for s in sides if s.run == mine.run and s.saved is not None),
               default=None)
    for path, side in _candidates(mine, last):
        if _usable(path, side, tried):
            at = _label(side)
            logger.warning("--resume auto goes on from %s (%s), this run's state kept on this "
                           "machine by an earlier stop: further on than %s (%s), and saved "
                           "after it; the run folder and Drive get this run's next checkpoints",
                           path, at, start.where or start.path, _label(mine))
            return dataclasses.replace(start, path=path, where=path, remote=None, given=False)
    return start


def _candidates(mine: Any, last: Optional[float]) -> list[tuple[str, Any]]:
    """The copies of run ``mine.run`` further on than ``mine`` and saved after ``last`` (the
    run's latest save seen), furthest first: (path, sidecar)."""
    found = []
    for folder in stop_save.leftovers():
        left = stop_save._left(folder)   # (one whole checkpoint, its sidecar naming its md5)
        if left is None:
            continue
        path = os.path.join(folder, left[0])
        side = ckpt.read_sidecar(path)
        if side is None or (side.md5 or "").lower() != left[1] or side.run != mine.run or \
                side.saved is None or side.progress <= mine.progress or \
                (last is not None and side.saved <= last):
            continue
        found.append((path, side))
    return sorted(found, key=lambda f: (f[1].progress, f[1].saved), reverse=True)


def _usable(path: str, side: Any, tried: Any) -> bool:
    """Whether the copy at ``path`` loads, holds what its sidecar says, and passes the resume
    checks (``tried``: :class:`trainer.resume_fallback.Tried`; it says why not)."""
    try:
        state = ckpt.load_checkpoint(path)
    except LoadFailedError:   # (verified, not loadable here: the stop, never an older one)
        raise
    except Exception as exc:   # (CheckpointError; a copy gone meanwhile)
        logger.warning("passed over %s, kept by an earlier stop: %s", path, exc)
        return False
    why = ckpt.sidecar_mismatch(state, side)
    if why is not None:
        logger.warning("passed over %s, kept by an earlier stop: %s", path, why)
        return False
    # (Vetted apart: one found unusable is no file of the run folder to move aside at the
    # first save, nor one more toward auto's bound on states tried.)
    return Tried(tried.vet).usable(state, path, side.md5)


def _label(side: Any) -> str:
    return Position(side.epoch or 0, side.iteration or 0, side.epoch_iteration).label
