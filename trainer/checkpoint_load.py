"""Loading a checkpoint file, and telling a damaged file from a load that failed here.

:func:`load_checkpoint` loads and checks a full checkpoint (:mod:`trainer.torch_files`: never
code, never a zip bomb). When torch cannot load it, its sidecar says whose fault that is:

- bytes that are not those the sidecar vouches for (size, md5): a damaged file, a
  :class:`~trainer.errors.CheckpointError`, which ``--resume auto`` passes over to an older
  checkpoint, as ever;
- bytes that are (or that cannot even be read to tell: EIO, a permission): the file is not at
  fault, the machine is (no memory, a failing disk, a permission, a torch too old for its
  format), a :class:`~trainer.errors.LoadFailedError`, which stops the resume in one line.
  Before, such a file was passed over as damaged: the run went on from an older checkpoint
  and its saves replaced or pruned the newer verified one (loadfail37).

A sidecar that names no md5 (trainer 0.1.0's) vouches for nothing: as damaged, as before; nor
does one make bytes that are not a whole zip (cut short: a tool that wrote the sidecar of
the bytes it cut) anything but damaged.
Nor does a sidecar make a zip bomb or a pickled function (``posix.system``: no torch loads
one as weights, no trainer saves one) a load that failed here: the bytes' own, passed over.
Split out of :mod:`trainer.checkpoint` (which re-exports every name here).
"""
from __future__ import annotations

import errno
import fnmatch
import hashlib
import os
from typing import Any, Optional

from drivestage import sidecar as sidecars
from drivestage.sidecar import Sidecar
from trainer import torch_files
from trainer.errors import CheckpointError, LoadFailedError, NewerCheckpointError
from trainer.state import bookkeeping_problem

#: Bumped when the layout of the checkpoint dict changes incompatibly (2: ``iteration``,
#: ``epoch_iteration``, ``run``; 1 had ``global_step`` and is still read).
FORMAT_VERSION = 2
#: Keys every full checkpoint has (``iteration`` is ``global_step`` in format 1).
REQUIRED_KEYS = ("format_version", "model", "optimizer", "epoch", "config")

#: Tests only: ``GLOB=DEVICE`` loads the checkpoints whose file name matches GLOB onto DEVICE
#: instead of the CPU (``epoch_002.pt=cuda:7``): torch's own failure on a device this machine
#: lacks, a load that fails for a reason outside the file, in any process of a run (its
#: DataLoader's, torchrun's ranks) with nothing replaced in the code under test.
TEST_LOAD_ON = "TRAINER_TEST_LOAD_ON"


def read_sidecar(path: str) -> Optional[Sidecar]:
    """The sidecar of checkpoint ``path``, or None when absent or unreadable."""
    side = sidecars.on_disk(sidecars.read(sidecars.name_for(path)), path)   # (a FIFO: never waited on)
    return side if side is not None and side.epoch is not None else None


def load_checkpoint(path: str, map_location: Any = "cpu", *,
                    vouched: Optional[Sidecar] = None) -> dict:
    """Load and check a full checkpoint; a truncated, foreign or hostile file (a pickled
    object, a zip bomb, shared references by the billion) raises CheckpointError in one line.
    Checkpoints come from Drive and shared folders: :func:`trainer.torch_files.load`.

    A file torch fails to load whose bytes are those ``vouched`` (default: the sidecar beside
    ``path``) vouches for raises :class:`~trainer.errors.LoadFailedError` instead: not
    damaged, loading it failed here."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch_files.load(path, _test_device(path) or map_location)
    except torch_files.Refused as refused:
        error = _worded(path, refused)
        # (A zip bomb: its zip directory says so; a pickled function: no torch loads it. The
        # bytes' own, as the content checks below are, whatever their sidecar vouches.)
        if not isinstance(refused, torch_files.ZipBomb) and not _foreign(refused):
            outside = _outside(path, vouched or read_sidecar(path), refused)
            if outside is not None:
                raise outside from None
        raise error from None
    if torch_files.too_many_values(state):
        # (Nothing spelt it out yet: a resume's history, its config in a message, would.)
        raise CheckpointError(f"{path} holds more than {torch_files.MAX_VALUES} values besides "
                              "its tensors (one list referenced over and over?); it is no "
                              "checkpoint this trainer wrote: resume from another")
    newer = state.get("format_version") if isinstance(state, dict) else None
    if isinstance(newer, int) and newer > FORMAT_VERSION:   # (first: its other keys may differ)
        raise NewerCheckpointError(f"{path} was written by a newer trainer (format {newer} > {FORMAT_VERSION}); upgrade trainer to resume from it")
    if not isinstance(state, dict) or any(k not in state for k in REQUIRED_KEYS) or \
            ("iteration" not in state and "global_step" not in state):
        raise CheckpointError(f"{path} is not a full trainer checkpoint (weights only?); "
                              f"use it as model.weights instead of resuming from it")
    odd = bookkeeping_problem(state)
    if odd is not None:
        raise CheckpointError(f"{path} holds {odd}, which no checkpoint of this trainer holds (a "
                              "damaged file, or another program's): resume from another")
    return state


def _worded(path: str, refused: torch_files.Refused) -> CheckpointError:
    """:func:`trainer.torch_files.load`'s refusal, worded for a checkpoint."""
    from drivestage.sizes import format_size

    if isinstance(refused, torch_files.ZipBomb):
        return CheckpointError(f"{path} would unpack to {format_size(refused.unpacked)} from "
                               f"{format_size(refused.size)} on disk (a zip bomb?); PyTorch "
                               "writes its files uncompressed: resume from a checkpoint this "
                               "trainer wrote")
    if isinstance(refused, torch_files.PickledObject):
        # Never torch's advice (weights_only=False): the file may come from anywhere.
        return CheckpointError(
            f"{path} holds a pickled Python object ({refused.name}), not only tensors; such "
            "objects are never loaded (a file from anywhere could run code): resume from a "
            "checkpoint this trainer wrote")
    assert isinstance(refused, torch_files.Unreadable)
    if path.lower().endswith(".weights"):   # (Darknet's: weights to start a run from)
        return CheckpointError(f"checkpoint {path} cannot be read ({refused.detail}); a Darknet "
                               ".weights file is no checkpoint: give it as model.weights to a "
                               "new run (--resume none --set model.weights=PATH)")
    return CheckpointError(f"checkpoint {path} cannot be read ({refused.detail}); it is "
                           "truncated or not a trainer checkpoint")


#: Top modules a pickled name may come from in a file some trainer and torch wrote: a type a
#: newer torch's weights_only loading allows, or one a newer trainer registered as safe.
_WRITTEN_BY = ("torch", "numpy", "collections", "builtins", "trainer")


def _foreign(refused: torch_files.Refused) -> bool:
    """Whether ``refused`` names a pickled object no torch loads as weights and no trainer
    saves (``posix.system``, a builtin function, a user's class): a property of the bytes,
    on any machine; a newer torch or memory never makes it load, so a stop advising them led
    nowhere, and came again (attackload37)."""
    if not isinstance(refused, torch_files.PickledObject):
        return False
    top, _, rest = refused.name.partition(".")
    if top == "builtins":
        import builtins
        import types

        return isinstance(getattr(builtins, rest, None), types.BuiltinFunctionType)
    return top not in _WRITTEN_BY


def md5_of(path: str) -> tuple[str, int]:
    """The md5 and size of the file at ``path`` (one streamed read)."""
    h, size = hashlib.md5(), 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def bytes_mismatch(path: str, side: Sidecar) -> Optional[str]:
    """Why the file at ``path`` is not the bytes its sidecar names (size, then md5: one read);
    None when it is, or when the sidecar names neither. An OSError (the file cannot be read)
    is raised: that says nothing of its bytes."""
    if side.size is not None and os.path.getsize(path) != side.size:
        return f"its sidecar says {side.size} bytes, the file has {os.path.getsize(path)}"
    if side.md5 is not None and md5_of(path)[0] != side.md5:
        return (f"its bytes are not those its sidecar names (md5 {side.md5}): changed or "
                f"damaged since they were saved")
    return None


def checked_bytes(path: str, side: Sidecar) -> Optional[str]:
    """:func:`bytes_mismatch` of a checkpoint that loaded; a read that fails (a disk that
    fails under the second read) raises :class:`~trainer.errors.LoadFailedError`: not
    known to be damaged."""
    try:
        return bytes_mismatch(path, side)
    except OSError as exc:
        raise load_failed(path, side, _said(exc), exc, read=True) from None


def _outside(path: str, side: Optional[Sidecar],
             refused: torch_files.Refused) -> Optional[LoadFailedError]:
    """The :class:`~trainer.errors.LoadFailedError` for ``path``, which torch did not load
    (``refused``), when ``side`` vouches for its bytes or they cannot be read to tell; None
    when they are not those ``side`` vouches for, or it vouches for none (damaged)."""
    if side is None or side.md5 is None:
        return None
    cause = refused.__context__   # (what torch raised: torch_files words it `from None`)
    detail = refused.detail if isinstance(refused, torch_files.Unreadable) else \
        f"it holds a pickled object ({getattr(refused, 'name', '?')}) this torch does not load"
    try:
        if bytes_mismatch(path, side) is not None or _broken_zip(path):
            return None
    except OSError as exc:
        return load_failed(path, side, _said(exc), exc, read=True)
    return load_failed(path, side, detail, cause)


def _broken_zip(path: str) -> bool:
    """Whether the bytes at ``path`` are not a whole zip (no central directory: cut short; a
    member whose CRC is wrong): damaged on any machine, whatever a sidecar says of them (a
    tool that wrote the sidecar of the bytes it cut). A whole zip torch did not load (a newer
    torch's format, no memory) is this machine's failure. An OSError is raised: a read that
    fails says nothing of the bytes."""
    import zipfile
    import zlib

    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is not None   # (streamed: a member at a time)
    except (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError):
        return True


def _said(exc: OSError) -> str:
    return f"{type(exc).__name__}: {exc}"


def load_failed(where: str, side: Sidecar, detail: str, cause: Optional[BaseException], *,
                read: bool = False, fetched: bool = False) -> LoadFailedError:
    """The one line that stops a resume at ``where``, which did not load on this machine
    (``detail``; ``read``: it could not even be read), not the file's fault."""
    if read:
        what = (f"it cannot be read on this machine ({detail}), so whether its bytes are those "
                f"its sidecar vouches for (md5 {side.md5}) cannot be told")
    else:
        what = (f"loading it failed on this machine ({detail}), although its bytes are those "
                f"its sidecar vouches for (md5 {side.md5})")
    kept = "; the copy fetched here is removed, Drive keeps it" if fetched else ""
    older = ("--resume PATH (drivestage pull one from drive.logs first)" if fetched
             else "--resume PATH")
    return LoadFailedError(
        f"cannot resume from {where}: {what}: {'not known to be' if read else 'not'} damaged, "
        f"so the run stops rather than go on from an older checkpoint, whose saves would "
        f"replace or prune this one{kept}. {_advice(cause, detail)}, then run the same command "
        f"again; or go on from an older checkpoint on purpose with {older}", where,
        lambda there, fetched: load_failed(there, side, detail, cause, read=read,
                                           fetched=fetched))


def _advice(cause: Optional[BaseException], detail: str) -> str:
    """What to do about a load that failed for ``cause`` (what torch or the read raised)."""
    import torch

    text = detail.lower()
    if isinstance(cause, MemoryError) or "memory" in text or "can't allocate" in text:
        return ("Free memory (other processes, a notebook's other sessions) or run on a "
                "machine with more")
    if isinstance(cause, PermissionError) or (isinstance(cause, OSError) and cause.errno in (
            errno.EACCES, errno.EPERM)):
        return "Give this user read access to it (chmod, chown)"
    if isinstance(cause, OSError):
        return ("Check the disk or mount it is on (an I/O error: a failing disk, a lost "
                "mount; copy it off that disk)")
    if "version" in text or "pickled" in text:
        return f"Load it with the torch that wrote it or a newer one (this is torch {torch.__version__})"
    return (f"Free memory, check the disk and the file's permissions, or use a newer torch "
            f"(this is {torch.__version__})")


def _test_device(path: str) -> Optional[str]:
    """:data:`TEST_LOAD_ON`'s device for ``path``, when set and its glob matches the name."""
    spec = os.environ.get("TRAINER_TEST_LOAD_ON", "")
    pattern, _, device = spec.partition("=")
    if device and fnmatch.fnmatchcase(os.path.basename(path), pattern):
        return device
    return None
