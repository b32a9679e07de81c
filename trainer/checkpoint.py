"""Full-state checkpoints: copied off the device, saved atomically, loaded with checks, found.

A checkpoint is a dict of ``state_dict()``s (model, EMA, optimizer, scheduler, scaler) plus
the training position (:mod:`trainer.state`), the run identity, the best metric, the save
policy's bookkeeping, RNG states per rank, the config and the version. Next to ``<name>.pt``
lies ``<name>.json``, the sidecar of :mod:`drivestage.sidecar` (epoch, iteration,
epoch_iteration, metrics, run, the md5 and size of the checkpoint file, and ``saved``: when it
was written), so tools rank checkpoints without loading torch. A copy (``best.pt``) gets the
sidecar of its original, ``saved`` included.
"""
from __future__ import annotations

import dataclasses
import glob
import hashlib
import logging
import os
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

import numpy as np
import torch

from drivestage import sidecar as sidecars
from drivestage.localfs import atomic_file, umask
from drivestage.sidecar import Described, Sidecar
from trainer import __version__
from trainer.errors import CheckpointError, SaveError, fine_tune_advice
from trainer.state import EPOCH_NAME
# Loading, and a damaged file told from a load that failed here, in their own module
# (loadfail37); every name importable from here as before.
from trainer.checkpoint_load import FORMAT_VERSION, REQUIRED_KEYS, TEST_LOAD_ON, \
    bytes_mismatch, checked_bytes, load_checkpoint, md5_of, read_sidecar

logger = logging.getLogger(__name__)

class _HashingWriter:
    """A file object that md5-hashes what passes through (no second read of a large file)."""

    def __init__(self, fh):
        self.fh, self.md5, self.size = fh, hashlib.md5(), 0
        self.error: Optional[OSError] = None   # the write that failed (a full disk)

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        self.md5.update(view)
        self.size += len(view)
        try:
            return self.fh.write(view)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.fh.flush()


def _atomic_write(path: str, write, *, before_replace=None) -> tuple[str, int]:
    """Write through a temporary file in the same folder, fsync, then rename over ``path``
    (:func:`drivestage.localfs.atomic_file`: a killed save's temporary file is removed by a
    later save into the folder). ``before_replace`` runs once the bytes are complete, just
    before the rename.

    Returns the md5 and size of what was written."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    out: Optional[_HashingWriter] = None
    try:
        # The umask as it is now: one a notebook tightened after the import holds (attack28).
        with atomic_file(path, mode=0o666 & ~umask(), durable=True,
                         before_replace=before_replace) as fh:
            out = _HashingWriter(fh)
            write(out)
    except Exception as exc:
        # torch.save reports a failed write of its file object as its own "[enforce fail at
        # inline_container.cc:672] . unexpected pos 67094208 vs 67094096": raise the write's
        # error instead ("[Errno 28] No space left on device"), which says what to do.
        if out is not None and out.error is not None and exc is not out.error:
            raise out.error from None
        raise
    assert out is not None
    return out.md5.hexdigest(), out.size


def _drop_sidecar(path: str):
    """What runs just before checkpoint ``path`` is replaced: its old sidecar goes, so that a
    kill between the new bytes and their sidecar leaves the file undescribed (never a sidecar
    that vouches for the bytes it replaced)."""
    def drop() -> None:
        try:
            os.unlink(sidecar_path(path))
        except FileNotFoundError:
            pass
    return drop


def sidecar_path(path: str) -> str:
    """``logs/epoch_004.pt`` -> ``logs/epoch_004.json``."""
    return sidecars.name_for(path)


def position_of(state: dict) -> tuple[int, int, int]:
    """``(epoch, iteration, epoch_iteration)`` of a checkpoint dict (both formats)."""
    return (int(state["epoch"]), int(state.get("iteration", state.get("global_step", 0))),
            int(state.get("epoch_iteration") or 0))


def save_checkpoint(state: dict, path: str, *, metrics: Optional[dict] = None,
                    saved: Optional[float] = None) -> str:
    """Write ``state`` to ``path`` atomically, then its sidecar (with the file's md5); return ``path``.
    ``saved`` (the sidecar's save time): when the state was taken; default, once the file is
    complete.

    The sidecar is written after the checkpoint, so a sidecar always describes a complete file;
    the old sidecar goes just before the new file replaces the old one, so a sidecar never
    describes bytes it was not written for, whenever the process is killed.
    """
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"refusing to save an incomplete checkpoint to {path}: missing {missing}")
    md5, size = _atomic_write(path, lambda fh: torch.save(state, fh),
                              before_replace=_drop_sidecar(path))
    if saved is None:
        saved = time.time()  # the file is complete: within a run, retention keeps the last one
    epoch, iteration, epoch_iteration = position_of(state)
    sidecars.write(path, Sidecar(epoch=epoch, iteration=iteration, epoch_iteration=epoch_iteration,
                                 metrics=_plain_metrics(metrics), run=state.get("run"), md5=md5,
                                 size=size, saved=saved))
    return path


def copy_checkpoint(src: str, dst: str) -> str:
    """Copy a checkpoint and its sidecar atomically (cheaper than serialising it again).

    As :func:`save_checkpoint`: ``dst``'s old sidecar goes just before the copy replaces
    ``dst``, and the new one is written only when the bytes copied are those ``src``'s
    sidecar describes (else ``dst`` stays undescribed and this raises: ``src`` changed
    meanwhile)."""
    with open(sidecar_path(src), "rb") as fh:
        side = fh.read(sidecars.MAX_BYTES + 1)
    said = sidecars.parse(side, sidecar_path(src)) if len(side) <= sidecars.MAX_BYTES else None

    def write(out) -> None:
        with open(src, "rb") as inp:
            while True:
                chunk = inp.read(1 << 20)
                if not chunk:
                    break
                out.write(chunk)

    md5, size = _atomic_write(dst, write, before_replace=_drop_sidecar(dst))
    if said is not None and ((said := said.speaking_for(md5)).md5 not in (None, md5) or
                             (said.size is not None and said.size != size)):
        raise CheckpointError(f"{src} changed while it was copied to {dst} (its sidecar does "
                              f"not describe the bytes copied); {dst} has no sidecar")
    _atomic_write(sidecar_path(dst), lambda out: out.write(side))
    return dst


def copy_sidecar(src: str, dst: str) -> None:
    """Give checkpoint ``dst`` (a copy of ``src``'s bytes) the sidecar of ``src``, atomically."""
    with open(sidecar_path(src), "rb") as fh:
        data = fh.read(sidecars.MAX_BYTES + 1)
    _atomic_write(sidecar_path(dst), lambda out: out.write(data))


def undescribed(folder: str) -> list[str]:
    """The ``*.pt`` files in ``folder`` without a readable sidecar beside them: none, or one
    a crash cut short (a sidecar is written without an fsync, after its checkpoint's durable
    write: a power loss can leave it empty; counted as described, its checkpoint was no
    checkpoint to a resume, and never described again, attacktrain26)."""
    return [p for p in glob.glob(os.path.join(folder, "*.pt")) if read_sidecar(p) is None]


def describe_killed_saves(folder: str, *, say: bool = True) -> list[str]:
    """Give a sidecar to the checkpoints a killed save left undescribed; their paths (each
    warned of unless ``say`` is False: its caller says it, in its own words).

    A save drops the old sidecar just before the rename and writes the new one after it
    (:func:`save_checkpoint`): a kill in between (the folder's fsync is there, seconds on a
    slow or network disk) leaves ``last.pt`` complete, its bytes the most advanced of the
    folder, and undescribed. Resuming only from described checkpoints then went back to an
    older one (``best.pt``, an ``epoch_NNN.pt``): the epochs since were trained again. Only
    files at least as new as every described checkpoint are read, and only full checkpoints
    of the run written last there (a file of another run dropped in stays undescribed).
    "New" is by file time, or by contents: further on than every described checkpoint of the
    run. By file time alone, a killed ``last.pt`` written after this machine's clock was
    stepped back (older by its time than ``epoch_002.pt``) was never read, and the resume
    went back to epoch 2 (train27); an older one (a prune killed between its two files) stays
    as it is, for the next prune."""
    out = []
    for path, side, cut_short in killed_saves(folder):
        try:
            sidecars.write(path, side)
        except OSError as exc:
            # (A full disk.) Going on without it would resume an older checkpoint and train
            # the epochs since again.
            raise SaveError(f"{path} has no sidecar (a save was killed before it) and none "
                            f"could be written: {exc}; free some space and run the same "
                            f"command again") from None
        if say:
            logger.warning("%s had no %s (a save was killed between the two); described "
                           "from its contents (epoch %d)", path,
                           "readable sidecar" if cut_short else "sidecar", side.epoch)
        out.append(path)
    return out


def killed_saves(folder: str) -> list[tuple[str, Sidecar, bool]]:
    """What :func:`describe_killed_saves` would describe, reading only: ``(path, its sidecar
    from its contents, whether a sidecar cut short is there)``. A file that does not load whole
    is none (never trusted unverified). ``train``'s early check of ``model.weights`` asks it
    too, before the data is pulled: a resume from such a file needs no weights (trainres48)."""
    described = list_checkpoints(folder)
    since = max((c.described.modified for c in described), default=None)
    run = current_run([c.described for c in described])[1] if described else None
    ahead = max((c.sidecar.progress for c in described if c.sidecar.run == run), default=None)
    out = []
    for path in sorted(undescribed(folder)):
        try:
            st = os.stat(path)
            state = load_checkpoint(path)
        except (OSError, CheckpointError):
            continue
        if described and state.get("run") != run:
            continue
        newer = since is None or st.st_mtime >= since
        if not newer and (ahead is None or _progress(state) <= ahead):
            continue  # older than a described one, by time and by contents: not the last save
        md5, size = md5_of(path)
        epoch, iteration, epoch_iteration = position_of(state)
        history = state.get("history") or []
        row = history[-1] if history and not epoch_iteration else {}
        side = Sidecar(
            epoch=epoch, iteration=iteration, epoch_iteration=epoch_iteration,
            metrics=_plain_metrics({k: row[k] for k in ("val_loss", "map50", "map")
                                    if isinstance(row, dict) and row.get(k) is not None}),
            run=state.get("run"), md5=md5, size=size, saved=st.st_mtime)
        # When its state was taken is lost with the sidecar; its file's time may be later
        # than a save further on (an epoch save still queued in the writer when the stop
        # save was written at once by the training thread, then killed between its two
        # files). Never dated after one further on: it would read as the run sent back on
        # purpose, and the resume went back to it.
        further = [c.sidecar.saved for c in described if c.sidecar.run == side.run
                   and c.sidecar.saved is not None and c.sidecar.progress > side.progress]
        if further and min(further) <= st.st_mtime:
            side = dataclasses.replace(side, saved=min(further) - 1e-3)
        # Nor before one it continues from (a clock stepped back since: further on and saved
        # earlier reads as left behind by a run sent back on purpose). The latest process
        # wrote it, after those: its saves are dated so (trainer.writer.BackgroundWriter.taken).
        behind = [c.sidecar.saved for c in described if c.sidecar.run == side.run
                  and c.sidecar.saved is not None and c.sidecar.progress < side.progress]
        if behind and max(behind) >= (side.saved or 0.0):
            side = dataclasses.replace(side, saved=max(behind) + 1e-3)
        cut_short = os.path.exists(sidecar_path(path))   # (there, unreadable: replaced)
        out.append((path, side, cut_short))
    return out


def _progress(state: dict) -> tuple[int, int]:
    """A checkpoint dict's :attr:`drivestage.sidecar.Sidecar.progress`."""
    epoch, _, epoch_iteration = position_of(state)
    return epoch, epoch_iteration


def remove_checkpoint(path: str) -> None:
    """Delete a checkpoint and its sidecar (the sidecar first: never a sidecar without its file)."""
    for p in (sidecar_path(path), path):
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


def _plain_metrics(metrics: Optional[dict]) -> dict:
    out = {}
    for k, v in (metrics or {}).items():
        if isinstance(v, torch.Tensor):
            v = v.item()
        if isinstance(v, (np.floating, np.integer)):
            v = v.item()
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[str(k)] = v
    return out


@dataclass(frozen=True)
class LocalCheckpoint:
    """A checkpoint in a local folder that has a sidecar."""

    path: str
    described: Described

    @property
    def sidecar(self) -> Sidecar:
        return self.described.sidecar


def list_checkpoints(folder: str) -> list[LocalCheckpoint]:
    """Checkpoints in ``folder`` that have a sidecar (any order)."""
    out = []
    for path in glob.glob(os.path.join(folder, "*.pt")):
        side = read_sidecar(path)
        if side is None:
            continue
        try:
            modified = os.stat(path).st_mtime
        except FileNotFoundError:
            continue
        out.append(LocalCheckpoint(path, Described(os.path.basename(path), side, None, modified)))
    return out


def newest(checkpoints: Iterable[LocalCheckpoint], *, run: Optional[str] = None,
           skip: Iterable[str] = (), any_run: bool = False) -> Optional[LocalCheckpoint]:
    """The most advanced checkpoint (:func:`drivestage.sidecar.newest`): of ``run`` unless
    ``any_run``; an ``epoch_NNN`` name wins a tie of progress, then the newer file. None
    further on than its run's checkpoint saved last (:func:`drivestage.sidecar.left_behind`)."""
    by_name = {c.described.name: c for c in checkpoints if any_run or c.sidecar.run == run}
    runs: dict[Optional[str], list[Described]] = {}
    for c in by_name.values():
        runs.setdefault(c.sidecar.run, []).append(c.described)
    # Never further on than its run's checkpoint saved last: a run resumed on purpose from an
    # older checkpoint goes on from its new branch, not from the state it left.
    behind = set().union(*(sidecars.left_behind(group) for group in runs.values()))
    best = sidecars.newest([c.described for c in by_name.values()],
                           prefer=EPOCH_NAME, skip=set(skip) | behind)
    return by_name[best.name] if best is not None else None


def find_latest(folder: str, *, run: Optional[str] = None, any_run: bool = True,
                usable: Optional[Callable[[LocalCheckpoint, dict], bool]] = None) -> Optional[str]:
    """The newest loadable checkpoint in ``folder`` that holds what its sidecar says; damaged
    ones, and files that are not what their sidecar describes, are skipped with a warning.
    ``usable(candidate, state)`` may pass over more (it says why: ``--resume auto`` vets the
    contents, :mod:`trainer.resume_fallback`); a file passed over stays as it is.

    One that does not load although its bytes are those its sidecar vouches for (no memory,
    a failing disk, a permission, an older torch: :mod:`trainer.checkpoint_load`) is no
    damaged file: :class:`~trainer.errors.LoadFailedError` is raised, never an older one
    returned (whose run's saves would replace or prune it)."""
    found = list_checkpoints(folder)
    bad: set[str] = set()
    while True:
        best = newest(found, run=run, skip=bad, any_run=any_run)
        if best is None:
            return None
        try:
            state = load_checkpoint(best.path, vouched=best.sidecar)
        except CheckpointError as exc:
            logger.warning("skipping %s", exc)
            bad.add(best.described.name)
            continue
        # The sidecar chose it: a file put there since (another run's last.pt copied over
        # ours, an older backup restored) would otherwise continue another run, or go back;
        # and torch.load does not check its zip's CRCs, so a flipped byte loads as weights.
        why = sidecar_mismatch(state, best.sidecar) or checked_bytes(best.path, best.sidecar)
        if why is not None:
            logger.warning("skipping %s: %s", best.path, why)
            bad.add(best.described.name)
            continue
        if usable is not None and not usable(best, state):
            bad.add(best.described.name)
            continue
        return best.path


def sidecar_mismatch(state: dict[str, Any], side: Sidecar) -> Optional[str]:
    """Why the loaded checkpoint ``state`` is not what its sidecar ``side`` says (another run,
    another position); None when it is, or when the sidecar names no run (trainer 0.1.0)."""
    if side.run is None:
        return None
    from trainer.state import Position, describe_run

    epoch, iteration, epoch_iteration = position_of(state)
    held = Position(epoch, iteration, epoch_iteration)
    claimed = Position(side.epoch or 0, side.iteration if side.iteration is not None else
                       iteration, side.epoch_iteration)
    if state.get("run") == side.run and held == claimed:
        return None
    return (f"its sidecar names {describe_run(side.run)} at {claimed.label}, but the file holds "
            f"{describe_run(state.get('run'))} at {held.label}")


def current_run(checkpoints: Iterable[Described]) -> tuple[bool, Optional[str]]:
    """``(found, run)``: the run of the most recently written checkpoint among ``checkpoints``.

    A folder should hold one run; where it holds several (written by trainer 0.1.0, or
    another tool), the one written last is the one a resume continues."""
    latest = max(checkpoints, key=lambda c: (c.modified, c.name), default=None)
    return (latest is not None, latest.sidecar.run if latest is not None else None)


# --------------------------------------------------------------------------- state capture

def to_cpu(obj: Any) -> Any:
    """A deep copy of a state structure with every tensor copied to CPU memory.

    Taken at an iteration boundary, it lets a background thread serialise while training
    goes on changing the live tensors."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_cpu(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(to_cpu(v) for v in obj)
    return obj


def capture_rng() -> dict:
    """Python, numpy, torch (and CUDA) RNG states in a form ``weights_only`` loading accepts."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]),
                  "cached_gaussian": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng(state: dict) -> None:
    """Inverse of :func:`capture_rng`."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def check_signature(saved: dict, current: dict, path: str) -> None:
    """Refuse to resume a checkpoint whose model shape differs from the config's."""
    # (``width`` is in a signature only when it is not 1: absent on either side, it is 1.)
    saved, current = {**saved, "width": saved.get("width", 1.0)}, {**current, "width": current.get("width", 1.0)}
    diffs = [f"{k}: checkpoint {saved.get(k)!r}, config {v!r}" for k, v in current.items() if saved.get(k) != v]
    # Weights of another width fit no layer: fine-tuning from them was the advice, and refused.
    fix = (f"Restore the config, or start a new run that fine-tunes from it: {fine_tune_advice(path)}"
           if saved["width"] == current["width"] else f"Restore model.width ({saved['width']}): its "
           f"weights fit no other width; or start a new run in a new train.out_dir (--resume none)")
    if diffs:
        raise CheckpointError(
            f"cannot resume from {path}: the config changes the model's shape ({'; '.join(diffs)}). {fix}")


def trainer_version() -> str:
    """Version string stored in every checkpoint."""
    return __version__
