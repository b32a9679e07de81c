"""The checkpoint every machine loads under multi-machine DDP: rank 0's bytes, here or fetched.

Rank 0 decides where the run starts (:func:`trainer.resume.choose`) and sends the md5, size
and Drive file of the bytes it chose (:class:`Chosen`, :func:`chosen_bytes`). Each other
machine's local rank 0 then loads exactly those bytes (:func:`ensure_local_checkpoint`): its
own file of that name when it holds them; else fetched from Drive by id, into a hidden copy
beside its own file when that holds other bytes (removed once every rank has loaded:
:func:`loaded`). DDP would otherwise average the gradients of different models.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from drivestage.store import RemoteEntry
from trainer import distributed
from trainer.errors import CheckpointError

if TYPE_CHECKING:
    from trainer.resume import Start

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Chosen:
    """The bytes rank 0 resumes from, which every machine must load (multi-machine DDP)."""

    where: str                          # how messages name them (a path, or drive:...)
    md5: str                            # hex md5 of rank 0's file
    size: int
    entry: Optional[RemoteEntry] = None  # the Drive file holding exactly these bytes, if any


def one_line(exc: BaseException) -> str:
    """An exception as one line of text (its type when it has none)."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def chosen_bytes(path: str, where: str, entry: Optional[RemoteEntry]) -> Chosen:
    """What rank 0 sends of the checkpoint ``path`` it resumes from: its md5 and size, and the
    Drive file ``entry`` when that holds the same bytes (the others fetch it by id)."""
    md5, size = _file_md5(path)
    same = entry is not None and (entry.md5 or "").lower() == md5 and entry.size == size
    return Chosen(where=where, md5=md5, size=size, entry=entry if same else None)


#: The hidden copy of rank 0's bytes on a machine that holds other bytes under their name:
#: ``.<name>.<md5>.resume.tmp`` (``.*.tmp``: never mirrored to Drive, never listed as a
#: checkpoint).
_SIDE_SUFFIX = ".resume.tmp"


def _side_copy(path: str, md5: str) -> str:
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.{md5}{_SIDE_SUFFIX}")


def is_side_copy(path: Optional[str]) -> bool:
    name = os.path.basename(path or "")
    return name.startswith(".") and name.endswith(_SIDE_SUFFIX)


def ensure_local_checkpoint(path: str, chosen: Chosen, into: Optional[str] = None) -> str:
    """The file on this machine that holds exactly rank 0's ``chosen`` bytes: ``path`` when it
    does; else those bytes fetched from Drive *by id* (a new version of the name pushed since
    rank 0 chose is other bytes), verified against rank 0's md5, into ``path`` when nothing is
    there, or into a hidden copy beside it when ``path`` holds other bytes (this machine's own
    file, kept: it may be the only copy of that state). Raises CheckpointError, one line;
    DiskSpaceError (what it needs, where) before a byte is fetched where the disk has no
    room for them.

    ``into``: this machine's run folder, where ``path`` is rank 0's file outside rank 0's
    (``--resume PATH``: a backup, a copy on its Drive mount). Then ``path`` is only read
    (where this machine holds those very bytes there: a shared file system); else they are
    fetched into a hidden copy in ``into``, removed once every rank loaded (:func:`loaded`):
    nothing is written at rank 0's path, which elsewhere made a local
    ``/content/drive/MyDrive/…`` that later blocked mounting there (trainlefts47)."""
    given = path   # (named where Drive does not hold the bytes)
    if into is not None:
        if os.path.isfile(path) and _file_md5(path) == (chosen.md5, chosen.size):
            return path
        path = os.path.join(into, os.path.basename(path))
    _drop_other_side_copies(path, chosen.md5)
    if os.path.isfile(path):
        md5, size = _file_md5(path)
        if md5 == chosen.md5 and size == chosen.size:
            return path
        logger.warning("%s on this machine is not the checkpoint rank 0 resumes from (md5 %s, "
                       "rank 0's %s); it is kept, and rank 0's is loaded instead", path, md5,
                       chosen.md5)
        other = True
    else:
        other = False
    if chosen.entry is None:
        has = f"this machine holds other bytes at {path}" if other else \
            f"which this machine does not have at {given}"
        raise CheckpointError(
            f"rank 0 resumes from {chosen.where} (md5 {chosen.md5}), {has} and Drive does "
            f"not hold; put that file there on every machine, or resume from a checkpoint on "
            f"Drive (--resume auto with drive.logs set)")
    target = _side_copy(path, chosen.md5) if other or into is not None else path
    if target != path and os.path.isfile(target) and _file_md5(target) == (chosen.md5, chosen.size):
        return target   # a rerun: this machine fetched these bytes already
    from drivestage.errors import ChecksumMismatchError, NotFoundError, RemoteChangedError
    from drivestage.partials import partial_size
    from drivestage.remote import open_store
    from drivestage.sizes import check_space
    from trainer.drive import fetch_own

    into = os.path.dirname(os.path.abspath(target))
    os.makedirs(into, exist_ok=True)
    # As the other fetches of a checkpoint (trainer.drive.DriveFolder.fetch_entry, lefts45):
    # fetched with no look at the room, one of gigabytes filled the disk, then ENOSPC.
    check_space(into, 0, chosen.entry.size - partial_size(target, chosen.entry),
                f"fetch {chosen.where} (the checkpoint rank 0 resumes from) for this machine",
                remedy="free some space on this machine and run the same command (Drive "
                       "keeps it)")
    logger.info("fetching %s (md5 %s) from Drive for this machine", chosen.where, chosen.md5)
    try:
        by_id = f"drive:id:{chosen.entry.id}"
        store, _ = open_store(by_id)
        # By id, verified against rank 0's md5 and size (the entry it saw): never the name's
        # newest version. The bytes wait in a hidden partial until they matched. (Flagged by
        # Drive as malware or spam: fetched acknowledging it, as rank 0 did.)
        fetch_own(store, chosen.entry, target, chosen.where,
                  lambda: open_store(by_id, acknowledge_abuse=True)[0])
    except (NotFoundError, RemoteChangedError, ChecksumMismatchError) as exc:
        _drop_partials(target)
        raise CheckpointError(
            f"{chosen.where} changed on Drive while the run started (rank 0 loads md5 "
            f"{chosen.md5}; {one_line(exc)}); run again") from None
    return target


def _drop_other_side_copies(path: str, md5: str) -> None:
    """Remove the hidden copies of ``path``'s name holding other bytes than ``md5``'s, and
    what their downloads left: a kill before every rank loaded one (:func:`loaded`) left it,
    and no later start looked at it again (rank 0 had gone on to other bytes, or this
    machine held them now): a checkpoint's size in the run folder for good, at every such
    kill (trainatk47). Each is a copy of Drive's bytes, never the only one."""
    from drivestage.partials import remove_partial, stale_partials

    folder, name = os.path.split(os.path.abspath(path))
    found = re.compile(rf"\A\.\.?{re.escape(name)}\.(?P<md5>[0-9a-f]{{32}}){re.escape(_SIDE_SUFFIX)}"
                       r"(?:\.[0-9a-f]{16}\.(?:partial|ranges))?\Z")
    try:
        names = os.listdir(folder)
    except OSError:
        return   # (no folder yet: nothing left in it)
    for other in {m.group("md5") for m in map(found.match, names) if m is not None} - {md5}:
        side = _side_copy(path, other)
        drop_side_copy(side)
        for partial in stale_partials(side):
            remove_partial(partial)


def _drop_partials(target: str) -> None:
    """What a failed fetch of bytes that are gone from Drive left: never of use again."""
    from drivestage.partials import remove_partial, stale_partials

    for partial in stale_partials(target):
        remove_partial(partial)


def loaded(start: Start, info: distributed.DistInfo) -> None:
    """Every rank has loaded ``start``: a machine that loaded rank 0's bytes from a hidden
    copy removes it (every rank calls this; a collective only when some machine made one)."""
    if not start.side_copies:
        return
    distributed.barrier()
    if info.is_local_main and start.path is not None and is_side_copy(start.path):
        drop_side_copy(start.path)


def drop_side_copy(path: str) -> None:
    """Remove a hidden copy of rank 0's bytes (this machine's own file of the name stays)."""
    if is_side_copy(path):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _file_md5(path: str) -> tuple[str, int]:
    from drivestage.localfs import file_md5

    return file_md5(path), os.path.getsize(path)
