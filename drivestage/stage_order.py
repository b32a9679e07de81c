"""The order in which the archives of one folder pull merge into DEST (:class:`MergeOrder`).

A folder pull extracts its archives at once (each one's members written into its own
temporary folder while it downloads). Two whose members overlap (``a.zip`` and ``b.zip``
both hold ``ds/x``) merged in whatever order they finished, and one merged between the
other's merge and that one's check of its members failed the first pull ("changed while
a.zip was extracted ... run the pull again"). So an archive merges only once every archive
before it in the pull's order whose members overlap its own (or whose member list is not
known yet: a tar's, until it has all arrived) is staged: the later one holds a shared path,
which is what a rerun takes to be in place (:func:`drivestage.stamps.siblings_wrote`: a
member that a *later* archive of the pull extracted). A staged archive's stamp is judged
likewise, once the earlier archives that share a path are done (:meth:`Turn.judge`): one
extracted again (a member deleted by hand) writes the shared path too, and the later one
then extracts it again.
Archives that share no path wait only for each other's member list (a zip's central
directory, read first), never for each other's bytes.

The order is the pull's tree order (a folder's files by name, then its subfolders'), a
function of the Drive folder's contents alone: never of ``--chunk-size`` (which files are
fetched first, several at once), ``--jobs`` or which arrives first (chunkdet35). The pull
starts each archive only after every archive before it in that order
(:func:`drivestage.stage_tree._small_first`; :func:`drivestage.pool.each` takes them in
order): a wait is always for a file already under way, never for one that waits itself.
"""
from __future__ import annotations

import logging
import os
from typing import Callable, Collection, Optional, Sequence

from drivestage import stamps
from drivestage.errors import ArchiveError, HeldBackError
from drivestage.extract.members import ancestors
from drivestage.extract.records import MemberRecord
from drivestage.interrupts import Monitor
from drivestage.pool import check

log = logging.getLogger(__name__)

#: Seconds between two looks at a Ctrl-C while a merge waits for its turn.
_CHECK_EVERY = 0.5

_Members = tuple[frozenset[str], frozenset[str]]   # (files and links, folders): absolute


class MergeOrder:
    """The archives of one folder pull, by index, in the order they are staged (``order``);
    ``names``: what messages call each one, and the ``--exclude`` that leaves it out;
    ``current``: the files the pull listed (:class:`drivestage.stamps.Listed`, ranked in
    that order), whose stamps say which paths a later archive holds (:meth:`Turn.held`)."""

    def __init__(self, order: Sequence[int], names: Sequence[tuple[str, str]],
                 current: Optional[stamps.Listed] = None):
        self._lock = Monitor()
        self.current = current
        #: :func:`drivestage.stamps.held_later` by folder, made at its first use.
        self._held: dict[str, Callable[[str, Collection[str]], set[str]]] = {}
        self._before = {index: list(order[:rank]) for rank, index in enumerate(order)}
        self._last = order[-1] if order else None
        self._names = names
        self._members: dict[int, _Members] = {}
        self._done: set[int] = set()
        self._failed: set[int] = set()   # (done too)
        self._dests: dict[int, str] = {}   # where each archive is extracted (told by turn())
        self._order = list(order)
        self._rank = {index: rank for rank, index in enumerate(order)}
        self._holders: dict[str, set[int]] = {}   # folder -> the archives that list it

    def turn(self, index: int, dest: str, file_id: Optional[str] = None) -> Optional["Turn"]:
        """What the extraction of archive ``index`` (the Drive file ``file_id``) into
        ``dest`` tells and waits on (None for a file that is not one of the archives)."""
        if index not in self._before:
            return None
        self._dests[index] = os.path.abspath(dest)
        return Turn(self, index, dest, file_id)

    def held(self, dest: str, file_id: str, paths: Collection[str]) -> set[str]:
        """:meth:`Turn.held` for the archive ``file_id`` extracted into ``dest``."""
        if self.current is None:
            return set()
        with self._lock:
            held = self._held.get(dest)
        if held is None:
            held = stamps.held_later(dest, self.current)
            with self._lock:
                held = self._held.setdefault(dest, held)
        return held(file_id, paths)

    def later(self, index: int) -> bool:
        """Whether an archive of the pull merges after archive ``index`` (its member list
        may not be known yet: a tar's, before it is downloaded)."""
        return index in self._before and index != self._last

    def listed(self, index: int, members: _Members) -> None:
        """Archive ``index``'s member list is known."""
        with self._lock:
            old = self._members.get(index)
            for path in old[1] if old is not None else ():
                self._holders[path].discard(index)
            for path in members[1]:
                self._holders.setdefault(path, set()).add(index)
            self._members[index] = members
            self._lock.notify_all()

    def done(self, index: int, failed: bool = False) -> None:
        """Archive ``index`` is staged (its stamp written), failed, or not started;
        ``failed``: Drive would not serve it (:mod:`drivestage.stage_failed`): no archive
        after it merges in this pull."""
        with self._lock:
            self._done.add(index)
            if failed:
                self._failed.add(index)
            self._lock.notify_all()

    def wait(self, index: int, merging: bool = True) -> None:
        """Until every archive before ``index`` that may share a path with it is done;
        ``merging``: its merge is next (none after an archive that failed)."""
        said: set[int] = set()
        while True:
            with self._lock:
                waiting = self._waiting_for(index)
                if not waiting:
                    if merging:
                        self._hold_back(index)
                    self._refuse_kinds(index)
                    return
                for other in waiting:
                    if other not in said:
                        said.add(other)
                        log.info("%s waits for %s to be extracted first: %s",
                                 self._names[index][0], self._names[other][0],
                                 "their members overlap" if other in self._members else
                                 "its member list is not read yet")
                self._lock.wait(_CHECK_EVERY)
            check()  # a Ctrl-C: the pull's threads stop

    def _hold_back(self, index: int) -> None:
        """Raise when an archive before ``index`` failed: merged before it, the rerun that
        fetches it merges it after (:mod:`drivestage.stage_failed`)."""
        failed = [other for other in self._before.get(index, ()) if other in self._failed]
        if failed:
            raise HeldBackError(f"{self._names[index][0]} is not extracted: "
                                f"{self._names[failed[0]][0]}, before it, failed")

    def _waiting_for(self, index: int) -> list[int]:
        mine = self._members.get(index)
        return [other for other in self._before.get(index, ()) if other not in self._done
                and (mine is None or other not in self._members
                     or overlap(mine, self._members[other]))]


    def _refuse_kinds(self, index: int) -> None:
        """Raise when a file of archive ``index`` would land on a folder an earlier archive
        of the pull put there: the merge never replaces a folder (it may hold anything),
        and its "move that folder away" only made the next pull extract it again."""
        mine = self._members.get(index)
        if mine is None or index not in self._rank:
            return
        # The earlier archives' folders on its files, in their order, then by path (looked
        # up by path: 500 archives, each comparing itself with every earlier one, took a
        # tenth of a rerun's time: rerun37).
        at = self._rank[index]
        for rank, path in sorted((self._rank[other], path) for path in mine[0]
                                 for other in self._holders.get(path, ())
                                 if self._rank.get(other, at) < at):
            if os.path.isdir(path) and not os.path.islink(path):
                rel = os.path.relpath(path, self._dests[index]).replace(os.sep, "/")
                (name, exclude) = self._names[index]
                their = self._names[self._order[rank]][0]
                raise ArchiveError(
                    f"{name}: member {rel} is a file, but {their}, pulled with it, has a "
                    f"folder there ({path}); the two cannot both be extracted into one "
                    f"place: pull the rest without it (--exclude {exclude}), or each into "
                    "its own DEST")


def overlap(one: _Members, other: _Members) -> bool:
    """Whether two archives' members land on a common path, other than a folder both
    have."""
    files, folders = one
    their_files, their_folders = other
    return not (files.isdisjoint(their_files) and files.isdisjoint(their_folders)
                and folders.isdisjoint(their_files))


class Turn:
    """One archive's place in a :class:`MergeOrder` (what :class:`drivestage.extract.job.
    Job` tells once the member list is known, and waits on before its merge)."""

    def __init__(self, order: MergeOrder, index: int, dest: str,
                 file_id: Optional[str] = None):
        self._order, self._index, self._dest = order, index, os.path.abspath(dest)
        self._id = file_id

    def listed(self, files: Collection[str], folders: Collection[str]) -> None:
        """The members (paths relative to DEST): files and links, and folders."""
        def absolute(paths: Collection[str]) -> frozenset[str]:
            return frozenset(os.path.join(self._dest, *p.split("/")) for p in paths)

        self._order.listed(self._index, (absolute(files), absolute(folders)))

    def wait(self) -> None:
        """Until the merge may begin (see :meth:`MergeOrder.wait`)."""
        self._order.wait(self._index)

    def later(self) -> bool:
        """Whether another archive of the pull merges after this one."""
        return self._order.later(self._index)

    def held(self, paths: Collection[str]) -> set[str]:
        """Of the member paths ``paths``, those an archive after this one in the pull's
        order holds already, as its stamp (or its killed merge's journal) records them: its
        member, or a folder above its members (:func:`drivestage.stamps.siblings_wrote`).
        The later one holds a shared path, as a clean pull leaves it: an archive merged after
        it (Drive refused it at first, ``--exclude`` left it out, it was added on Drive
        since) leaves those paths as they are. Its file on the later one's folder was
        refused at every rerun ("member ds/k is a file, but …/ds/k is a folder"), its other
        members never extracted (attackstage36)."""
        if self._id is None or not paths:
            return set()
        return self._order.held(self._dest, self._id, paths)

    def judge(self, records: Sequence[MemberRecord], left: Collection[str] = ()) -> None:
        """Before a staged archive's members (``records``, its stamp's) are judged in place:
        tell them and wait for the earlier archives that share a path. One judged while an
        earlier one was extracted again (a member deleted by hand) took what that one wrote
        over the shared path for its own, and the path stayed the earlier one's. ``left``:
        the members its extraction left to later archives (the stamp's), its paths too: told
        without them, a later archive saw no shared path and merged first, and this one,
        extracted again (``--force``), wrote over it."""
        paths = [m.path for m in records] + list(left)
        self.listed({m.path for m in records if m.kind != "dir"} | set(left),
                    ancestors(paths).union(m.path for m in records if m.kind == "dir"))
        self._order.wait(self._index, merging=False)   # (judged in place: nothing merged)
