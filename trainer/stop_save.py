"""A stop's save when the run folder's disk does not answer: written elsewhere, sent alone.

A SIGTERM's autosave is written into ``train.out_dir`` and pushed with the folder. On a disk
that stopped answering (a network or FUSE mount that hangs) that write never ends, and the
push walks that folder too: the stop used to wait there past ``train.grace_seconds``, until
its SIGKILL, and Drive got nothing. When the write has not ended halfway through the grace
(:func:`trainer.writer.BackgroundWriter.write_now`), the same state is written into a
temporary folder of this machine's own and its two files go to ``drive.logs`` alone, each
verified, outside a push (:meth:`trainer.drive.DriveFolder.send_alone`), within what is left
of the grace (train28).
"""
from __future__ import annotations

import logging
import os
import tempfile
import time
from typing import Any, Optional

from drivestage.interrupts import BackgroundThread
from trainer import checkpoint as ckpt

logger = logging.getLogger(__name__)


def elsewhere(state: dict, name: str, metrics: dict, saved: float, drive: Any,
              deadline: float) -> tuple[Optional[str], Optional[BaseException]]:
    """Write ``state`` as ``name`` (and its sidecar) into a new temporary folder and send both
    to ``drive`` by ``deadline`` (``time.monotonic()``); the local copy's path once both are
    verified there, else None with the error (None: the deadline came first)."""
    done: dict[str, Any] = {}

    def run() -> None:
        try:
            path = os.path.join(tempfile.mkdtemp(prefix="trainer-stop-"), name)
            ckpt.save_checkpoint(state, path, metrics=metrics, saved=saved)
            drive.send_alone([path, ckpt.sidecar_path(path)])
            done["path"] = path
        except Exception as exc:   # (Drive refusing it; this disk full too): said by the stop
            done["error"] = exc

    BackgroundThread(run, "trainer-stop-elsewhere").start().join(
        max(0.0, deadline - time.monotonic()))
    return done.get("path"), done.get("error")
