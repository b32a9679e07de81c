"""Where a run starts, as :func:`trainer.resume.choose` decided it: a fresh run, or a checkpoint
(:class:`Start`); split out of :mod:`trainer.resume` (trainres48), importable from there too."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from trainer.drive import RemoteCheckpoint


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
    # This folder's checkpoints --resume auto passed over as no state to train on, (path,
    # md5): kept aside by the run's first save, which would replace them (trainer.saving).
    passed_over: tuple[tuple[str, str], ...] = ()
