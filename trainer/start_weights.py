"""Whether ``train``'s early check of ``model.weights`` applies: a run that will resume from a
checkpoint never uses the pretrained weights (its state is the checkpoint's), so a weights
file that is gone (a fresh VM, a cleared /tmp) must not refuse it (trainatk47)."""
from __future__ import annotations

import os
from typing import Any

from trainer.errors import ConfigError


def check_start_weights(cfg: Any, resume: str) -> None:
    """Refuse a local ``model.weights`` that is not there (ConfigError, exit 2: before the
    data is pulled), unless the run resumes: ``--resume PATH``, or ``--resume auto`` with a
    checkpoint in ``train.out_dir`` or, that folder holding none, on ``drive.logs`` (the
    decision :func:`trainer.resume.choose` makes). Drive is asked only when the file is
    missing; where it cannot be read, the refusal stands and says the resume was not
    checked."""
    from trainer.resume import NO_RESUME
    from trainer.staging import local_weights

    if not cfg.model.weights or cfg.model.weights.startswith("drive:"):
        return
    try:
        local_weights(cfg.model.weights, cfg)
        return
    except ConfigError as refused:
        mode = resume.strip().lower()
        if mode in NO_RESUME:
            raise
        if mode != "auto":
            return   # --resume PATH: that checkpoint's state, not the weights
        if _local_checkpoints(cfg.train.out_dir):
            return
        if not cfg.drive.logs:
            _refuse(refused, cfg.train.out_dir)
        try:
            on_drive = _drive_checkpoints(cfg)
        except Exception as exc:   # (Drive down, a bad token: the resume's own error later)
            from drivestage.errors import DriveStageError

            if not isinstance(exc, (DriveStageError, OSError)):
                raise
            raise ConfigError(f"{refused} (a resume from {cfg.drive.logs} would not need it, "
                              f"but whether there is one there could not be checked: "
                              f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                              ) from None
        if not on_drive:
            _refuse(refused, cfg.train.out_dir)


def _local_checkpoints(out_dir: str) -> bool:
    """Whether ``--resume auto`` finds a checkpoint in ``out_dir``: one with a sidecar, or a
    killed save's that loads whole, which the resume describes and goes on from (trainres48:
    refused here before). Read only: the resume writes its sidecar, as it did."""
    from trainer import checkpoint as ckpt

    return os.path.isdir(out_dir) and bool(ckpt.list_checkpoints(out_dir) or
                                           ckpt.killed_saves(out_dir))


def _refuse(refused: ConfigError, out_dir: str) -> None:
    """``refused``, saying which files of ``out_dir`` the resume passes over (no sidecar, and
    they do not load whole: no state to go on from), if any: else the refusal of a folder
    holding ``last.pt`` reads as a bug."""
    from trainer import checkpoint as ckpt

    unread = ", ".join(sorted(ckpt.undescribed(out_dir))) if os.path.isdir(out_dir) else ""
    if not unread:
        raise refused
    raise ConfigError(f"{refused} (--resume auto would start a new run: {unread} has no "
                      f"sidecar and does not load as a checkpoint, so it is no state to go on "
                      f"from)") from None


def _drive_checkpoints(cfg: Any) -> bool:
    from trainer.drive import DriveFolder

    folder = DriveFolder(cfg.drive.logs, cfg.train.out_dir)
    return bool(folder.checkpoints() or folder.lone)
