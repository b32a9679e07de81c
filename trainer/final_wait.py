"""The end of a run whose final flush waits on a folder that does not answer (hungend30).

Without a stop, a run's last write and push are waited for without a bound: their end is what
makes closing the runtime safe. On a Google Drive mount that hangs (DriveFS stopped answering,
not ended: every call into it waits; tests/_drivemount.py's ``hang()``), in ``drive.logs`` or
``train.out_dir``, that wait lasted as long as the hang, and an unattended Colab cell spent its
compute units for good. While the close waits, each folder it may wait on is listed on a thread
of its own (:func:`trainer.stop_save.listing`; one at a time: a listing that waits is not
started again). One whose listing has not answered for ``patience`` seconds ends the wait
(:meth:`FinalWait.deadline`), and :meth:`FinalWait.text` says what is complete on this machine
and what to run. A mount that merely stopped (ENOTCONN) fails the push at once: not this.
"""
from __future__ import annotations

import os
import time
from typing import Any, Optional

from drivestage import paths
from drivestage.interrupts import Flag
from drivestage.lost_mounts import in_drive_mount
from trainer import stop_save

#: Seconds a folder the run's final flush waits on may leave a listing unanswered before the
#: run ends without it (a DriveFS under load answers again within a minute or two).
HUNG_END_S = 300.0

#: Seconds between two listings of a folder that answers.
LOOK_S = 1.0


class FinalWait:
    """The folders a run's final flush waits on: ``out_dir`` and ``drive.logs`` (``spec``)
    where it is a local path (a mount's), each looked at while the close waits."""

    def __init__(self, out_dir: str, spec: Optional[str], patience: float = HUNG_END_S) -> None:
        self.out_dir, self.spec, self.patience = out_dir, spec, patience
        local = spec if spec and not paths.is_drive(spec) else None
        self.folders = [f for f in (out_dir, local) if f]
        # (Which mount each is in, known now: a path under a hung mount cannot be resolved.)
        self._mounts = {f: in_drive_mount(f) for f in self.folders}
        self._probes: dict[str, tuple[float, Flag]] = {}
        #: ``(folder, seconds)``: the folder whose listing did not answer, once given up on.
        self.hung: Optional[tuple[str, float]] = None

    def dest(self, spec: Optional[str]) -> Optional[str]:
        """Where a push sends the run: ``spec`` (``drive.logs``), or the ``drive:`` path it
        stands for where it is a folder in a Google Drive mount (a push into the mount waited
        on it, hung); known only for the folders looked at here."""
        mounted = self._mounts.get(spec or "")
        return mounted[1] if mounted else spec

    def deadline(self, stop: Optional[float] = None) -> Optional[float]:
        """When to stop waiting (``time.monotonic()``): a stop's deadline (``stop``), else
        :attr:`patience` seconds after the oldest listing still unanswered began; None while
        every folder answers."""
        if stop is not None:
            return stop
        now, oldest, patience = time.monotonic(), None, self.patience
        for folder in self.folders:
            began, ended = self._probes.get(folder, (0.0, None))
            if ended is None or (ended.is_set() and now - began >= LOOK_S):
                self._probes[folder] = (now, stop_save.listing(folder))
            elif not ended.is_set() and (oldest is None or began < oldest[0]):
                oldest = (began, folder)
        if oldest is None:
            return None
        if now - oldest[0] >= patience:
            self.hung = (oldest[1], patience)
        return oldest[0] + patience

    def text(self, job: Any) -> str:
        """The run's last line once :attr:`hung` (``job``: the last epoch's save, or None)."""
        assert self.hung is not None
        folder, waited = self.hung
        mount = self._mounts.get(folder)
        why = f"{folder} did not answer for {waited:g} s" + (
            f" ({mount[0]} is a Google Drive mount: stopped answering?)" if mount else
            " (a hung network or FUSE mount?)")
        dest = self.dest(self.spec)
        # (Copied first: a write that ends now frees it, and the file is then written.)
        state = dict(job.state) if job is not None and not job.written else {}
        if state and job.error is None and not job.dropped:
            return self._unwritten(job, state, why, dest)
        head = f"the final push of {self.out_dir} to {self.spec} has not ended: {why}"
        newest = job.names[1] if job is not None and len(job.names) > 1 else None
        named = f", the newest {newest} ({job.position.label})" if newest else ""
        if not self.spec:
            # No drive.logs: no push to name ("to None", "drivestage push <out_dir> None"); the
            # wait was on the writer's last work in the run folder (train.keep_local's removal).
            return (f"the last writes into {self.out_dir} have not ended: {why}; the "
                    f"checkpoints were written into {self.out_dir}{named}, and Drive may lack "
                    "any of them until the mount answers and sends them: keep this machine "
                    "until then (with drive.logs=drive:... set, the next run sends its "
                    "checkpoints to Drive itself)")
        if folder == self.out_dir or self._mounts.get(self.out_dir):
            # (Written into a mount: on this machine's disk only as the mount's cache.)
            return (f"{head}; the checkpoints were written into {self.out_dir}{named}, and Drive "
                    f"may lack any of them: once it answers, upload the run with drivestage "
                    f"push {self.out_dir} {dest}")
        return (f"{head}; the checkpoints in {self.out_dir} are complete on this machine{named}, "
                f"and Drive may lack any of them: upload the run with drivestage push "
                f"{self.out_dir} {dest} before this machine goes (it sends what Drive lacks)")

    def push_text(self) -> Optional[str]:
        """What to run when a stop cut the final push short and ``drive.logs`` is in a Google
        Drive mount: the push to the ``drive:`` path its folder stands for. The same command
        again (the stop's usual advice) pushed into that mount again, hung or not; None when
        ``drive.logs`` is not in one."""
        mounted = self._mounts.get(self.spec or "")
        if not mounted:
            return None
        return (f"{self.spec} is in the Google Drive mount {mounted[0]} (it may not answer: the "
                f"same command would push into it again): upload them with drivestage push "
                f"{self.out_dir} {mounted[1]} before this machine goes (it sends what Drive "
                f"lacks; it trains nothing more)")

    def _unwritten(self, job: Any, state: dict, why: str, dest: Optional[str]) -> str:
        """The last epoch's write waits on the folder: its ``state`` (still in memory) written
        on this machine's own disk (:func:`trainer.stop_save.rescue`) and named."""
        head = (f"the checkpoint of epoch {job.position.epoch} ({', '.join(job.names)}) is not "
                f"written: {why}")
        name = job.names[1] if len(job.names) > 1 else job.names[0]
        try:
            path = stop_save.rescue(state, name, dict(job.metrics), job.taken)
        except Exception as exc:   # (this disk full too)
            return f"{head}; nor could its state be saved on this machine ({exc})"
        if dest:
            return (f"{head}; its state is saved in {path} on this machine: upload it with "
                    f"drivestage push {os.path.dirname(path)} {dest} before this machine goes "
                    f"(--resume auto then goes on from it), or here --resume {path}")
        return (f"{head}; its state is saved in {path} on this machine: --resume {path} goes "
                f"on from it (copy it to Drive while this machine lasts)")

