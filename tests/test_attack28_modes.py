"""The mode of what the trainer writes follows the process's umask *when it writes*, not when
the module was imported (attack28).

A notebook that imports the trainer, then tightens its umask (``os.umask(0o077)``: a shared
machine, private checkpoints) got its checkpoints, their sidecars and the image cache
readable by every user of the machine: the checkpoint's mode was ``0o666 & ~umask`` read once
at import, the cache's likewise, and a sidecar was written 0644 whatever the umask.
Each check sets the umask in this process after the imports (a test's import of the trainer
happened long before, as a notebook's), writes, and puts the umask back before it returns.
"""
from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image

from trainer import checkpoint
from trainer.data import cache


def _modes(tmp_path, mask: int) -> dict:
    """Write a checkpoint (real model state, through ``save_checkpoint``) and a disk cache
    entry of a real image in ``tmp_path`` under the umask ``mask``: the modes of what was written."""
    out = str(tmp_path)
    model = torch.nn.Linear(3, 2)
    state = {"format_version": 2, "model": model.state_dict(),
             "optimizer": torch.optim.SGD(model.parameters(), lr=0.1).state_dict(),
             "epoch": 1, "iteration": 7, "epoch_iteration": 0, "config": {}, "run": "r1"}
    image = os.path.join(out, "img.png")
    Image.fromarray(np.full((40, 30, 3), 90, np.uint8)).save(image)
    before = os.umask(mask)   # after the imports, as a notebook does
    try:
        ckpt = checkpoint.save_checkpoint(state, os.path.join(out, "last.pt"))
        cached = cache.DiskCache([image], 32, os.path.join(out, "cache"), budget=1 << 30,
                                 threads=1)
    finally:
        os.umask(before)   # (every later test in this process writes with its own)
    modes = {"checkpoint": os.stat(ckpt).st_mode & 0o777,
             "sidecar": os.stat(checkpoint.sidecar_path(ckpt)).st_mode & 0o777,
             "cache entry": os.stat(cached.entries[0]).st_mode & 0o777}
    return {k: oct(v) for k, v in modes.items()}


def test_a_umask_tightened_after_import_keeps_checkpoints_sidecars_and_cache_private(tmp_path):
    assert _modes(tmp_path, 0o077) == {"checkpoint": "0o600", "sidecar": "0o600",
                                       "cache entry": "0o600"}


def test_a_group_umask_set_after_import_is_followed_too(tmp_path):
    """``0o002`` (a group that shares the run folder): group-writable, as a plain open()."""
    assert _modes(tmp_path, 0o002) == {"checkpoint": "0o664", "sidecar": "0o664",
                                       "cache entry": "0o664"}
