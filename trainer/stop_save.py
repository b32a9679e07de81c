"""A stop's save when the run folder's disk is slow or does not answer: written elsewhere too.

A SIGTERM's autosave is written into ``train.out_dir`` and pushed with the folder. On a disk
that stopped answering (a network or FUSE mount that hangs) that write never ends, and the
push walks that folder too: the stop used to wait there past ``train.grace_seconds``, until
its SIGKILL, and Drive got nothing (train28); on a disk merely slow (Colab's /content/drive)
the write was waited for without a bound, with the same end (stop30). When the write has not
ended halfway through the grace (:func:`trainer.writer.BackgroundWriter.write_now`), whatever
the folder answers (:func:`listing` only words the line), or the disk is full, the same state
is written into a temporary folder of this machine's own and its two files go to
``drive.logs`` alone, each verified, outside a push (:meth:`trainer.drive.DriveFolder.
send_alone`), within what is left of the grace. Both copies race (:func:`race`): the run
folder's, complete before the other began to go, is pushed and the other dropped; else the
other is sent, and no push sends those names meanwhile (two files of one name on Drive).
Once verified there the temporary folder is removed (kept, it added a checkpoint to /tmp at
every such stop: stop29). One the stop names as the only copy (Drive did not take it in time)
stays, as does a state rescued from a run folder whose mount stopped (:func:`rescue`); the
next start removes either once Drive or the run folder holds its bytes, or once Drive holds a
checkpoint of its run further on, saved after it (a run resumed from it; or the run folder,
without ``drive.logs``), and so does the end of a run resumed from one (:func:`sweep`).
"""
from __future__ import annotations

import glob
import logging
import os
import shutil
import stat
import tempfile
import threading
import time
from typing import Any, Optional

from drivestage import paths
from drivestage.interrupts import BackgroundThread, Flag
from drivestage.lost_mounts import in_drive_mount
from trainer import checkpoint as ckpt
from trainer import memory_send
from trainer.state import Position

logger = logging.getLogger(__name__)

#: The temporary folders of stops' saves written elsewhere: ``<tmp>/trainer-stop-…``.
PREFIX = "trainer-stop-"
#: Those of states rescued from a run folder whose mount stopped (:func:`rescue`).
RESCUED = "trainer-rescued-"


def listing(folder: str) -> Flag:
    """Set once ``folder`` was listed (on a thread of its own): soon on a disk merely slow to
    write a checkpoint; never on a hung network or FUSE mount (its listing waits for good)."""
    def look() -> None:
        try:
            os.listdir(folder)
        except OSError:   # (an answer too: a folder not made yet; no traceback in the log)
            pass

    return BackgroundThread(look, "trainer-disk-probe").start().ended


class Elsewhere:
    """``state`` written as ``name`` (and its sidecar) into a new temporary folder and both sent
    to ``drive``, on a thread of its own (:attr:`ended`); :attr:`path`, the local copy, once
    both are verified there (the folder is removed then), else :attr:`error` (why not). A
    disk that takes nothing (:attr:`no_room`) has them sent from memory (:attr:`path`: where
    on Drive; :mod:`trainer.memory_send`). While it runs, every push leaves both names out
    (``drive.held``): a push sending the run folder's copy too made two files of that name on
    Drive (stop30)."""

    def __init__(self, state: dict, name: str, metrics: dict, saved: float, drive: Any) -> None:
        self.path: Optional[str] = None
        self.folder: Optional[str] = None    # the temporary folder, once made
        self.written: Optional[str] = None   # complete here (sidecar too), sent or not
        self.error: Optional[BaseException] = None
        #: Why this machine's disk took no copy (full too): the state is sent from memory.
        self.no_room: Optional[OSError] = None
        self._args, self._drive = (state, name, metrics, saved, drive), drive
        self._names = {name, os.path.basename(ckpt.sidecar_path(name))}
        self._lock = threading.Lock()
        self._sending = self._dropped = False
        drive.held |= self._names
        self.ended = BackgroundThread(self._run, "trainer-stop-elsewhere").start().ended

    def _run(self) -> None:
        state, name, metrics, saved, drive = self._args
        folder = None
        try:
            if self._dropped:
                return
            try:
                folder = self.folder = tempfile.mkdtemp(prefix=PREFIX)
                path = os.path.join(folder, name)
                ckpt.save_checkpoint(state, path, metrics=metrics, saved=saved)
            except OSError as exc:
                if drive.mount is not None or not memory_send.no_room(exc):
                    raise
                # This disk takes nothing either (Colab: /tmp is the full run folder's disk):
                # sent from memory instead, or the state was lost with the VM (memsave33).
                if folder is not None:
                    shutil.rmtree(folder, ignore_errors=True)
                self.no_room, folder = exc, None
            with self._lock:
                if self._dropped:   # (the run folder's push sends it: no second copy there)
                    if folder is not None:
                        shutil.rmtree(folder, ignore_errors=True)
                    return
                self._sending = True
            if self.no_room is not None:
                memory_send.send(drive, state, name, metrics, saved)
                self.path = drive.where(name)
                return
            self.written = path   # (the stop names it when Drive does not take it)
            drive.send_alone([path, ckpt.sidecar_path(path)])
            self.path = path
            # Verified there: kept, it added a checkpoint to this machine's /tmp at every
            # such stop, for good (stop29). Removed here, not by the stop: one the stop had
            # stopped waiting for (the run folder's copy complete first) stayed (stop30).
            shutil.rmtree(folder, ignore_errors=True)
        except Exception as exc:   # (Drive refusing it; this disk full too): said by the stop
            self.error = exc
            if folder is not None and self.written is None:
                # Nothing whole in it (this disk full too): an empty folder left for good.
                shutil.rmtree(folder, ignore_errors=True)
        finally:
            if self.path is None:
                drive.held -= self._names   # (the run folder's push may send it now)

    def drop(self) -> bool:
        """Not sent after all, if its upload has not begun (the run folder's copy was complete
        first: the push sends that one); whether it was dropped."""
        with self._lock:
            if not self._sending:
                self._dropped = True
                self._drive.held -= self._names
            return self._dropped


    def discard(self) -> None:
        """Remove its copy, ended and not sent (Drive refused it): the run folder holds the
        same state whole, which the stop names (one left unnamed in /tmp for good: stop30)."""
        if self.ended.is_set() and self.path is None and self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def race(job: Any, other: Elsewhere, deadline: Any, listed: Optional[Flag] = None) -> None:
    """Wait until ``other`` verified its copy on Drive, or ``job``'s own write (``job.ended``)
    wrote it in the run folder after all before ``other`` began to send its own (``other`` is
    dropped: the run folder's push sends it; a slow disk), or ``other`` failed and ``job``
    ended (at once where the run folder was not ``listed``: a hung disk), or ``deadline``
    (``time.monotonic()``, or a callable read again at each step: a signal moves it). Not
    decided by what the run folder's disk answers: a slow disk's write, waited for without a
    bound, outlasted the grace (stop30)."""
    while time.monotonic() < (deadline() if callable(deadline) else deadline):
        if other.ended.is_set() and (other.path is not None or job.ended.is_set()
                                     or (listed is not None and not listed.is_set())):
            return
        if job.written and other.drop():
            return
        (job.ended if other.ended.is_set() else other.ended).wait(0.05)


def sweep(out_dir: str, drive: Any, run: Optional[str] = None, at: Optional[Position] = None,
          *, warn: bool = True, keep: Optional[str] = None) -> BackgroundThread:
    """Remove, on a thread of its own, the folders earlier stops (:data:`PREFIX`) and rescues
    (:data:`RESCUED`) left in this machine's temporary folder whose checkpoint is verified on
    ``drive`` or in ``out_dir`` with the same md5: one was left at every stop whose copy Drive
    did not take in time, or that ended before it was removed, for good (stop30), and at every
    rescue (stopleft31); those holding only a write cut off (:func:`_cut_off`); and one of run
    ``run`` that Drive holds a verified checkpoint of that run further on than, saved later
    (:func:`_superseded`: resumed from with ``--resume <path>``, its md5 is nowhere else).
    One whose bytes are nowhere else stays (the only copy), as does any other (another run's,
    a write under way); one of run ``run`` further on than ``at`` (where this run starts) is
    said (``warn``): ``--resume auto`` never looks there. The one holding ``keep`` (the
    checkpoint this run resumed from) stays: the start removed it when Drive held a
    checkpoint further on, the run sent back past it, and a stop or a NaN before the first
    save found that state gone everywhere (attackdel31)."""
    return BackgroundThread(lambda: _sweep(out_dir, drive, run, at, warn, keep),
                            "trainer-stop-sweep").start()


def leftovers() -> list[str]:
    """The folders of earlier stops' and rescues' copies in this machine's temporary folder:
    this user's own (a shared /tmp: the trainer runs as root, and removed another user's; a
    link planted under such a name is never followed: attackdel31)."""
    tmp = tempfile.gettempdir()
    found = glob.glob(os.path.join(tmp, f"{PREFIX}*")) + glob.glob(os.path.join(tmp,
                                                                            f"{RESCUED}*"))
    return sorted(f for f in found if _own_folder(f))


def _own_folder(path: str) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and (not hasattr(os, "geteuid") or
                                         st.st_uid == os.geteuid())


def is_leftover(path: Optional[str]) -> bool:
    """Whether ``path`` is a checkpoint in one of :func:`leftovers` (a run resumed from it)."""
    if not path or paths.is_drive(path):
        return False
    return os.path.realpath(os.path.dirname(path)) in {os.path.realpath(f) for f in leftovers()}


def _sweep(out_dir: str, drive: Any, run: Optional[str], at: Optional[Position],
           warn: bool = True, keep: Optional[str] = None) -> None:
    found: Optional[list] = None   # Drive's verified checkpoints
    kept = os.path.realpath(os.path.dirname(keep)) if keep and not paths.is_drive(keep) else None
    for folder in leftovers():
        if os.path.realpath(folder) == kept:
            continue
        left = _left(folder)
        if left is None:
            if _cut_off(folder):
                shutil.rmtree(folder, ignore_errors=True)
            continue
        name, md5 = left
        if found is None and (drive is None or drive.mount is not None):
            found = []   # (a copy in a Drive mount is not known to be on Drive: mount30)
        if found is None:
            try:
                found = drive.checkpoints()
            except Exception as exc:   # (Drive not reached: the next start looks again)
                logger.debug("earlier stops' copies not swept: %s", exc)
                found = []
        mine = ckpt.read_sidecar(os.path.join(folder, name))
        where = _elsewhere(out_dir, found or [], name, md5) or \
            _superseded(found or [], mine, run, at) or _superseded_here(out_dir, mine, run, at)
        if where is not None:
            shutil.rmtree(folder, ignore_errors=True)
            logger.info("removed %s, an earlier %s copy of %s: %s", folder, _whose(folder),
                        name, where)
            continue
        pos = Position(mine.epoch or 0, mine.iteration or 0, mine.epoch_iteration) \
            if mine is not None else None
        if warn and run is not None and pos is not None and mine is not None and \
                mine.run == run and (at is None or pos.iteration > at.iteration):
            why = ("an earlier stop's, not verified on Drive in time" if _whose(folder) ==
                   "stop's" else "rescued when the run folder's mount stopped")
            logger.warning("%s holds this run's checkpoint of %s, further on than where it "
                           "starts, on this machine only (%s): stop and run again with "
                           "--resume %s to train on from it", folder, pos.label, why,
                           os.path.join(folder, name))


def _whose(folder: str) -> str:
    return "stop's" if os.path.basename(folder).startswith(PREFIX) else "rescued"


def _elsewhere(out_dir: str, found: list, name: str, md5: str) -> Optional[str]:
    """``it is verified in <where>``: Drive's checkpoint, or the run folder's, of ``name``
    with the bytes ``md5``; None where neither holds them."""
    for c in found:
        if c.name == name and (c.entry.md5 or "").lower() == md5:
            return f"it is verified in {c.where}"
    here = os.path.join(out_dir, name)
    side = ckpt.read_sidecar(here) if in_drive_mount(out_dir) is None else None  # (mount30)
    if side is not None and (side.md5 or "").lower() == md5 and _md5(here) == md5:
        return f"it is verified in {here}"
    return None


def _superseded(found: list, mine: Any, run: Optional[str],
                at: Optional[Position] = None) -> Optional[str]:
    """``<where> of this run is further on, saved later, verified``: a checkpoint on Drive
    of run ``run`` (this run's, the one starting) past the copy ``mine`` (its sidecar) of
    that run, and saved after it. The run went on past that copy (resumed from it with
    ``--resume <path>``: its md5 appears nowhere else, the run's saves being new states), as
    retention's older checkpoints are; a copy of another run, or with no save time, stays.
    At a start (``at``: where the run starts), one further on than ``at`` is no witness: it
    was never loaded, and ``--resume auto`` passed over it (it does not load, or holds no
    state to train on), or left it behind; counted, it removed the only copy of the state
    the run could go on from, the run starting from an older one (attackstop32)."""
    if mine is None or run is None or mine.run != run or mine.saved is None:
        return None
    for c in found:
        side = c.sidecar
        if side.run == run and side.saved is not None and side.saved > mine.saved and \
                side.progress > mine.progress and _reached(side, at):
            at = Position(side.epoch or 0, side.iteration or 0, side.epoch_iteration).label
            return f"{c.where} ({at}) of this run is further on, saved later, verified there"
    return None


def _reached(side: Any, at: Optional[Position]) -> bool:
    """Whether the run starting at ``at`` (None: not a start) is at or past ``side``."""
    return at is None or side.progress <= (at.epoch, at.epoch_iteration)


def _superseded_here(out_dir: str, mine: Any, run: Optional[str],
                     at: Optional[Position] = None) -> Optional[str]:
    """As :func:`_superseded`, of the run folder's checkpoints (md5-checked against their
    sidecar; none in a Drive mount: mount30): a run without ``drive.logs`` resumed from a
    rescued state goes on there only."""
    if mine is None or run is None or mine.run != run or mine.saved is None or \
            in_drive_mount(out_dir) is not None:
        return None
    try:
        here = ckpt.list_checkpoints(out_dir)
    except OSError:
        return None
    later = [c for c in here if c.sidecar.run == run and c.sidecar.saved is not None and
             c.sidecar.saved > mine.saved and c.sidecar.progress > mine.progress and
             _reached(c.sidecar, at)]
    for c in sorted(later, key=lambda c: (c.sidecar.progress, c.described.name != "last.pt",
                                          c.described.name), reverse=True):
        if c.sidecar.md5 is not None and _md5(c.path) == c.sidecar.md5.lower():
            side = c.sidecar
            at = Position(side.epoch or 0, side.iteration or 0, side.epoch_iteration).label
            return f"{c.path} ({at}) of this run is further on, saved later, verified there"
    return None


def _cut_off(folder: str) -> bool:
    """Whether ``folder`` holds nothing but the temporary files of writes whose processes are
    gone (a stop's copy cut off: a second SIGTERM, the SIGKILL at the grace's end), or nothing
    at all for a minute: never a folder a live process writes into (:mod:`drivestage.temps`).
    A sidecar without its checkpoint counts as nothing: it is written after the checkpoint,
    so it is left alone only by a removal cut off (a SIGKILL in a sweep's own rmtree), and it
    kept the folder for good (attackstop32)."""
    try:
        names = os.listdir(folder)
        if not names:
            return time.time() - os.stat(folder).st_mtime > 60.0
        sides = {os.path.basename(ckpt.sidecar_path(n)) for n in names if n.endswith(".pt")}
        return all(_dead(folder, n) or (n.endswith(".json") and n not in sides) for n in names)
    except OSError:
        return False


def _dead(folder: str, name: str) -> bool:
    from drivestage import temps

    return temps.stale(name, os.lstat(os.path.join(folder, name)))


def _left(folder: str) -> Optional[tuple[str, str]]:
    """(name, md5) of the one checkpoint an earlier stop left whole in ``folder``: beside it
    only its sidecar, naming those bytes (or none: the process was killed before it) and a
    dead process's temporary files."""
    try:
        names = os.listdir(folder)
        pts = [n for n in names if n.endswith(".pt")]
        if len(pts) != 1:
            return None
        side = os.path.basename(ckpt.sidecar_path(pts[0]))
        if any(n not in (pts[0], side) and not _dead(folder, n) for n in names):
            return None
        path = os.path.join(folder, pts[0])
        said = ckpt.read_sidecar(path)
        md5 = _md5(path)
    except OSError:
        return None
    if md5 is None or (side in names and (said is None or (said.md5 or "").lower() != md5)):
        return None
    return pts[0], md5


def _md5(path: str) -> Optional[str]:
    from drivestage.localfs import file_md5

    try:
        return file_md5(path)
    except OSError:
        return None


def rescue(state: dict, name: str, metrics: dict, saved: float) -> str:
    """``state`` written as ``name`` (and its sidecar) into a new temporary folder of this
    machine's own disk, for a run whose folder's mount stopped (nothing can be written there
    until it is mounted again); its path. ``saved``: when the state was taken (the sidecar's
    save time, as every save of the run has: the time of the rescue was not; stopleft31)."""
    folder = tempfile.mkdtemp(prefix=RESCUED)
    try:
        return ckpt.save_checkpoint(state, os.path.join(folder, name), metrics=metrics,
                                    saved=saved)
    except BaseException:   # (this disk full too): no empty folder left for the sweep
        shutil.rmtree(folder, ignore_errors=True)
        raise
