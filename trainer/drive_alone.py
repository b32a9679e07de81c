"""A checkpoint's pair sent into ``drive.logs`` outside a push
(:meth:`trainer.drive.DriveFolder.send_alone`).

A stop's save written beside a run folder whose disk does not answer, one sent from memory,
a kept state (:mod:`trainer.stop_save`, :mod:`trainer.memory_send`): each file uploaded and
verified, a twin of the same bytes removed, then the older pair of those names in the run
folder replaced as a push would (:mod:`trainer.alone_in_place` where this account removes
nothing). Split from :mod:`trainer.drive` (its 500-line cap).
"""
from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Callable, Optional, Sequence

from drivestage import sidecar as sidecars
from drivestage.errors import AbusiveFileError, DriveStageError, FolderInTheWayError, \
    GuardUnsureError, NameSharedError, NotFoundError, RemoteChangedError
from drivestage.store import RemoteEntry
from trainer import alone_in_place

if TYPE_CHECKING:
    from trainer.drive import DriveFolder

logger = logging.getLogger("trainer.drive")


def send(drive: "DriveFolder", paths: Sequence[str],
         names: Optional[Sequence[str]] = None) -> None:
    """Upload ``paths`` (a checkpoint, then its sidecar) into the folder, each verified,
    outside a push: a stop's save written beside a run folder whose disk does not answer,
    which a push would walk and wait on (:mod:`trainer.stop_save`). A name Drive holds
    with those bytes already is not sent again; another copy of the same name and bytes
    found there once its own is verified (a push that sent it too) is removed, so the
    folder holds one file of each name (stop30). Once both are verified, the copies of
    other bytes they replace go as a push's would (:meth:`_replace_older`). ``names``: the
    names they go under (``last.pt``'s bytes as ``epoch_002.pt``), else their own. A name
    another run's file holds there is not sent (:class:`OtherRunFile`): added beside it,
    two files of one name were left (epochkeep32). Where this account may not remove the
    older pair (a shared drive's Contributor), that pair is updated in place instead, a
    verified pair at every step (:mod:`trainer.alone_in_place`: one more pair of those
    names was left at every such send, for good: stopcopy36). The run's lease is checked
    before each upload and before each removal (:meth:`trainer.lease.RunLease.guard`: a
    lease lost in the middle of the removals removes nothing more), and after each upload: lost, the copies sent that no sidecar vouches for yet are
    removed (they are this send's own) and :class:`~trainer.errors.LeaseLostError` raised,
    as a push does (:mod:`drivestage.push_fence`)."""
    from drivestage.localfs import file_md5

    if drive.lease is not None:
        drive.lease.check()
    guard = drive.lease.guard if drive.lease is not None else _unguarded
    names = list(names or [os.path.basename(p) for p in paths])
    # (A checkpoint and its sidecar by their names: those sent from memory have no
    # names of their own on this machine, trainer.memory_send.)
    pair = len(paths) == 2 and names[1] == sidecars.name_for(names[0])
    folder = drive._store.make_folders(drive._path)
    sent: dict[str, RemoteEntry] = {}   # name -> its verified copy
    aside: list[RemoteEntry] = []
    listed = drive._store.list(folder)   # the folder as last listed
    _no_folder_of(drive, listed, names)
    if pair:
        _not_theirs(drive, listed, paths[1], names[1], names[0])
        older = alone_in_place.plan(drive._store, listed, names, paths[1],
                                    lambda: drive._own(folder))
        if older is not None:   # (removing nothing: a Contributor's; stopcopy36)
            alone_in_place.send(drive._store, folder, paths, names, older, drive._cache,
                                guard)
            return
    own: list[RemoteEntry] = []   # copies sent that nothing vouches for yet
    for path, name in zip(paths, names):
        md5 = file_md5(path)
        listed = drive._store.list(folder)
        _no_folder_since(drive, listed, names, own)
        same = [e for e in listed
                if e.name == name and not e.is_dir and (e.md5 or "").lower() == md5]
        if same:
            sent[name] = same[0]
            continue
        _checked(drive, guard, own, replaces=False)   # (a new copy: replaces nothing yet)
        # (A copy of which no byte was sent is one an earlier push made, Drive's listing
        # lagging: its sidecar may vouch for it; never this send's own: attackfence37.)
        moved = [0]
        got = drive._store.upload(path, folder, name, md5_cache=drive._cache,
                                  progress=lambda n: moved.__setitem__(0, moved[0] + n),
                                  follow=alone_in_place.read_through(path))
        if moved[0]:
            own.append(got)
        _checked(drive, guard, own, replaces=False)   # (its own until it, or its sidecar, passed)
        made = list(own)   # (this send's copies: removed where a folder came in their way)
        if not pair or name == names[1]:
            own.clear()
        aside += drive._store.aside(got)   # (a local DEST's old copy: removed below)
        listed = drive._store.list(folder)
        _no_folder_since(drive, listed, names, made)
        sent[name] = _one_of(drive, got, [e for e in listed if e.name == name and not
                                        e.is_dir and (e.md5 or "").lower() == md5],
                             lambda: _checked(drive, guard, own))
    for old in aside:   # (the old copy a store holding one file of a name kept aside)
        guard()   # (before each removal: a lease lost midway removes nothing more)
        try:
            drive._store.delete(old)
        except NotFoundError:
            pass
    if pair:
        refused: list[Exception] = []

        def check() -> None:   # (the guard's error is the send's, never "not removed")
            try:
                guard()
            except Exception as exc:
                refused.append(exc)
                raise
        try:   # (that listing is of after the checkpoint was verified: no request more)
            _replace_older(drive, folder, listed, names[0], paths[1], names[1], sent, check)
        except DriveStageError as exc:   # (both are verified: said, not a failed send)
            if refused:
                raise
            logger.warning("%s is verified on Drive, but its older copy there could not "
                           "be removed (%s): two files of that name are left", drive.where(
                               names[0]), exc)


def _unguarded() -> None:
    """No lease (``drive.lease_minutes`` 0): every send goes on."""


def _checked(drive: "DriveFolder", guard: Callable[[], None],
             own: Sequence[RemoteEntry], replaces: bool = True) -> None:
    """``guard()``; where it raises (the lease lost), the copies this send made that no
    sidecar vouches for yet (``own``) are removed first. ``replaces`` False: the commit of
    a new copy, which goes where the lease is not taken yet (:class:`~drivestage.errors.
    GuardUnsureError`), as a push's does (:mod:`drivestage.push_fence`)."""
    try:
        guard()
    except Exception as exc:
        if isinstance(exc, GuardUnsureError) and not replaces:
            return
        for entry in own:
            _remove_own(drive, entry)
        raise


def _remove_own(drive: "DriveFolder", entry: RemoteEntry) -> None:
    """Remove ``entry``, a copy this send made that no sidecar vouches for."""
    try:
        drive._store.delete(entry)
    except NotFoundError:
        pass
    except DriveStageError as exc:   # (left: a copy no sidecar vouches for)
        logger.warning("could not remove %s, sent before the run's lease was found lost (%s)",
                       drive.where(entry.name), exc)


def _not_theirs(drive: "DriveFolder", listing: Sequence[RemoteEntry], side_path: str,
                side_name: str, name: str) -> None:
    """Raise :class:`OtherRunFile` where ``listing`` holds a sidecar named ``side_name`` (of
    ``name``) of another run than ``side_path``'s (this run's, on this machine)."""
    mine = sidecars.read(side_path)
    for side in (e for e in listing if e.name == side_name and not e.is_dir):
        try:
            data = sidecars.fetch(drive._store, side)
        except (NotFoundError, RemoteChangedError):
            continue   # (gone or changed since the listing: another process)
        except AbusiveFileError:   # (whose, none can tell: left as another run's is)
            raise OtherRunFile(name, None, flagged=drive.where(side.name)) from None
        said = sidecars.parse(data, side.name) if data else None
        copies = [e for e in listing if e.name == name and sidecars.has_bytes(e)]
        if said is not None and copies:   # (whose the bytes there are: attacksync36)
            said = said.speaking_for(sidecars.vouched(copies, said).md5)
        if said is not None and said.run is not None and mine is not None and \
                said.run != mine.run:
            raise OtherRunFile(name, said.run)


def _no_folder_of(drive: "DriveFolder", listing: Sequence[RemoteEntry],
                  names: Sequence[str], shared: bool = True) -> None:
    """Raise :class:`~drivestage.errors.FolderInTheWayError` where ``listing`` holds a folder
    of one of ``names``, before a byte is sent: the push's check (attackpush45). Sent beside
    it, the file made a name every pull of the folder refused, and the run's next push
    refused to send the run folder at all (trainlefts46). Where a file of that name is there
    too (``shared``: the listing made before this send wrote a byte),
    :class:`~drivestage.errors.NameSharedError`: the two share it already, the folder made
    after the last listing of the send that put the file there."""
    for name in names:
        if any(e.name == name and e.is_dir for e in listing):
            if shared and any(e.name == name and not e.is_dir for e in listing):
                # (a file of that name is there too: a folder made after the last listing
                # of the send that put it there; said as it is: pushlefts48)
                raise NameSharedError(drive.spec, name, f"this run's {name}",
                                      "rename that folder on Drive")
            raise FolderInTheWayError(drive.where(name), f"this run's {name}",
                                      fix="rename that folder on Drive")


def _no_folder_since(drive: "DriveFolder", listing: Sequence[RemoteEntry],
                     names: Sequence[str], made: Sequence[RemoteEntry]) -> None:
    """:func:`_no_folder_of` on a listing made during the send (before and after each
    upload), the copies this send made (``made``) removed first. The first check reads the
    listing made before any upload: a folder made on Drive since (another machine, the user)
    let the file go beside it, "verified" (trainatk47). Drive has no "make it unless a folder
    has the name", so a folder made after the last listing is still beside the file: made
    after it, by whoever made it."""
    try:
        _no_folder_of(drive, listing, names, shared=False)
    except FolderInTheWayError:
        for entry in made:
            _remove_own(drive, entry)
        raise


def _one_of(drive: "DriveFolder", got: RemoteEntry, same: Sequence[RemoteEntry],
            check: Callable[[], None] = _unguarded) -> RemoteEntry:
    """Of ``got`` (just verified) and the copies of the same name and bytes listed beside
    it (a push that sent it too), the one made first (:func:`_before`), the others
    removed (the same bytes are verified there). Another process sending the same bytes
    at once took ``got`` for its twin as this one took its: each removed the other's
    and no copy was left (attackdel31); the first made is kept by each process. ``check``
    (the run's lease) before each removal."""
    first = min([got] + [e for e in same if e.id != got.id],
                key=lambda e: (e.created, e.id))
    for twin in {e.id: e for e in [got, *same]}.values():
        if twin.id != first.id:
            try:   # (the run's lease before each removal request, a retry's too)
                drive._store.take_out(twin, check=check)   # (as dedupe's: parents39)
            except NotFoundError:   # (the other process removed it)
                pass
    return first


def _replace_older(drive: "DriveFolder", folder: RemoteEntry, listing: Sequence[RemoteEntry],
                   name: str, side_path: str, side_name: str,
                   sent: dict[str, RemoteEntry],
                   check: Callable[[], None] = _unguarded) -> None:
    """Remove the older pair of ``path``'s name that its pair, just verified (``sent``),
    replaces (``name``, ``side_name``: the names they went under): a stop at the iteration of an earlier branch's stop (a resume from an older
    checkpoint) left two files of each name on Drive for good, where a push replaces
    them (stopleft31). Only in a run folder (marked: :mod:`drivestage.run_folders`), and
    only an old sidecar of this run (``keep_other_runs``) not further on
    (:mod:`drivestage.behind`), made on Drive before this one (:func:`_before`), with the
    copies it vouches for; a doubt leaves all. ``check`` (the run's lease) before each
    removal."""
    mine = sidecars.read(side_path)
    ours = sent.get(side_name)
    if mine is None or mine.run is None or ours is None or not drive._own(folder):
        return
    names = (name, side_name)
    ids = {e.id for e in sent.values()}
    listed = [e for e in listing if e.name in names and not e.is_dir and e.id not in ids]
    olds = [e for e in listed if e.name == names[0]]
    gone: list[RemoteEntry] = []
    for side in (e for e in listed if e.name == names[1]):
        try:
            data = sidecars.fetch(drive._store, side)
        except (NotFoundError, RemoteChangedError):
            return   # (changed since the listing: another process; the next look sees)
        except AbusiveFileError:
            return   # (flagged by Drive, unread: whose, none can tell; a doubt leaves all)
        said = sidecars.no_later_than(sidecars.parse(data, side.name) if data else None,
                                     side.modified)
        if said is None or said.md5 is None or not side.removable or not _before(side, ours):
            return
        vouched = [e for e in olds if (e.md5 or "").lower() in said.md5s]
        # Each copy by its own description: a stopped in-place push's sidecar vouches for
        # the old bytes and those there, maybe another run's (attacksync36).
        for who in [said] + [said.speaking_for(e.md5) for e in vouched]:
            if who.run != mine.run or ((who.saved or 0.0) > (mine.saved or 0.0) and
                                       who.progress > mine.progress):
                return   # another run's (or no run's), or further on in this one: kept
        if not all(e.removable for e in vouched):
            return
        gone += [side] + vouched
    for old in gone:   # (its sidecar first: nothing vouches for a copy left by a kill)
        try:
            # (One also in another folder, kept from before 2020, loses only the run
            # folder, as a push's replaced copy does (parents39): deleted, it was left
            # there, its sidecar gone: attackrm39. The run's lease before each removal
            # request, a retry's too: lost, nothing more goes.)
            drive._store.take_out(old, check=check)
        except NotFoundError:
            pass


class OtherRunFile(DriveStageError):
    """:meth:`DriveFolder.send_alone` of a name another run's file holds on Drive."""

    def __init__(self, name: str, run: Optional[str], *, flagged: Optional[str] = None) -> None:
        if flagged is not None:   # (run None: whose, none can tell; guards41)
            super().__init__(f"it holds {name}, whose sidecar {flagged} Drive flagged as "
                             "malware or spam and does not serve to this account, so whose "
                             "run it is cannot be told; sent, two files of one name would be "
                             "there")
        else:
            super().__init__(f"it holds another run's {name}, of run {run}; sent, two files "
                             f"of one name would be there")
        self.name, self.run, self.flagged = name, run, flagged


def _before(old: RemoteEntry, new: RemoteEntry) -> bool:
    """Whether ``old`` was made on Drive before ``new`` (Drive's clock; the id between two
    made at one moment). Another process of the run sending that name alone at the same time
    (two machines resumed from one checkpoint) took this pair, just made, for the older one,
    as this process took its: each removed the other's and Drive held neither (attackdel31).
    Ordered alike in every process, only the later one replaces."""
    return (old.created, old.id) < (new.created, new.id)
