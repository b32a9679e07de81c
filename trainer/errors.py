"""Every error the trainer raises on purpose; the CLI prints one line and exits 1 (config: 2)."""
from __future__ import annotations

from typing import Callable, Optional

from drivestage.errors import DriveStageError, GuardUnsureError


class TrainerError(Exception):
    """Base class: a failure with a message fit for the user."""

    exit_code = 1

    def __init__(self, *args: object) -> None:
        # A DataLoader worker's error is raised again in the main process as
        # ``type(text)``, the text being "Caught X in DataLoader worker process N." and the
        # worker's traceback; keep the message the user is meant to see, after the traceback.
        if len(args) == 1 and isinstance(args[0], str) and args[0].startswith("Caught "):
            marker = f"\n{type(self).__module__}.{type(self).__qualname__}: "
            head, found, message = args[0].rpartition(marker)
            if found and "DataLoader worker" in head.split("\n", 1)[0]:
                self.worker_traceback = head
                args = (message.rstrip("\n"),)
        super().__init__(*args)


class ConfigError(TrainerError, ValueError):
    """An unknown key, a wrong type or an impossible value in a config."""

    exit_code = 2


class UsageError(TrainerError, ValueError):
    """A bad argument the user typed (exit code 2)."""

    exit_code = 2


def refuse_empty(what: str, value: object, want: str) -> None:
    """UsageError for an empty path argument ``what``: ``"$OUT"`` with the variable unset,
    which named the working folder (synth-data wrote a dataset there, exit 0: attackcli39)."""
    if value == "":
        raise UsageError(f"{what} is empty (an unset variable?); give {want}")


class DataError(TrainerError, ValueError):
    """A dataset that cannot be read: missing files, bad annotation lines, no images."""


class CacheBudgetError(DataError):
    """A decoded-image cache (``data.cache``) would not fit its memory or disk budget."""


class WeightsError(TrainerError, ValueError):
    """A weights file that cannot be loaded into the model (unknown format, no backbone)."""


class CheckpointError(TrainerError, ValueError):
    """A checkpoint that cannot be resumed from (corrupt, or for another model shape)."""


class SaveError(TrainerError, OSError):
    """A checkpoint the run had to write could not be written (a full disk, a read-only run
    folder); the previous checkpoints are intact."""


class NonFiniteLossError(TrainerError, FloatingPointError):
    """The loss became NaN or infinite; training stopped without saving."""


class TrainingInterrupted(TrainerError):
    """SIGTERM, SIGINT or SIGHUP arrived during training; a checkpoint was saved before stopping.

    Exit code 143 (SIGTERM), 130 (SIGINT) or 129 (SIGHUP), the shell's 128 + signal number."""

    exit_code = 143

    def __init__(self, message: str, exit_code: int = 143):
        super().__init__(message)
        self.exit_code = exit_code


class NewerCheckpointError(TrainerError):
    """A checkpoint written by a newer trainer (its ``format_version`` above this one's). No
    :class:`CheckpointError` on purpose: the places that pass over a damaged checkpoint (``--resume
    auto``'s fallback, a killed save's repair) must not pass over it, or an older trainer goes on
    from an older checkpoint and its saves replace the newer trainer's (attacktrain36)."""


class LoadFailedError(TrainerError):
    """A checkpoint that did not load on this machine although its bytes are those its sidecar
    vouches for (or cannot be read to tell): no memory, a failing disk, a permission, a torch
    too old for its format; not the file's fault (:mod:`trainer.checkpoint_load`). No
    :class:`CheckpointError` on purpose, as :class:`NewerCheckpointError`: ``--resume auto``
    passed over such a file to an older checkpoint, and the run's saves then replaced or pruned
    the newer verified one (loadfail37). ``path``: the file named; ``again(where, fetched)``:
    the same line naming ``where`` instead (a copy fetched from Drive: the Drive file)."""

    def __init__(self, message: str, path: str = "",
                 again: Optional[Callable[[str, bool], "LoadFailedError"]] = None):
        super().__init__(message)
        self.path = path
        self.again = again


class UnusableCheckpointError(CheckpointError):
    """A checkpoint that loads but is no state to train on (NaN weights, an EMA or optimizer
    state of another model: :mod:`trainer.resume_checks`). ``--resume auto`` falls back past
    it to an older checkpoint; ``--resume PATH`` refuses it."""

    def __init__(self, message: str, path: str = "", why: str = ""):
        super().__init__(message)
        self.path, self.why = path, why


class RunFolderBusyError(TrainerError):
    """Another training process holds the run folder (``train.out_dir``): two runs there
    would overwrite each other's ``last.pt``, ``epoch_NNN.pt`` and autosaves."""


#: What to run when the export's packages are missing: they are an extra, not part of [train].
INSTALL_HINT = 'pip install -e ".[export]"'


def require_onnx() -> None:
    """Fail early, in one line, when the ``[export]`` extra (onnx) is not installed.

    Here, not in trainer.export, so that ``trainer export-onnx`` says so before it imports
    torch (2-4 s of the command's start, for nothing)."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise TrainerError(f"ONNX export needs the onnx package, which [train] leaves out; install it with "
                           f"{INSTALL_HINT} (or pip install onnx)") from None


def fine_tune_advice(path: str) -> str:
    """How to start a new run from the weights of ``path``, a checkpoint this config cannot
    resume (other classes, another shape): in new folders, as ``--resume none`` refuses ones
    that hold the old run's checkpoints (the advice without them, followed, was refused)."""
    return (f"--resume none --set model.weights={path} --set train.out_dir=<a new folder> "
            "(and drive.logs=<a new Drive folder> where it is set)")


class LeaseHeldError(TrainerError):
    """Another trainer of this run holds its lease on ``drive.logs``, and renews it
    (:mod:`trainer.lease`): two would overwrite each other's checkpoints there."""


class LeaseUnsureError(LeaseHeldError):
    """The run's lease, not taken at the start (Drive down), found a claim of another dated
    ahead of Drive's clock, not yet seen unchanged for its stale period: neither held nor
    taken (:func:`trainer.lease_pending.unsure`)."""


class LeaseLostError(TrainerError, DriveStageError):
    """This run's lease on ``drive.logs`` was taken over by another trainer: nothing more is
    pushed (a push's failure, as Drive's are; the stop's line says what to do)."""

    exit_code = 1


class LeaseNotTakenError(TrainerError, GuardUnsureError):
    """This run's lease on ``drive.logs`` is not taken yet (Drive down at the start, and
    silent since at each try): a push sends new files only, and stops at its first
    replacement or removal (a push's failure, as Drive's are; the next push tries again)."""
