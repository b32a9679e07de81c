"""Whether ``train``'s early check of ``model.weights`` applies: a run that will resume from a
checkpoint never uses the pretrained weights (its state is the checkpoint's), so a weights
file that is gone (a fresh VM, a cleared /tmp) must not refuse it (trainatk47).

What the check found on ``drive.logs`` is kept for the resume (:func:`say_gone`,
:func:`refuse_fresh`): a checkpoint deleted there while the data was pulled (another machine's
retention, a user) is said, and the resume goes on from the newest left, or, none left and
no weights to start a new run from, refuses in one line, never "starting fresh" into the
missing file (trainres48)."""
from __future__ import annotations

import logging
import os
from typing import Any, Sequence

from trainer.errors import ConfigError

logger = logging.getLogger(__name__)

#: What the early check listed on ``drive.logs``, by (run folder, Drive folder): the
#: checkpoints there (``drive:…/<name>``). This process's resume compares its listing with it.
SEEN: dict[tuple[str, str], tuple[str, ...]] = {}


def check_start_weights(cfg: Any, resume: str) -> None:
    """Refuse a local ``model.weights`` that is not there (ConfigError, exit 2: before the
    data is pulled), unless the run resumes: ``--resume PATH``, or ``--resume auto`` with a
    checkpoint in ``train.out_dir`` or, that folder holding none, on ``drive.logs`` (the
    decision :func:`trainer.resume.choose` makes). Drive is asked only when the file is
    missing; where it cannot be read, the refusal stands and says the resume was not
    checked."""
    from trainer.start import NO_RESUME
    from trainer.staging import local_weights

    # (An earlier run's in this process, a notebook's: not what this run started with.)
    SEEN.pop((os.path.abspath(cfg.train.out_dir), (cfg.drive.logs or "").rstrip("/")), None)
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
    found = [c.where for c in folder.checkpoints()] + [folder.where(e.name) for e in folder.lone]
    SEEN[(folder.local_dir, folder.spec)] = tuple(sorted(found))
    return bool(found)


def say_gone(drive: Any, listed: Sequence[Any]) -> list[str]:
    """The checkpoints the early check listed on ``drive`` that the resume's listing
    ``listed`` (:class:`~trainer.drive.RemoteCheckpoint`) and its lone files no longer hold:
    deleted since. Where some are left, a warning names those gone; the resume then goes on
    from the newest there now. Asked once: what the early check saw is forgotten."""
    now = {c.where for c in listed} | {drive.where(e.name) for e in drive.lone}
    gone = [w for w in SEEN.pop((drive.local_dir, drive.spec), ()) if w not in now]
    if gone and now:
        logger.warning("%s, there when this run started, %s gone (deleted or pruned since); "
                       "--resume auto goes on from the newest checkpoint there now",
                       ", ".join(gone), "are" if len(gone) > 1 else "is")
    return gone


def refuse_fresh(cfg: Any, drive: Any, gone: Sequence[str] = ()) -> None:
    """Refuse the new run ``--resume auto`` would start where ``model.weights`` is a local
    file that is not there (ConfigError, exit 2, as the early check's): the run folder and
    ``drive`` (None: not set) hold no checkpoint, so none was resumed (the early check let it
    go on: those there then were deleted or pruned since, ``gone``: :func:`say_gone`'s).
    Before, the run "started fresh" and ended on the missing file without a word of why."""
    from trainer.staging import local_weights

    # (A decision asked with a config of train and drive alone: no weights to start from.)
    weights = getattr(getattr(cfg, "model", None), "weights", None)
    if not weights or weights.startswith("drive:"):
        return
    try:
        local_weights(weights, cfg)
        return
    except ConfigError as refused:
        out_dir = cfg.train.out_dir
        were = "were" if len(gone) > 1 else "was"
        what = (f"{', '.join(gone)}, there when this run started, {were} deleted or pruned "
                f"since, and {out_dir} holds none" if gone else
                f"{out_dir} holds none" + (f", nor does {drive.spec}" if drive is not None else ""))
        raise ConfigError(f"{refused} (--resume auto finds no checkpoint to go on from: {what}; "
                          f"put the weights file back to start a new run, or --resume a "
                          f"checkpoint file you have)") from None
