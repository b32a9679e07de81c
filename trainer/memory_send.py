"""A state sent to ``drive.logs`` straight from memory, where no disk of this machine takes it.

On Colab the run folder, ``/tmp`` and drivestage's state folder are on one disk. Full (or
read-only, or failing), it refused the save, then its copy in ``/tmp`` (:func:`trainer.
stop_save.rescue`, a stop's :class:`~trainer.stop_save.Elsewhere`), and the trained state
of the last epoch or of a stop was lost with the VM, though Drive was reachable (memsave33).
Now the state is serialised into an anonymous file in memory (``memfd_create``: RAM, on no
disk, gone once closed), as the regular save writes it, with its sidecar beside it, and both
are sent under the regular save's names by :meth:`trainer.drive.DriveFolder.send_alone`:
each verified by md5, never beside another run's file of that name (:class:`~trainer.drive.
OtherRunFile`), the older pair of this run replaced as a push would. It is then a normal
Drive checkpoint: ``--resume auto`` on the next machine goes on from it.

Memory: one serialised checkpoint (the state itself is in memory already; the upload reads
the file in blocks), measured at its size plus about 8 MB: 80 MB for a width-1 model's state
with its EMA and SGD momentum (71 MB), 56 MB without the EMA (47 MB). A stream
with no copy at all would need an upload of unknown length whose restart (a session Drive
dropped) serialises the state again; drivestage's uploads are of files.
"""
from __future__ import annotations

import errno
import os
from typing import Any, Optional

import torch

from drivestage.interrupts import BackgroundThread
from drivestage.localfs import file_md5
from drivestage.sidecar import Sidecar, name_for
from trainer import checkpoint as ckpt
from trainer.errors import CheckpointError
from trainer.stopping import Deadline, wait_for

#: The errors of a disk that takes nothing: full (ENOSPC), over its quota (EDQUOT),
#: read-only (EROFS, as a failing disk is remounted), failing (EIO).
NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})


def no_room(exc: Optional[BaseException]) -> bool:
    """Whether ``exc`` says this machine's disk takes nothing (:data:`NO_ROOM`), and memory
    can be written instead (``memfd_create``: Linux, where Colab runs)."""
    return getattr(exc, "errno", None) in NO_ROOM and hasattr(os, "memfd_create")


def send(drive: Any, state: dict, name: str, metrics: dict, saved: float) -> None:
    """``state`` serialised in memory as ``name`` (a checkpoint as :func:`trainer.checkpoint.
    save_checkpoint` writes it, ``saved`` its sidecar's save time) and sent with its sidecar
    to ``drive`` alone, each verified; raises what failed (Drive refusing it, another run's
    file of the name, memory). No push sends those names meanwhile (``drive.held``)."""
    missing = [k for k in ckpt.REQUIRED_KEYS if k not in state]
    if missing:   # (as a save refuses it)
        raise CheckpointError(f"refusing to send an incomplete checkpoint: missing {missing}")
    side_name = os.path.basename(name_for(name))
    names = {name, side_name} - drive.held
    drive.held |= names
    fds: list[int] = []
    try:
        pt = _memory_file(name, fds)
        with os.fdopen(os.dup(fds[-1]), "wb") as fh:
            torch.save(state, fh)
        epoch, iteration, epoch_iteration = ckpt.position_of(state)
        # (The sidecar save_checkpoint writes, its metrics made plain as there.)
        side = Sidecar(epoch=epoch, iteration=iteration, epoch_iteration=epoch_iteration,
                       metrics=ckpt._plain_metrics(metrics), run=state.get("run"),
                       md5=file_md5(fds[-1]), size=os.fstat(fds[-1]).st_size, saved=saved)
        side_path = _memory_file(side_name, fds)
        os.write(fds[-1], side.to_bytes())
        drive.send_alone([pt, side_path], [name, side_name])
    finally:
        for fd in fds:
            os.close(fd)
        drive.held -= names


def send_within(drive: Any, state: dict, name: str, metrics: dict, saved: float,
                until: Deadline) -> "bool | Exception":
    """:func:`send` on a thread of its own, waited for until ``until``: True once verified,
    False when ``until`` passed first (the send goes on while the process lasts: a
    notebook's), the error where it failed."""
    failed: list[Exception] = []

    def run() -> None:
        try:
            send(drive, state, name, metrics, saved)
        except Exception as exc:   # (said by the caller)
            failed.append(exc)

    if not wait_for(BackgroundThread(run, "trainer-memory-send").start().ended, until):
        return False
    return failed[0] if failed else True


def _memory_file(name: str, fds: list[int]) -> str:
    """A new anonymous file in memory (its descriptor added to ``fds``, which the caller
    closes); the path it is read by (``/proc/self/fd/N``: an upload opens a path)."""
    fds.append(os.memfd_create(f"trainer-{name}", os.MFD_CLOEXEC))
    return f"/proc/self/fd/{fds[-1]}"
