"""Checks of the states a resume puts back besides the tensors (:mod:`trainer.resume_checks`
holds those of the weights and the optimizer; split out at its 500-line cap): the random
state of each process, restored at the resumed iteration of an epoch, and the gradient
scaler of ``train.amp``. Neither was checked: a torn random state stopped the run at its
first iteration in a traceback, a scaler whose scale is NaN or 0 skipped every step without
a word (attackb51). Each refusal is :class:`~trainer.errors.UnusableCheckpointError`:
``--resume auto`` passes over the file (:mod:`trainer.resume_fallback`), ``--resume PATH``
refuses it in one line.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional

import torch

from trainer.resume_checks import _refuse


def check_rng(state: Any, path: str) -> None:
    """Refuse a checkpoint saved in the middle of an epoch whose random states (one per
    process, put back at the resumed iteration: :func:`trainer.engine._train`) do not
    restore: torn, of another Python or torch, or not a state at all. Before, such a
    checkpoint passed every check, the run claimed its lease, pulled its data and stopped at
    its first iteration in a traceback (``RuntimeError: Expected a CPUGeneratorImplState of
    size 5056 ...``, ``KeyError: 'python'``), and ``--resume auto`` chose it again at every
    start (attackb51). Each state is tried on this process and the process's own put back
    (a round trip that changes nothing); CUDA's is only looked at (setting it would start
    CUDA here). At an epoch's start the states are not used (the epoch is seeded afresh):
    not checked."""
    from trainer import checkpoint as ckpt

    if not isinstance(state, dict) or not state.get("epoch_iteration"):
        return
    rng = state.get("rng")
    if rng is None:   # (trainer 0.1.0 saved none: the epoch's seed alone, as before)
        return
    if not isinstance(rng, list):
        raise _refuse(path, f"its random states are not a list, one per process (rng = "
                            f"{type(rng).__name__}): a damaged file, or another trainer's")
    own = ckpt.capture_rng()
    try:
        for rank, one in enumerate(rng):
            why = _rng_problem(one, ckpt.restore_rng)
            if why is not None:
                raise _refuse(path, f"the random state of its process {rank} does not restore "
                                    f"(a damaged file, or another trainer's): {why}")
    finally:
        ckpt.restore_rng({k: v for k, v in own.items() if k != "cuda"})


def _rng_problem(one: Any, restore: Callable[[dict], None]) -> Optional[str]:
    """Why the random state ``one`` (:func:`trainer.checkpoint.capture_rng`'s) does not
    restore, on one line; None when it does (it is then this process's: the caller puts its
    own back)."""
    if not isinstance(one, dict):
        return f"{type(one).__name__}, not a state"
    cuda = one.get("cuda")
    if cuda is not None and not (isinstance(cuda, torch.Tensor) and cuda.dtype == torch.uint8):
        return "its CUDA state is no byte tensor"
    try:
        restore({k: v for k, v in one.items() if k != "cuda"})
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError, AttributeError,
            OverflowError) as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        return f"{type(exc).__name__}: {text[:120]}"
    return None


def check_scaler(state: Any, path: str) -> None:
    """Refuse a checkpoint whose gradient scaler (``train.amp`` on CUDA) holds a scale that
    is no finite number above 0, or factors torch's own constructor refuses: its
    ``load_state_dict`` checks nothing, and with a scale of NaN or 0 every step's gradients
    read as overflowed, so every optimizer step was skipped, for good and without a word
    (the loss finite, the weights never changing: attackb51). A disabled scaler saves {}."""
    scaler = state.get("scaler") if isinstance(state, dict) else None
    if not isinstance(scaler, dict) or not scaler:
        return

    def number(key: str, fits: Callable[[float], bool]) -> bool:
        v = scaler.get(key)
        return key not in scaler or (isinstance(v, (int, float)) and not isinstance(v, bool)
                                     and math.isfinite(v) and fits(v))

    for key, fits, what in (("scale", lambda v: v > 0, "a finite number above 0"),
                            ("growth_factor", lambda v: v > 1, "a finite number above 1"),
                            ("backoff_factor", lambda v: 0 < v < 1, "a number between 0 and 1"),
                            ("growth_interval", lambda v: v >= 1 and v == int(v),
                             "a count of steps")):
        if not number(key, fits):
            raise _refuse(path, f"its gradient scaler's {key} is {ascii(scaler.get(key))[:40]}, "
                                f"not {what} (with it every step would be skipped)")
