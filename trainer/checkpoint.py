"""Full-state checkpoints: atomic save, verified load, finding the newest one.

A checkpoint is a dict of ``state_dict()``s (model, EMA, optimizer, scheduler, scaler) plus
the epoch, global step, best metric, retention bookkeeping, RNG states per rank, the
config and the version. Next to ``<name>.pt`` lies ``<name>.json`` (epoch and metrics) so
tools can rank checkpoints without loading torch.
"""
from __future__ import annotations

import glob
import json
import logging
import os
import random
import tempfile
from typing import Any, Optional

import numpy as np
import torch

from trainer import __version__
from trainer.errors import CheckpointError

logger = logging.getLogger(__name__)

#: Bumped when the layout of the checkpoint dict changes incompatibly.
FORMAT_VERSION = 1
#: Keys every full checkpoint has.
REQUIRED_KEYS = ("format_version", "model", "optimizer", "epoch", "global_step", "config")


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def _atomic_write(path: str, write) -> None:
    """Write through a temporary file in the same folder, fsync, then rename over ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file normal permissions
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def sidecar_path(path: str) -> str:
    """``logs/epoch_004.pt`` -> ``logs/epoch_004.json``."""
    return os.path.splitext(path)[0] + ".json"


def save_checkpoint(state: dict, path: str, *, metrics: Optional[dict] = None) -> str:
    """Write ``state`` to ``path`` atomically, then its JSON sidecar; return ``path``.

    The sidecar is written after the checkpoint so a sidecar always describes a complete file.
    """
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"refusing to save an incomplete checkpoint to {path}: missing {missing}")
    _atomic_write(path, lambda fh: torch.save(state, fh))
    write_sidecar(path, int(state["epoch"]), int(state["global_step"]), metrics)
    return path


def write_sidecar(path: str, epoch: int, global_step: int, metrics: Optional[dict] = None) -> str:
    """Write ``<stem>.json`` = ``{"epoch", "global_step", "metrics", "format_version"}`` atomically."""
    side = {"epoch": epoch, "global_step": global_step,
            "metrics": {k: _plain(v) for k, v in (metrics or {}).items() if v is not None},
            "format_version": FORMAT_VERSION}
    data = json.dumps(side, indent=1, sort_keys=True).encode()
    _atomic_write(sidecar_path(path), lambda fh: fh.write(data))
    return sidecar_path(path)


def copy_checkpoint(src: str, dst: str) -> str:
    """Copy a checkpoint and its sidecar atomically (cheaper than serialising it again)."""
    def copy_into(path_from: str):
        def write(fh):
            with open(path_from, "rb") as inp:
                while True:
                    chunk = inp.read(1 << 20)
                    if not chunk:
                        break
                    fh.write(chunk)
        return write

    _atomic_write(dst, copy_into(src))
    _atomic_write(sidecar_path(dst), copy_into(sidecar_path(src)))
    return dst


def _plain(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        return v.item()
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return v


def read_sidecar(path: str) -> Optional[dict]:
    """The sidecar of checkpoint ``path``, or None when absent or unreadable."""
    try:
        with open(sidecar_path(path), encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) and "epoch" in data else None
    except (OSError, ValueError):
        return None


def load_checkpoint(path: str, map_location: Any = "cpu") -> dict:
    """Load and check a full checkpoint; a truncated or foreign file raises CheckpointError."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        # weights_only: checkpoints may come from Drive; never unpickle arbitrary objects.
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged zip/pickle
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); "
                              f"it is truncated or not a trainer checkpoint") from None
    if not isinstance(state, dict) or any(k not in state for k in REQUIRED_KEYS):
        raise CheckpointError(f"{path} is not a full trainer checkpoint (weights only?); "
                              f"use it as model.weights instead of resuming from it")
    if state["format_version"] > FORMAT_VERSION:
        raise CheckpointError(f"{path} was written by a newer trainer (format "
                              f"{state['format_version']} > {FORMAT_VERSION}); upgrade trainer")
    return state


def list_checkpoints(folder: str) -> list[tuple[str, dict]]:
    """Checkpoints in ``folder`` that have a sidecar, newest first.

    Newest = highest epoch; on a tie ``last.pt`` first, then ``epoch_NNN.pt``, then others.
    """
    out = []
    for path in glob.glob(os.path.join(folder, "*.pt")):
        side = read_sidecar(path)
        if side is not None:
            out.append((path, side))
    rank = {"last.pt": 0}

    def key(item):
        name = os.path.basename(item[0])
        return (-int(item[1]["epoch"]), rank.get(name, 1 if name.startswith("epoch_") else 2), name)

    return sorted(out, key=key)


def find_latest(folder: str) -> Optional[str]:
    """The newest loadable checkpoint in ``folder``; damaged ones are skipped with a warning."""
    for path, _side in list_checkpoints(folder):
        try:
            load_checkpoint(path)
        except CheckpointError as exc:
            logger.warning("skipping %s", exc)
            continue
        return path
    return None


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
    diffs = [f"{k}: checkpoint {saved.get(k)!r}, config {v!r}" for k, v in current.items()
             if saved.get(k) != v]
    if diffs:
        raise CheckpointError(
            f"cannot resume from {path}: the config changes the model's shape ({'; '.join(diffs)}). "
            f"Use --resume none with model.weights={path} to fine-tune from it, or restore the config")


def trainer_version() -> str:
    """Version string stored in every checkpoint."""
    return __version__
