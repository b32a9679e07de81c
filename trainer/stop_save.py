"""A stop's save when the run folder's disk does not answer: written elsewhere, sent alone.

A SIGTERM's autosave is written into ``train.out_dir`` and pushed with the folder. On a disk
that stopped answering (a network or FUSE mount that hangs) that write never ends, and the
push walks that folder too: the stop used to wait there past ``train.grace_seconds``, until
its SIGKILL, and Drive got nothing. When the write has not ended halfway through the grace
(:func:`trainer.writer.BackgroundWriter.write_now`) and the folder cannot even be listed
(:func:`answers`: a slow disk can, and its write is waited for as before), or the disk is
full, the same state is written into a temporary folder of this machine's own and its two
files go to ``drive.logs`` alone, each verified, outside a push
(:meth:`trainer.drive.DriveFolder.send_alone`), within what is left of the grace (train28).
Once both are verified there within the grace, the temporary folder is removed (:meth:`Elsewhere.
remove`): kept, it added a checkpoint to the machine's /tmp at every such stop, for good
(stop29). One the stop names as the only copy (Drive did not take it in time) stays.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from typing import Any, Optional

from drivestage.interrupts import BackgroundThread
from drivestage.lost_mounts import lost_mount, lost_mount_message
from trainer import checkpoint as ckpt

logger = logging.getLogger(__name__)


def answers(folder: str, within: float = 0.5) -> bool:
    """Whether ``folder`` can be listed within ``within`` seconds: a disk merely slow to write
    a checkpoint answers; a hung network or FUSE mount does not (its listing waits for good,
    on a thread of its own)."""
    return BackgroundThread(lambda: os.listdir(folder), "trainer-disk-probe").start().join(within)


class Elsewhere:
    """``state`` written as ``name`` (and its sidecar) into a new temporary folder and both sent
    to ``drive``, on a thread of its own (:attr:`ended`); :attr:`path`, the local copy, once
    both are verified there, else :attr:`error` (why not)."""

    def __init__(self, state: dict, name: str, metrics: dict, saved: float, drive: Any) -> None:
        self.path: Optional[str] = None
        self.folder: Optional[str] = None    # the temporary folder, once made
        self.written: Optional[str] = None   # complete here (sidecar too), sent or not
        self.error: Optional[BaseException] = None
        self._args = state, name, metrics, saved, drive
        self.ended = BackgroundThread(self._run, "trainer-stop-elsewhere").start().ended

    def _run(self) -> None:
        state, name, metrics, saved, drive = self._args
        folder = None
        try:
            folder = self.folder = tempfile.mkdtemp(prefix="trainer-stop-")
            path = os.path.join(folder, name)
            ckpt.save_checkpoint(state, path, metrics=metrics, saved=saved)
            self.written = path   # (the stop names it when Drive does not take it)
            drive.send_alone([path, ckpt.sidecar_path(path)])
            self.path = path
        except Exception as exc:   # (Drive refusing it; this disk full too): said by the stop
            self.error = exc
            if folder is not None and self.written is None:
                # Nothing whole in it (this disk full too): an empty folder left for good.
                shutil.rmtree(folder, ignore_errors=True)

    def remove(self) -> None:
        """Remove the temporary folder, its files verified on Drive (:attr:`path` set): Drive
        holds the stop's save, which ``--resume auto`` takes anywhere."""
        if self.path is not None and self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def race(job: Any, other: Elsewhere, deadline: float) -> bool:
    """Wait until ``other`` ended, or ``job``'s own write (``job.ended``) wrote it in the run
    folder after all (a slow disk, not a hung one: its push sends it), or ``deadline``
    (``time.monotonic()``); whether ``job`` was written there."""
    while not other.ended.wait(0.05):   # (two flags: whichever is set first)
        if job.written or time.monotonic() >= deadline:
            break
    return bool(job.written)


def rescue(state: dict, name: str, metrics: dict) -> str:
    """``state`` written as ``name`` (and its sidecar) into a new temporary folder of this
    machine's own disk, for a run whose folder's mount stopped (nothing can be written there
    until it is mounted again); its path."""
    folder = tempfile.mkdtemp(prefix="trainer-rescued-")
    return ckpt.save_checkpoint(state, os.path.join(folder, name), metrics=metrics,
                                saved=time.time())


def rescue_text(state: dict, name: str, metrics: dict, *, head: str, out_dir: str, drive: Any,
                spec: Optional[str], deadline: Optional[float] = None) -> str:
    """``state`` rescued (:func:`rescue`) from a run folder whose mount stopped, sent alone to
    ``drive`` (``drive.logs``) when there is one, until ``deadline`` (``time.monotonic()``;
    a stop's grace) at most, and the line that says where it is: ``<head>: its state is saved
    in <path> on this machine [and verified on <spec>]. <the mount's line>``."""
    point = lost_mount(out_dir) or out_dir
    try:
        path = rescue(state, name, metrics)
    except OSError as exc:   # (this machine's disk full too): nothing kept, said
        return (f"{head}: its state could not be saved on this machine either ({exc}). "
                + lost_mount_message(point, then="run the same command again to go on from "
                                     "the newest checkpoint there"))
    where = f"saved in {path} on this machine"
    if drive is not None:   # (sent alone, as a stop's save written elsewhere is)
        failed: list[BaseException] = []

        def send() -> None:
            try:
                drive.send_alone([path, ckpt.sidecar_path(path)])
            except Exception as exc:
                failed.append(exc)

        within = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not BackgroundThread(send, "trainer-rescue-send").start().join(within):
            where += f", not yet verified on {spec} when the stop's grace ended"
        elif failed:
            where += f", not sent to {spec} ({failed[0]})"
        else:
            where += f" and verified on {spec}"
    return f"{head}: its state is {where}. " + lost_mount_message(
        point, then=f"go on from it with --resume {path}",
        instead="go on from it with train.out_dir on local disk and drive.logs=drive:... "
                "set (no mount needed)")
