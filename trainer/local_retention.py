"""``train.keep_local``: only the newest N ``epoch_NNN.pt`` stay in the run folder.

Every ``train.save_period`` epochs the run writes ``epoch_NNN.pt`` (about 70 MB at 416 px)
and kept every one locally (``drive.keep_last`` prunes Drive only): a 300-epoch run filled a
Colab disk. With ``train.keep_local`` N > 0 an older epoch file goes once it is settled with
Drive; 0 (the default) keeps every one, as before.

Deciding is a pure function (:func:`plan`); deleting is :func:`remove`, in an order a SIGKILL
cannot turn into a state a resume misreads; :class:`LocalRetention` owns what it knows of
Drive and runs on rank 0's writer threads (:class:`trainer.writer.BackgroundWriter`), after a
push (with ``drive.logs``) or after a write (without). The rules:

* only ``epoch_NNN.pt`` (the names the run writes) are counted and deleted, with their
  sidecars: never ``last.pt``, ``best.pt``, an autosave, nor a ``*.bad-<time>`` file
  (a state ``--resume auto`` passed over, kept for a person to look at: its promise is
  "kept, on this machine only", and it is one file per bad state, not one per epoch);
* only those numbered up to the epoch this run reached: those above were left by a run sent
  back on purpose, and its own saves of those names replace them (as for autosaves);
* never the checkpoint ``--resume auto`` would go on from (the most advanced by its sidecar,
  :func:`trainer.checkpoint.newest`), nor the one the run resumed from while Drive's copy
  of it is still protected;
* with ``drive.logs``, never before its bytes are verified on Drive by md5 (a push this run
  made sent them, or Drive's listing holds a verified copy of the same md5) and a copy of
  them is still there when it goes (read by id: a listing lags), or Drive's own policy left
  it out (``drive.keep_last`` would delete it there at once: the user kept it
  nowhere). Drive unreachable: nothing is deleted, the files wait.
"""
from __future__ import annotations

import logging
import os
import re
import threading
from typing import Any, Callable, Collection, Iterable, Mapping, Optional

from trainer import checkpoint as ckpt

logger = logging.getLogger(__name__)

#: The epoch files the run writes (``trainer.saving``: ``epoch_{epoch:03d}.pt``). Nothing else
#: is counted or deleted: ``epoch_002.pt.bad-<time>`` does not match.
EPOCH_FILE = re.compile(r"\Aepoch_(?P<epoch>\d{3,})\.pt\Z")
#: Their sidecars, for a removal a kill cut short (:func:`finish_removals`).
EPOCH_SIDECAR = re.compile(r"\Aepoch_(?P<epoch>\d{3,})\.json\Z")


def epoch_files(folder: str) -> dict[str, int]:
    """``{name: epoch}`` of the ``epoch_NNN.pt`` files in ``folder`` (none when it is absent):
    regular files only (a folder or a link of that name is not the run's, and never goes)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return {}
    found = {}
    for entry in entries:
        m = EPOCH_FILE.match(entry.name)
        try:
            if m is not None and entry.is_file(follow_symlinks=False):
                found[entry.name] = int(m.group("epoch"))
        except OSError:
            continue
    return found


def plan(found: Mapping[str, int], keep: int, *, upto: int, protect: Collection[str] = (),
         settled: Callable[[str], bool] = lambda name: True) -> list[str]:
    """The epoch files to delete, oldest first: of ``found`` (name -> epoch) numbered up to
    ``upto``, all but the ``keep`` newest, less those in ``protect`` and those not
    ``settled`` (with Drive). ``keep`` 0: none (the rule is off)."""
    if keep <= 0:
        return []
    ranked = sorted((epoch, name) for name, epoch in found.items() if epoch <= upto)
    return [name for _, name in ranked[:-keep] if name not in protect and settled(name)]


def remove(folder: str, name: str) -> None:
    """Delete epoch file ``name`` and its sidecar so that a kill at any point leaves a folder
    a resume reads right: first the file goes from its name (renamed to a temporary name of
    an atomic write: never mirrored, removed by the folder's next atomic write once this
    process is gone, :mod:`drivestage.temps`), then its sidecar, then the temporary file.
    Killed after the first step, a sidecar is left without its file: no checkpoint to any
    listing (they go by ``*.pt``), and :func:`finish_removals` removes it. Deleting the
    sidecar first (:func:`trainer.checkpoint.remove_checkpoint`) would instead leave an
    undescribed ``epoch_NNN.pt``: uploaded again by the mirror, or taken for a killed save."""
    from drivestage import temps

    path = os.path.join(folder, name)
    doomed = os.path.join(folder, temps.name_for(name))
    try:
        os.replace(path, doomed)
    except FileNotFoundError:
        return
    try:
        os.unlink(ckpt.sidecar_path(path))
    except FileNotFoundError:
        pass
    os.unlink(doomed)


def finish_removals(folder: str) -> list[str]:
    """Remove the sidecars of epoch files that are gone (a :func:`remove` killed after its
    first step; no save leaves one: a checkpoint is renamed into place before its sidecar is
    written); the names removed. One beside another file of its stem (``epoch_004.pth``)
    may be that file's, and stays."""
    try:
        names = set(os.listdir(folder))
    except OSError:
        return []
    out = []
    for name in sorted(names):
        m = EPOCH_SIDECAR.match(name)
        if m is None:
            continue
        stem = name[:-len(".json")]
        if any(n.startswith(stem + ".") and n != name and ".bad-" not in n for n in names):
            continue
        try:
            os.unlink(os.path.join(folder, name))
        except OSError:   # (gone meanwhile; a read-only folder: it stays, tried again later)
            continue
        out.append(name)
    if out:
        logger.debug("removed %s, left by a removal that was cut short", ", ".join(out))
    return out


class LocalRetention:
    """Keeps the newest ``keep`` epoch files in ``folder``; knows which are settled with
    ``drive`` (a :class:`trainer.drive.DriveFolder`, or None: every file is)."""

    def __init__(self, folder: str, keep: int, drive: Any = None):
        self.folder, self.keep, self.drive = folder, keep, drive
        self._lock = threading.Lock()
        self._on_drive: dict[str, str] = {}    # name -> md5 verified on Drive
        self._left_out: dict[str, str] = {}    # name -> md5 Drive's policy left out
        self._listed = False                   # Drive's listing read once (older files)

    def pushed(self, verified: Mapping[str, Optional[str]], others: Iterable[str] = (),
               left_out: Iterable[str] = ()) -> None:
        """What a push settled: ``verified`` (name -> the md5 of this process's write it sent
        and verified), ``others`` sent and verified too (files this process did not write:
        their md5 read here) and ``left_out`` on purpose (Drive's policy deletes them)."""
        found = {**verified, **{name: _md5(self.folder, name) for name in others}}
        with self._lock:
            self._on_drive.update({n: m.lower() for n, m in found.items() if m})
            for name in left_out:
                md5 = _md5(self.folder, name)
                if md5 is not None:
                    self._left_out[name] = md5

    def apply(self, *, upto: int, run: Optional[str], protect: Collection[str] = ()) -> list[str]:
        """Delete what :func:`plan` says (epochs up to ``upto``, the checkpoint ``--resume
        auto`` takes of ``run`` and ``protect`` kept); the names deleted."""
        with self._lock:
            finish_removals(self.folder)
            found = epoch_files(self.folder)
            if self.keep <= 0 or len(found) <= self.keep:
                return []
            resume = ckpt.newest(ckpt.list_checkpoints(self.folder), run=run)
            keep = set(protect) | ({resume.described.name} if resume is not None else set())
            doomed = plan(found, self.keep, upto=upto, protect=keep)
            if self.drive is not None and doomed:
                self._list_once([n for n in doomed if not self._settled(n)])
                doomed = self._still_on_drive([n for n in doomed if self._settled(n)])
            for name in doomed:
                remove(self.folder, name)
            if doomed:
                logger.info("removed %s from %s (train.keep_local %d%s)", ", ".join(doomed),
                            self.folder, self.keep,
                            ": verified on Drive" if self.drive is not None else "")
            return doomed

    def _settled(self, name: str) -> bool:
        """Its bytes here (the md5 its sidecar names) are verified on Drive, or were left out
        there by Drive's policy."""
        if self.drive is None:
            return True
        md5 = _md5(self.folder, name)
        return md5 is not None and md5 in (self._on_drive.get(name), self._left_out.get(name))

    def _still_on_drive(self, names: list[str]) -> list[str]:
        """Of ``names`` (settled), those Drive still holds, its copy read by id now, or that
        its policy left out: a copy the user trashed or deleted after it was verified, while
        Drive's listing still showed it (the push then sent nothing), left the local file
        the only one, and it went (attacky25). Drive trouble: none go, tried again later."""
        check = [n for n in names if _md5(self.folder, n) != self._left_out.get(n)]
        if not check:
            return names
        try:
            live = self.drive.live_md5s(check)
        except Exception as exc:   # Drive trouble of any kind: the files stay
            logger.debug("could not read %s to confirm %s: %s", self.drive.spec, check, exc)
            return [n for n in names if n not in check]
        return [n for n in names if n not in check or _md5(self.folder, n) in live.get(n, ())]

    def _list_once(self, unknown: list[str]) -> None:
        """Epoch files this process did not send (a resumed run's older ones, unchanged on
        Drive): Drive's verified copies, listed once (a failure: tried at the next push)."""
        if not unknown or self._listed:
            return
        try:
            remote = self.drive.checkpoints()
        except Exception as exc:   # Drive trouble of any kind: unsettled, tried again later
            logger.debug("could not list %s to settle %s: %s", self.drive.spec, unknown, exc)
            return
        self._listed = True
        for c in remote:
            if c.described.md5:
                self._on_drive.setdefault(c.name, c.described.md5.lower())


def _md5(folder: str, name: str) -> Optional[str]:
    side = ckpt.read_sidecar(os.path.join(folder, name))
    return side.md5.lower() if side is not None and side.md5 else None
