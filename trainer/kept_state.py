"""A state kept on this machine because the run folder did not take it, and its line.

Split from :mod:`trainer.stop_save` at its 500-line cap. The state of a save the run folder
has not taken (a stop's save that failed there or waits on a hung disk, the last epoch's on a
full disk, a run folder whose mount stopped) is written into ``/tmp/trainer-rescued-…``
(:func:`trainer.stop_save.rescue`) and, with ``drive.logs``, sent there alone, each file
verified (:func:`send_kept`), within a stop's grace or the final flush's bound; the line
says where it is and what to run.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import Any, Callable, Optional

from drivestage.interrupts import BackgroundThread
from drivestage.lost_mounts import lost_mount, lost_mount_message
from trainer import checkpoint as ckpt
from trainer import memory_send
from trainer.stop_save import rescue
from trainer.stopping import Deadline, wait_for


@dataclass(frozen=True)
class SendTo:
    """Where a state kept on this machine (:func:`kept_text`) goes too: ``drive`` (the run's
    :class:`~trainer.drive.DriveFolder`), waited for until ``until`` (a stop's grace, or the
    final flush's bound: :meth:`trainer.saving.Checkpointer.flush_until`), which ``within()``
    words once passed."""

    drive: Any
    until: Deadline
    within: Callable[[], str]


def send_kept(drive: Any, path: str, until: Deadline,
              name: Optional[str] = None) -> "bool | Exception":
    """``path`` and its sidecar sent to ``drive`` alone (as ``name`` and its sidecar's name,
    else their own), each verified (:meth:`trainer.drive.DriveFolder.send_alone`), on a
    thread of its own waited for until ``until``: True once verified, False when ``until``
    passed first, the error where Drive refused them (or another run's file holds the name
    there: :class:`~trainer.drive.OtherRunFile`). No push sends those names meanwhile
    (``drive.held``: two files of one name there, stop30)."""
    side = ckpt.sidecar_path(path)
    as_names = [name or os.path.basename(path),
                os.path.basename(ckpt.sidecar_path(name or os.path.basename(path)))]
    names = set(as_names) - drive.held
    drive.held |= names
    failed: list[Exception] = []

    def send() -> None:
        try:
            drive.send_alone([path, side], as_names)
        except Exception as exc:   # (Drive refusing them: said by the caller)
            failed.append(exc)
        finally:
            drive.held -= names

    if not wait_for(BackgroundThread(send, "trainer-kept-send").start().ended, until):
        return False
    return failed[0] if failed else True


def unwritten_text(job: Any, head: str, why: str, state: Optional[dict] = None,
                   to: Optional[SendTo] = None) -> str:
    """The end of a stop's line whose save the run folder did not take (``why``). A write that
    still waits there (a hung mount: its state still in memory, and no ``drive.logs`` to send
    it from elsewhere) has its state written on this machine's own disk and named: it was
    dropped, though that disk answered (attackt31). So has one that failed (the run folder's
    disk full), given its ``state`` (the failed write freed the job's: attackstop32); and
    sent ``to`` Drive where given (lastkeep32)."""
    text = f"{head}: {job.name} could not be written ({why})"
    kept = kept_text(job, text, state, to=to)
    if isinstance(kept, str):
        return kept
    nor = nor_text(kept) if kept is not None else ""
    return f"{text}{nor}; the newest earlier checkpoint is where --resume auto continues"


def epoch_kept(job: Any, stop: str, to: Optional[SendTo] = None) -> tuple[str, Optional[str]]:
    """A stop (named ``stop``) while the last epoch's save (``job``) was still to be written
    (a slow upload before it, a hung disk): the line's head, and the whole line when its
    state is kept on this machine (:func:`kept_text`; it was dropped: attackt31)."""
    head = (f"stopped by {stop} while the checkpoint of epoch {job.position.epoch} "
            f"({', '.join(job.names)}) was still to be written")
    kept = kept_text(job, head, to=to)
    if isinstance(kept, NotKept):   # (sent from memory, not taken: said, as lost)
        return head + nor_text(kept), None
    return head, kept if isinstance(kept, str) else None


def kept_text(job: Any, head: str, state: Optional[dict] = None, first: str = "",
              to: Optional[SendTo] = None) -> "str | Exception | None":
    """``<head>; its state is saved in <path> on this machine: [<first>]--resume <path> goes
    on from it …`` for a save (``job``) the run folder has not taken whose state is still in
    memory (its write waits there, or waited behind another: WriteStuck; a write that failed
    freed it: ``state``, the caller's; or kept it: ``job.keep_failed``), written on this
    machine's own disk (:func:`rescue`); None without a state, the error when this disk
    refused it too. With ``drive.logs`` (``to``) it is sent there too: that copy alone was
    lost with the machine (Colab's /tmp at the next disconnect: lastkeep32); once verified
    there the one here is removed, as a stop's copy elsewhere is (on Colab /tmp is the full
    run folder's disk). Where this disk refused it too, it is sent from memory instead
    (:func:`from_memory`; memsave33)."""
    state = dict(state or job.state) if not job.written else {}
    if not state:
        return None
    name = job.names[1] if len(job.names) > 1 else job.names[0]   # (epoch_NNN.pt, not last.pt)
    try:
        path = rescue(state, name, dict(job.metrics), saved=job.taken)
    except Exception as exc:   # (this disk full too)
        return from_memory(job, state, name, head, first, to, exc)
    sent = send_kept(to.drive, path, to.until) if to is not None else None
    if to is not None and sent is True and to.drive.mount is None:
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)
        return (f"{head}; its state is sent to {to.drive.where(name)} from a temporary folder "
                f"of this machine instead and verified there (the temporary copy is removed): "
                f"{first}--resume auto goes on from it")
    # (A Drive mount's copy is in the machine's cache until the mount sends it: mount30.)
    how = "" if to is None else (
        f" and copied into {to.drive.spec} (a Google Drive mount: it reaches Drive once the "
        f"mount sends it)" if sent is True else f", not sent to {to.drive.spec} ({sent})"
        if sent else f", not yet verified on {to.drive.spec} within {to.within()}")
    return (f"{head}; its state is saved in {path} on this machine{how}: {first}--resume "
            f"{path} goes on from it (copy it off this machine while it lasts)")


class NotKept(Exception):
    """A state neither this machine's disk (``disk``: its error) nor Drive, sent from memory,
    took (``drive``: its error, or that it was not verified within the bound)."""

    def __init__(self, disk: BaseException, spec: str, drive: str) -> None:
        super().__init__(f"{disk}; nor sent to {spec} from memory: {drive}")
        self.disk, self.spec, self.drive = disk, spec, drive


def nor_text(kept: Exception) -> str:
    """What a line says after the run folder's error of a state kept nowhere: ``, nor on this
    machine (<why>)``, and for one Drive did not take from memory either (:class:`NotKept`)
    ``, nor sent to <spec> from memory (<why>): its state is lost``."""
    if isinstance(kept, NotKept):
        return (f", nor on this machine ({kept.disk}), nor sent to {kept.spec} from memory "
                f"({kept.drive}): its state is lost")
    return f", nor on this machine ({kept})"


def from_memory(job: Any, state: dict, name: str, head: str, first: str,
                to: Optional[SendTo], exc: Exception) -> "str | Exception":
    """A state this machine's disk refused too (``exc``; on Colab /tmp is the run folder's
    disk) sent to ``drive.logs`` from memory (:mod:`trainer.memory_send`), within
    ``to.until``: the line once verified there; else :class:`NotKept` (``exc`` itself where
    nothing is sent: no ``drive.logs``, a Drive mount's folder, whose cache is on this
    disk, an error that is no disk's refusal)."""
    if to is None or to.drive.mount is not None or not memory_send.no_room(exc):
        return exc
    sent = memory_send.send_within(to.drive, state, name, dict(job.metrics), job.taken,
                                   to.until)
    if sent is True:
        return (f"{head}; its state is sent to {to.drive.where(name)} from memory instead "
                f"(nor could this machine take it: {exc}) and verified there: {first}--resume "
                f"auto goes on from it")
    return NotKept(exc, to.drive.spec, str(sent) if sent else
                   f"not verified within {to.within()}")


def rescue_text(state: dict, name: str, metrics: dict, *, head: str, out_dir: str, drive: Any,
                spec: Optional[str], saved: float, deadline: Deadline = None) -> str:
    """``state`` rescued (:func:`rescue`) from a run folder whose mount stopped, sent alone to
    ``drive`` (``drive.logs``) when there is one, until ``deadline`` (``time.monotonic()``,
    or a callable read again at each step: a stop's) at most, and the line that says where
    it is: ``<head>: its state is saved in <path> on this machine [and verified on <spec>].
    <the mount's line>``."""
    point = lost_mount(out_dir) or out_dir
    try:
        path = rescue(state, name, metrics, saved)
    except OSError as exc:   # (this machine's disk full too): sent from memory, or said lost
        return _unrescued(state, name, metrics, head, point, drive, spec, saved, deadline, exc)
    where = f"saved in {path} on this machine"
    if drive is not None:   # (sent alone, as a stop's save written elsewhere is)
        sent = send_kept(drive, path, deadline)
        where += (f" and verified on {spec}" if sent is True else
                  f", not sent to {spec} ({sent})" if sent else
                  f", not yet verified on {spec} when the stop's wait ended")
    return f"{head}: its state is {where}. " + lost_mount_message(
        point, then=f"go on from it with --resume {path}",
        instead="go on from it with train.out_dir on local disk and drive.logs=drive:... "
                "set (no mount needed)")


def _unrescued(state: dict, name: str, metrics: dict, head: str, point: str, drive: Any,
               spec: Optional[str], saved: float, deadline: Deadline, exc: OSError) -> str:
    """:func:`rescue_text`'s line where this machine's disk refused the state too (``exc``):
    sent to ``drive`` from memory (:mod:`trainer.memory_send`) where it is a Drive folder and
    the disk takes nothing, else nothing kept (memsave33)."""
    again = "run the same command again to go on from the newest checkpoint there"
    if drive is None or drive.mount is not None or not memory_send.no_room(exc):
        return (f"{head}: its state could not be saved on this machine either ({exc}). "
                + lost_mount_message(point, then=again))
    sent = memory_send.send_within(drive, state, name, metrics, saved, deadline)
    if sent is True:
        return (f"{head}: its state is sent to {drive.where(name)} from memory (nor could this "
                f"machine take it: {exc}) and verified there. " + lost_mount_message(
                    point, then="go on from it with --resume auto", instead="go on from it "
                    "with train.out_dir on local disk and drive.logs=drive:... set (no mount "
                    "needed)"))
    why = sent or "not verified when the stop's wait ended"
    return (f"{head}: its state could not be saved on this machine either ({exc}), nor sent "
            f"to {spec} from memory ({why}): it is lost. " + lost_mount_message(point,
                                                                            then=again))


def send_last(job: Any, out_dir: str, to: Optional[SendTo]) -> str:
    """For the last epoch's save (``job``) whose ``last.pt`` was written and whose copy
    ``epoch_NNN.pt`` (what goes to Drive) was not (a full disk): ``last.pt`` sent to
    ``drive.logs`` as ``epoch_NNN.pt`` (its sidecar as that one's: the copy's bytes), so a
    fresh machine's ``--resume auto`` finds the epoch; ``last.pt`` never goes to Drive, and
    on Colab the run folder is lost at a disconnect (epochkeep32). What the line says of it
    after ``in last.pt``: `` and is sent from it to <where>, verified there (…)``, or why
    not; "" where nothing is sent (no ``drive.logs``, the epoch's copy written)."""
    name = next((n for n in job.missing if n.startswith("epoch_")), None)
    if to is None or name is None:
        return ""
    sent = send_kept(to.drive, os.path.join(out_dir, job.name), to.until, name)
    if sent is True:
        if to.drive.mount is not None:   # (in the machine's cache until the mount sends it)
            return (f" and is copied from it into {to.drive.spec} as {name} (a Google Drive "
                    f"mount: it reaches Drive once the mount sends it)")
        return (f" and is sent from it to {to.drive.where(name)}, verified there (--resume "
                f"auto goes on from it on another machine)")
    return (f", not sent to {to.drive.spec} ({sent})" if sent else
            f", not yet verified on {to.drive.spec} within {to.within()}")
