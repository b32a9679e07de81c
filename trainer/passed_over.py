"""The files ``--resume auto`` passed over at a run's start (no state to train on), moved
aside with their sidecars at the run's first save (:meth:`trainer.saving.Checkpointer.
keep_aside`, which bounds the wait on a disk that does not answer). Split from
trainer.saving."""
from __future__ import annotations

import logging
import os
import time
from typing import Sequence

from trainer import checkpoint as ckpt

logger = logging.getLogger("trainer.saving")   # (the name its lines always had)

#: What names a file ``--resume auto`` passed over once moved aside: ``<name>.bad-<time>``
#: (trainer.drive leaves ``*.bad-*`` out of the mirror).
BAD_SUFFIX = ".bad-"


def move_aside(items: Sequence[tuple[str, str]]) -> None:
    """Move the files ``--resume auto`` passed over (no state to train on) aside, with
    their sidecars, before the run's first save: its saves replace them (``last.pt`` at
    once, ``epoch_NNN.pt`` when it reaches that epoch again, ``best.pt``, autosaves
    pruned), and the user lost the only file showing what went wrong. The names
    (``epoch_002.pt.bad-<time>``, ``epoch_002.json.bad-<time>``) are no checkpoint's or
    sidecar's: no resume, describe or mirror takes them (:data:`BAD_SUFFIX` is left out
    of the mirror), so they are looked at once, here. A file replaced since (its sidecar
    names other bytes) is not the one passed over, and stays."""
    for path, md5 in items:
        side = ckpt.read_sidecar(path)
        if side is None or (side.md5 or "").lower() != md5:
            continue
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        aside, sidecar = f"{path}{BAD_SUFFIX}{stamp}", ckpt.sidecar_path(path)
        try:
            os.replace(sidecar, f"{sidecar}{BAD_SUFFIX}{stamp}")
            os.replace(path, aside)
        except OSError as exc:   # (gone meanwhile; a read-only name): saved over, said so
            logger.warning("%s, passed over at the start as no state to train on, could "
                           "not be moved aside (%s); this run's save of that name replaces "
                           "it", path, exc)
            continue
        logger.warning("%s, passed over at the start as no state to train on, is moved "
                       "aside to %s (its sidecar to %s) at this run's first save, where no "
                       "save of the run replaces it: kept for a look, on this machine only "
                       "(never mirrored)", path,
                       aside, os.path.basename(f"{sidecar}{BAD_SUFFIX}{stamp}"))
