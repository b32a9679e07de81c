"""A checkpoint on Drive with no sidecar, taken up by a resume that finds nothing else.

A save reaches Drive as two uploads, the checkpoint, then its sidecar (every checkpoint of a
push first). A machine that vanished between the two (Colab's usual end: its disk gone too)
left the checkpoint there alone. A fresh machine's ``--resume auto`` counted only checkpoints
a sidecar vouches for, said "no checkpoint in … nor on drive:…: starting fresh", trained the
run again from its first iteration and replaced that file at its first save: the run so far
lost without a word (attacktrain42: a SIGKILL between the pushed ``epoch_001.pt`` and its
``epoch_001.json``).

Drive holds a file only once its upload is complete, and lists the md5 of its bytes: the
checkpoint is whole. So, where neither the run folder nor Drive holds a checkpoint a sidecar
describes, the newest such file of a checkpoint's name is fetched (md5-checked by the
download) into the run folder and described from its contents, as a save killed there between
its two files is (:func:`trainer.checkpoint.describe_killed_saves`); the resume goes on from
it and the run's next push sends its sidecar. One file, one download: the newest to arrive.

Where the resume goes on from a checkpoint a sidecar describes, such a file further on (by its
name: ``epoch_NNN.pt``, ``autosave_<iteration>.pt``) is passed over as before, now with a
warning naming it (:func:`say_ahead`): what the loss of that machine cost.
"""
from __future__ import annotations

import logging
import os
import re
from typing import TYPE_CHECKING, Iterable, Optional

from drivestage import sidecar as sidecars
from drivestage.store import RemoteEntry
from drivestage.sidecar import Sidecar
from trainer.errors import CheckpointError
from trainer.state import Position

if TYPE_CHECKING:
    from trainer.drive import DriveFolder

logger = logging.getLogger(__name__)

#: The names of checkpoints the trainer sends to Drive, and their numbers: ``epoch_003.pt``,
#: ``autosave_00004120.pt``, ``best.pt``. Never ``last.pt`` (:data:`trainer.drive.
#: MIRROR_EXCLUDE`: one there is another tool's, ultralytics' say, and it refused
#: --resume none as "an earlier run's"), nor a user's ``pretrained.pt``. A title of another
#: shape is no save cut short: ``epoch_1`` and 300 more characters was fetched whole and
#: failed on the local name's length (ENAMETOOLONG), a traceback; 5,000 digits raised
#: int()'s ValueError in every resume (attack44).
_OWN = re.compile(r"best\.pt|(?P<kind>epoch(?=[_-]?[0-9])|autosave(?=_))[_-]?"
                  r"(?P<number>[0-9]{1,18})\.pt")


def lone(by_name: dict[str, list[RemoteEntry]]) -> list[RemoteEntry]:
    """The checkpoints of one folder's listing (name -> its entries) that no sidecar of their
    name describes, a trainer's names only, newest to arrive first (of same-named copies,
    the newest), those a file of their kind further on passes after it; ``best.pt`` last: a
    copy of another one, it arrives with it, and the resume would go on from a copy."""
    paired = sidecars.pairs(by_name)
    out = [max(entries, key=lambda e: e.modified) for name, entries in by_name.items()
           if name not in paired and _saved_name(name) and any(e.md5 for e in entries)]
    # Of one kind, the name says which is further on (``epoch_003.pt`` past ``epoch_002.pt``,
    # an autosave by its iteration): a push sends its checkpoints several at once (its jobs),
    # so the one to arrive last may be the one furthest back (attack43: after Drive was down
    # for two epochs, ``epoch_001.pt`` arrived last and the resume went back to it).
    # Those behind, by how many of their kind are further on: of epochs 1, 2 and 3 (3 no
    # checkpoint: passed, attack43), 2 is taken up before 1, whichever arrived last (attack44).
    behind = {e.name: sum(_further(f.name, e.name) for f in out) for e in out}
    return sorted(out, key=lambda e: (e.name != "best.pt", -behind[e.name], e.modified),
                  reverse=True)


def _number(name: str) -> Optional[tuple[str, int]]:
    """(kind, number) of a checkpoint's name whose number orders it within its kind (a
    trainer's own names only: :data:`_OWN`)."""
    own = _OWN.fullmatch(name)
    return None if own is None or own["kind"] is None else (own["kind"], int(own["number"]))


def _further(name: str, than: str) -> bool:
    """Whether ``name`` is further on than ``than`` by their names (one kind only)."""
    a, b = _number(name), _number(than)
    return a is not None and b is not None and a[0] == b[0] and a[1] > b[1]


def _saved_name(name: str) -> bool:
    return _OWN.fullmatch(name) is not None


def take_up(drive: "DriveFolder", entries: Iterable[RemoteEntry], out_dir: str) -> Optional[str]:
    """Fetch the first of ``entries`` (:func:`lone`) into ``out_dir`` and describe it from its
    contents; its local path, or None (none). One that is no checkpoint is said, nothing of it
    is left here, Drive keeps it, and the next is fetched: the run started afresh over an
    older one that was, and its first save replaced that one on Drive (attack43)."""
    from trainer import checkpoint as ckpt   # (torch: trainer.drive imports this module)

    for entry in entries:
        where = drive.where(entry.name)
        path = os.path.join(out_dir, entry.name)
        refused = _in_the_way(drive, entry, out_dir)
        if refused is not None:
            raise refused
        if _described(drive, entry, out_dir) is not None:
            # One event, one line (it was two: the local copy's "described from its contents
            # (epoch 0)" for a first-epoch autosave, then this one: lefts43).
            side = ckpt.read_sidecar(path)
            at = Position(side.epoch or 0, side.iteration or 0, side.epoch_iteration).label \
                if side is not None else "its position unknown"
            logger.warning("%s has no sidecar on Drive (a save was killed between its two "
                           "uploads) and nothing else there is a checkpoint: going on from it "
                           "(%s, described from its contents)", where, at)
            return path
        logger.warning("%s has no sidecar on Drive and is no checkpoint of this trainer; "
                       "Drive keeps it as it is", where)
    return None


def _in_the_way(drive: "DriveFolder", entry: RemoteEntry, out_dir: str
                ) -> Optional[CheckpointError]:
    """The take-up's refusal where ``out_dir`` holds a file of ``entry``'s name (it is no
    checkpoint: none there is, or no take-up), else None."""
    path = os.path.join(out_dir, entry.name)
    if not os.path.lexists(path):
        return None
    # Never fetched over, nor the run started afresh over Drive's: its saves replaced the
    # files alone there, an earlier run's only copies (attack44).
    where = drive.where(entry.name)
    return CheckpointError(
        f"{path} does not load as a checkpoint, and {where} has its name on Drive "
        f"without its sidecar (a save killed between its two uploads?), which "
        f"--resume auto would go on from; move {path} away and run again")


def looked_inside(drive: "DriveFolder", entries: Iterable[RemoteEntry], out_dir: str
                  ) -> tuple[Optional[RemoteEntry], list[RemoteEntry], Optional[CheckpointError]]:
    """What :func:`take_up` of ``entries`` into ``out_dir`` does, by the same rule (each
    fetched and described from its contents, in order, until one is a checkpoint), looked
    at in a temporary folder (``trainer status``: the run folder and Drive untouched): the
    entry it goes on from (None: none is), those passed over before it as no checkpoint,
    and its refusal where ``out_dir`` holds a file of the next one's name (then no entry).
    Status named the first without looking inside, where the take-up passed on to the next
    (lefts44), and said it goes on from one the take-up refused (lefts44b)."""
    from drivestage.deferred_ctrl_c import TemporaryFolder

    passed: list[RemoteEntry] = []
    with TemporaryFolder(prefix="trainer-status-") as tmp:   # (removed whole: lefts45)
        for entry in entries:
            refused = _in_the_way(drive, entry, out_dir)
            if refused is not None:
                return None, passed, refused
            if _described(drive, entry, tmp) is not None:
                return entry, passed, None
            passed.append(entry)
    return None, passed, None


def _described(drive: "DriveFolder", entry: RemoteEntry, folder: str) -> Optional[str]:
    """``entry`` fetched into ``folder`` and given a sidecar from its contents (a save killed
    between its two files: :func:`trainer.checkpoint.describe_killed_saves`); its path, or
    None where it is no checkpoint of this trainer (its copy removed)."""
    from trainer import checkpoint as ckpt

    path = os.path.join(folder, entry.name)
    drive.fetch_entry(entry, drive.where(entry.name), path)
    if path in ckpt.describe_killed_saves(folder, say=False):
        return path
    ckpt.remove_checkpoint(path)
    return None


def refuse_new(drive: Optional["DriveFolder"], new: str) -> None:
    """A new run (``--resume none``) where ``drive`` (its last listing) holds a checkpoint alone:
    refused in one line, as where one a sidecar vouches for is (one folder holds one run). Its
    first save replaced the same-named file there, an earlier run's only copy (lefts43)."""
    if drive is None or not drive.lone:
        return
    raise CheckpointError(
        f"{drive.spec} already holds {drive.where(drive.lone[0].name)} without its sidecar (a "
        f"checkpoint of an earlier run, its save killed between its two uploads?); starting "
        f"run {new} there would replace it. Continue that run with --resume auto (it goes on "
        f"from that file), or give the new run its own folders: --set train.out_dir=<a new "
        f"folder> --set drive.logs=<a new Drive folder>")


def ahead(drive: "DriveFolder", side: Optional[Sidecar]) -> list[RemoteEntry]:
    """The files of :attr:`DriveFolder.lone` (its last listing) whose name says they are
    further on than ``side`` (a checkpoint's sidecar: the resume's start; None: none)."""
    if side is None or side.epoch is None:
        return []
    out = []
    for entry in drive.lone:   # (a trainer's names only: :func:`_number`)
        kind, number = _number(entry.name) or ("", 0)
        if (kind == "autosave" and number > (side.iteration or 0)) or (
                kind == "epoch" and (number, 0) > side.progress):
            out.append(entry)
    return out


#: Why such a file is passed over (the resume's warning, ``trainer status``).
AHEAD_WHY = "has no sidecar on Drive (a save was killed between its two uploads?)"


def say_ahead(drive: "DriveFolder", side: Optional[Sidecar], start: Optional[str]) -> None:
    """A warning for each of :func:`ahead`: the resume goes on from ``start`` (``side``'s)."""
    for entry in ahead(drive, side):
        logger.warning("%s %s: --resume auto passes over it for %s, further back, and Drive "
                       "keeps it as it is", drive.where(entry.name), AHEAD_WHY, start)


def entry_of(drive: Optional["DriveFolder"], path: Optional[str]) -> Optional[RemoteEntry]:
    """The file of :attr:`DriveFolder.lone` (its last listing) named as ``path`` is, or None:
    where a resume took it up, the Drive copy the other machines of a multi-machine run fetch
    (:func:`trainer.chosen.chosen_bytes` checks that its md5 is the one loaded)."""
    name = os.path.basename(path or "")
    return next((e for e in (drive.lone if drive is not None else []) if e.name == name), None)
