"""The line a stop's save ends the run with: where its checkpoint is, and what to run.

Split from :mod:`trainer.saving` at its 500-line cap: ``saver`` is its
:class:`~trainer.saving.Checkpointer` (its writer, stop flag, run folder and ``drive.logs``).
"""
from __future__ import annotations

import os
import time
from typing import Any, Optional

from drivestage.interrupts import Flag
from drivestage.interrupts import BackgroundThread
from trainer import checkpoint as ckpt
from trainer import kept_state, stop_save, stopping
from trainer.callbacks import WRITE_WITHIN_S
from trainer.errors import LoadFailedError
from trainer.pushed import NAMED_UNSENT, unsent_text
from trainer.state import Position
from trainer.stopping import LEASE_LOST
from trainer.write_order import WriteStuck
from trainer.writer import SaveJob


def saved_elsewhere(saver: Any, job: SaveJob, state: dict, pos: Position,
                    listed: Flag) -> Optional[str]:
    """The stop's save written elsewhere on this machine and sent to Drive alone within the
    grace (:mod:`trainer.stop_save`); None when the run folder's copy is the one to push.
    ``listed``: the stop's listing of the run folder (it words the line, as it worded the
    writer's warning before it)."""
    assert saver.writer is not None
    other = stop_save.Elsewhere(state, job.name, job.metrics, job.taken, saver.writer.drive)
    began = time.monotonic()
    stop_save.race(job, other, saver.drive_until, listed)
    slow = listed.wait(max(0.0, began + 0.5 - time.monotonic()))
    if other.path is None and job.written:
        other.discard()   # (the run folder's copy is pushed, or named)
        return None
    took = time.monotonic() - (saver.stop.at or time.monotonic())
    if job.error is None and not job.written:
        why = (f"the disk answers, but too slowly for {saver.stop.grace_text}" if slow else
               "the disk does not answer (a hung network or FUSE mount?)")
        job.error = WriteStuck(f"its write in {saver.out_dir} has not ended after {took:.1f} "
                               f"s: {why}")
    head = f"stopped by {saver.stop.name} at {pos.label}: {job.name} could not be written " \
           f"({job.error})"
    if other.path is None and other.no_room is not None:   # (kept nowhere: memsave33)
        why = other.error or f"not verified within {within(saver)}"
        return (f"{head}, nor on this machine ({other.no_room}), nor sent to "
                f"{saver.writer.drive.spec} from memory ({why}): its state is lost; --resume "
                f"auto continues from the newest checkpoint there "
                f"({saver.writer.safe_text('none verified')})")
    if other.path is None:
        why = other.error or f"not within {within(saver)}"
        # The only copy of the state stopped: named (--resume auto never looks there).
        here = (f"; it is complete in {other.written} on this machine only: --resume "
                f"{other.written} goes on from it; elsewhere" if other.written else ";")
        return (f"{head}, nor sent to {saver.drive_spec} from another folder ({why}){here} "
                f"--resume auto continues from the newest checkpoint there "
                f"({saver.writer.safe_text('none verified')})")
    if job.written:   # (there too, once the other had begun to go: a slow disk)
        head = f"stopped by {saver.stop.name} at {pos.label}: {job.name} is saved in " \
               f"{saver.out_dir} late"
    if other.no_room is not None:   # (this machine's disk took no copy: memsave33)
        return (f"{head}; it is sent to {other.path} from memory instead (nor could this "
                f"machine take it: {other.no_room}) and verified there ({took:.1f} s after "
                f"{saver.stop.since}); resume with --resume auto")
    return (f"{head}; it is sent to {saver.drive_spec} from a temporary folder instead and "
            f"verified there ({took:.1f} s after {saver.stop.since}; the temporary copy is "
            f"removed); resume with --resume auto")

def _past(deadline: Optional[float]) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def within(saver: Any) -> str:
    """How long the stop waited, as its line says it: ``train.grace_seconds (25 s)`` after a
    signal; a stop without one waited longer (:meth:`trainer.stopping.StopFlag.until`)."""
    if saver.stop.is_set() and not saver.stop.unsignalled:
        return saver.stop.grace_text
    hung = saver.final_wait.hung
    if hung is not None:
        return f"{hung[1]:g} s of {hung[0]} not answering (a hung network or FUSE mount?)"
    return f"{stopping.UNSIGNALLED_WAIT_S:g} s (the longest a stop without a signal waits)"


def send_to(saver: Any) -> Optional[kept_state.SendTo]:
    """Where a state kept on this machine goes too (``drive.logs``), and until when: a stop's
    grace (:meth:`~trainer.saving.Checkpointer.drive_until`), else the final flush's bound."""
    drive = saver.writer.drive if saver.writer is not None else None
    return None if drive is None else kept_state.SendTo(drive, saver.flush_until,
                                                       lambda: within(saver))


def stop_message(saver: Any, job: SaveJob, pos: Position, state: Optional[dict] = None) -> str:
    """The stop's line for its save ``job``; ``state``: the state it wrote (kept in /tmp
    where the run folder did not take it: a failed write freed the job's)."""
    head = f"stopped by {saver.stop.name} at {pos.label}"
    if not job.written:   # (a write that waits on a hung disk, or failed: kept in /tmp)
        why = job.error or f"its write in {saver.out_dir} has not ended within {within(saver)}"
        return kept_state.unwritten_text(job, head, str(why), state, send_to(saver))
    if saver.drive_spec is None:
        return f"{head}: {job.name} is saved in {saver.out_dir}; resume with --resume auto"
    if saver.stop.signum == LEASE_LOST:   # (no push advised: trainer.lease)
        return stopped_text(head, job.name, saver.out_dir, saver.stop.detail)
    # Every file of the run not on Drive, not only this one: epoch files queued behind a
    # slow or failing upload are lost with the machine too (the command below sends all).
    unsent = saver.writer.not_on_drive()
    # (drive.logs in a Drive mount: to the drive: path it stands for, not into the mount.)
    push = f"drivestage push {saver.out_dir} {saver.final_wait.dest(saver.drive_spec)}"
    if saver.writer.other_run:
        # That push leaves them again, and with --force deletes the other run's verified
        # checkpoints: a folder of the run's own instead (stop29; attacktr29's final line).
        theirs = ", ".join(saver.writer.other_run[:NAMED_UNSENT])
        push = (f"drivestage push {saver.out_dir} drive:<a new Drive folder> "
                f"({saver.drive_spec} holds another run's {theirs}) and resume there with "
                f"--set drive.logs=<that folder>")
    if saver.writer.verified(job.name):
        took = time.monotonic() - (saver.stop.at or time.monotonic())
        others = [n for n in unsent if n != job.name]
        rest = (f"; {unsent_text(others, saver.drive_spec)}: upload "
                f"{'them' if len(others) > 1 else 'it'} with {push}") if others else ""
        # The push then failed (Drive refusing a deletion of retention): said, as it may
        # leave older checkpoints there; what it verified counts all the same.
        err = saver.writer.last_error
        then = f"; the rest of that push failed ({str(err).rstrip('.')})" if err else ""
        return (f"{head}: {job.name} is saved and verified on {saver.drive_spec} "
                f"({took:.1f} s after {saver.stop.since}){then}{rest}; resume with --resume auto")
    err = saver.writer.last_error
    why = f" ({err})" if err is not None else ""
    grace = f" within {within(saver)}"
    if err is not None and saver.stop.unsignalled and not _past(saver.drive_until()):
        # (Its push failed, long before the bound: "within 900 s (the longest a stop
        # without a signal waits)" read as a slow link, for Drive's refusal; attacktr32.)
        grace = ""
    others = [n for n in unsent if n != job.name]
    if not others:
        return (f"{head}: {job.name} is saved in {saver.out_dir} but did not reach "
                f"{saver.drive_spec}{grace}{why}; --resume auto on this machine "
                f"continues from it, elsewhere upload it first: {push}")
    return (f"{head}: {job.name} is saved in {saver.out_dir} but did not reach "
            f"{saver.drive_spec}{grace}{why}; "
            f"{unsent_text([job.name, *others], saver.drive_spec)}; --resume auto on this "
            f"machine continues from {job.name}, elsewhere upload them first: {push}")


def newest_text(saver: Any, run: Any, where: str, remedy: str = "",
                within: float = WRITE_WITHIN_S) -> str:
    """``the newest checkpoint <where> is epoch_001.pt (epoch 1, iteration 2): <remedy>run
    the same command again to train on from it`` (``in <out_dir>`` for ``where="in"``) of
    ``saver``'s run folder (split from :mod:`trainer.saving`)."""
    place = f"in {saver.out_dir}" if where == "in" else where
    found: list = []

    def look() -> None:
        try:
            try:
                path = ckpt.find_latest(saver.out_dir, run=run.state.run, any_run=False)
            except LoadFailedError as exc:   # (verified, not loaded here: the newest still)
                path = exc.path
            found.append((path, ckpt.read_sidecar(path) if path is not None else None))
        except BaseException as exc:   # (raised in this thread below)
            found.append(exc)

    # Bounded: on a disk that does not answer, a second Ctrl-C waited here for good.
    if not BackgroundThread(look, "trainer-newest").start().join(within):
        return (f"what is saved {place} is not known: it did not answer within {within:.0f} "
                f"s (a hung network or FUSE mount?); once it does, {remedy}run the same "
                f"command again to train on from its newest checkpoint")
    if isinstance(found[0], BaseException):
        raise found[0]
    path, side = found[0]
    if path is None or side is None:
        # With a remedy (a full disk at the first save): say it, not only what is lost.
        then = f": {remedy}run the same command again (it trains from the start)" \
            if remedy else ""
        return f"nothing of run {run.state.run} is saved {place}{then}"
    at = Position(side.epoch or 0, side.iteration or 0, side.epoch_iteration).label
    return (f"the newest checkpoint {place} is {os.path.basename(path)} ({at}): {remedy}run "
            f"the same command again to train on from it")


def stopped_text(head: str, name: str, out_dir: str, taken: Optional[str]) -> str:
    """A stop's line after the lease was taken over (``taken``: who took it, when it renewed):
    no push advised, that would replace the new holder's checkpoints."""
    taken = taken or "another trainer took the run's lease over"
    return (f"{head}: {name} is saved in {out_dir} only: {taken}, and this trainer pushes nothing more there (it would replace "
            "that one's checkpoints); that one goes on from Drive. To go on with this one "
            "instead, stop that one, then start this one again with --take-over (--resume "
            f"auto continues from {name})")
