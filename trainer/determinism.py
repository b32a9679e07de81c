"""Deterministic training (``train.deterministic``): bit-identical resumes on CPU; split from
:mod:`trainer.engine` at its cap."""
from __future__ import annotations

import os
import sys

import torch

from trainer.config import Config


def set_determinism(cfg: Config) -> None:
    """Deterministic algorithms (and cuDNN) with train.deterministic; else cuDNN's autotuner."""
    if cfg.train.deterministic:
        _use_deterministic_algorithms()
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    elif torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True


def _use_deterministic_algorithms() -> None:
    """``torch.use_deterministic_algorithms(True, warn_only=True)`` without importing
    ``torch._inductor.config`` to set its flag too: 1.5 s of every training process's start,
    for torch.compile, which the trainer does not use. Where that module is loaded already
    (a notebook that compiled something), or torch lacks the switch this calls, the public
    function does both."""
    switch = getattr(torch._C, "_set_deterministic_algorithms", None)
    if switch is None or "torch._inductor.config" in sys.modules:
        torch.use_deterministic_algorithms(True, warn_only=True)
        return
    switch(True, warn_only=True)
