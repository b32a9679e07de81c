"""One extraction into DEST, in the steps every way of extracting shares (see the package doc).

:meth:`Job.check` is step 1 and 2 (the member list validated, checked against DEST, the disk
space), :meth:`Job.finish` step 4 (links, folder times, the records, then the merge under
DEST's lock); what lies between - writing the members into the temporary folder - is the
caller's: all at once from a finished archive (:func:`drivestage.extract.extract`), or member
by member while the archive downloads (:mod:`drivestage.extract.overlapped`).
"""
from __future__ import annotations

import logging
import os
import shutil
import stat
import weakref
from typing import Callable, Collection, Iterable, Mapping, Optional, Protocol

from drivestage import fork_drop
from drivestage.errors import ArchiveError, DiskSpaceError, LocalFileError, UserFilesError
from drivestage.extract.journals import note_merging
from drivestage.extract.links import judge_links
from drivestage.extract.members import Entry, ancestors
from drivestage.extract.merging import Plan, folder_error, merge, merge_lock, plan_merge, \
    release_tree
from drivestage.extract.occupied import Occupied, Recorded
from drivestage.extract.owned import NOTHING, Owned, by_path
from drivestage.extract.records import ExtractResult, MemberRecord, record_members
from drivestage.extract.tempdir import TempDir, make_temp, makedirs_at, remove_stale_temps, \
    remove_temp
from drivestage.extract.validation import check_members, check_path_lengths
from drivestage.extract.writing import SymlinksRefused, finish_tree, make_dirs
from drivestage.sizes import format_size
from drivestage.interrupts import deferred

log = logging.getLogger(__name__)

_BLOCK = 4096             # disk allocation unit assumed by the space check


class Turn(Protocol):
    """Where a merge waits for the merges of others (the archives of one folder pull that
    share a path merge one after the other: :mod:`drivestage.stage_order`)."""

    def listed(self, files: Collection[str], folders: Collection[str]) -> None:
        """The final member list is known: its files and links, and its folders."""

    def wait(self) -> None:
        """Until this merge may begin (raises when it cannot: another archive's folder
        where this one has a file)."""

    def later(self) -> bool:
        """Whether another archive of the pull merges after this one (which may have the
        same paths: :attr:`Occupied.left`)."""

    def held(self, paths: Collection[str]) -> Collection[str]:
        """Of these member paths, those an archive of the pull after this one holds
        already (its stamp's): left as they are, neither written nor recorded."""


class Job:
    """The extraction of ``archive`` into ``dest``; its temporary folder is ``root`` once
    :meth:`check` passed (reached by its descriptor: see :mod:`.tempdir`). ``lock_dir``: the folder whose merge lock serialises the merge;
    ``protected``: files staged from Drive that no member may replace or turn into a folder
    (the archive itself always; a download being followed names its final path);
    ``replaceable``: the records of what an earlier extraction of this archive wrote (and no
    other archive's stamp lists), whose folders a file or link member may replace when they
    hold nothing else (:mod:`.owned`); ``kept``: the records of members of an earlier
    extraction of this very archive that are in place in DEST (see :func:`keep_in_place`),
    which are not written again: their records are returned as they are. ``turn``: told
    the member list once known, and waited on before the merge (see :class:`Turn`).
    ``recorded``: which member paths a stamp records (what earlier extractions wrote);
    given, what DEST holds at a member's path that it does not list is the user's, never
    replaced: adopted when it is the member, else refused (:mod:`.occupied`); and the paths
    a merge moves in are journaled until the caller's stamp records them. None: replaced
    as ``unzip -o`` does (:func:`drivestage.extract.extract`; ``pull --force`` gives one
    that lists every path)."""

    def __init__(self, archive: str, dest: str, *, lock_dir: Optional[str] = None,
                 free_bytes: Optional[Callable[[str], int]] = None,
                 protected: Iterable[str] = (), label: Optional[str] = None,
                 replaceable: Iterable[MemberRecord] = (),
                 kept: Mapping[str, MemberRecord] = {}, turn: Optional[Turn] = None,
                 recorded: Optional[Recorded] = None):
        self.archive = label or archive  # what messages call it (not a partial's name)
        self.dest = os.path.abspath(dest)
        self.occupied = Occupied(self.archive, self.dest, recorded,
                                 leave=turn is not None and turn.later()) \
            if recorded is not None else None
        protected = list(protected)
        self.protected = self._inside(p for p in [archive, *protected] if p[-1:] != os.sep)
        # Folders a pull stages from Drive (a trailing separator): no file member there.
        self.folders = self._inside(p for p in protected if p[-1:] == os.sep)
        self.lock_dir = os.path.abspath(lock_dir) if lock_dir is not None else self.dest
        self.free_bytes = free_bytes or _default_free_bytes
        self.owned: Owned = by_path(replaceable)
        self.entries: list[Entry] = []
        self._asked: list[list[Entry]] = []   # the lists checked against DEST (see close)
        self.kept = dict(kept)
        self.final: list[Entry] = []   # every member, the kept ones too (archive order)
        self._root: Optional[TempDir] = None
        self._owner = -1  # the temporary folder's owner lock (see tempdir.make_temp)
        self._unlock: Optional[weakref.finalize[[int], Job]] = None
        self.turn = turn
        #: File and link members whose paths a later archive of the pull holds already
        #: (:meth:`Turn.held`): left as DEST holds them, as :attr:`Occupied.left` are.
        self.later: set[str] = set()

    def check(self, entries: list[Entry]) -> list[Entry]:
        """Steps 1 and 2: the final member list, checked against DEST and the free space,
        and the temporary folder made (unless :meth:`start_temp` made it) with every folder
        the members need. Returns the file members."""
        # Every rule is checked on the whole member list, whatever is written of it.
        self.final = entries = check_members(entries, self.archive)
        check_path_lengths(entries, self.dest, self.archive)
        self._listed()
        if self.kept:
            self.kept = keep_in_place(entries, self.kept)
            entries = [e for e in entries if e.path not in self.kept]
        os.makedirs(self.dest, exist_ok=True)
        self._check_early(entries)
        if self.later:   # (a later archive of the pull holds them: not written)
            entries = [e for e in entries if e.path not in self.later]
        if self._root is None:
            remove_stale_temps(self.dest)
        needed = _needed_bytes(entries)
        free = max(self.free_bytes(self.dest), 0)  # below zero: less than pull's reserve
        if needed > free:
            raise DiskSpaceError(
                f"not enough free disk space to extract {os.path.basename(self.archive)} into "
                f"{self.dest}: needs {format_size(needed)} ({needed} bytes), only "
                f"{format_size(free)} ({free} bytes) free; free some space or extract "
                "elsewhere", needed=needed, free=free)
        files = [e for e in entries if e.kind == "file"]
        if self.kept:
            log.info("extracting %s: %d of its %d members (the others are in place), %s, "
                     "into %s", self.archive, len(entries), len(self.final),
                     format_size(sum(e.size for e in files)), self.dest)
        else:
            log.info("extracting %s: %d members, %s, into %s", self.archive, len(entries),
                     format_size(sum(e.size for e in files)), self.dest)
        self.entries = entries
        if self._root is None:  # (made already by start_temp(): a big zip's workers use it)
            self._make_temp()
        assert self._root is not None
        make_dirs(self._root, entries)
        return files

    @property
    def root(self) -> TempDir:
        """The temporary folder (once :meth:`check` or :meth:`start_temp` made it)."""
        if self._root is None:
            raise RuntimeError("the temporary folder is made by check() or start_temp()")
        return self._root

    @property
    def tmp(self) -> str:
        """The temporary folder's path ("" before it is made): for messages and tests;
        what is inside is reached through :attr:`root`."""
        return self._root.path if self._root is not None else ""

    @property
    def owner_fd(self) -> int:
        """The temporary folder's owner lock (-1 where there is none): whoever writes in the
        folder holds it (see :mod:`.workers`)."""
        return self._owner

    def start_temp(self) -> TempDir:
        """The temporary folder, made before the member list is known (an archive read as
        it arrives: :meth:`adopt` checks the list once it is; a big zip's worker processes
        start with it while its list is read, and :meth:`check` then uses it)."""
        os.makedirs(self.dest, exist_ok=True)
        remove_stale_temps(self.dest)
        self._make_temp()
        assert self._root is not None
        return self._root

    def _make_temp(self) -> None:
        with deferred():  # a Ctrl-C: once close() knows the folder, to remove it
            self._root, self._owner = make_temp(self.dest)
            # A job dropped without close() (a Ctrl-C at the wrong moment) lets go of the
            # folder's lock when it is collected: the next extraction into DEST, in this
            # process too (a notebook), then sweeps the folder as stale.
            self._unlock = weakref.finalize(self, fork_drop.close, self._owner) \
                if self._owner >= 0 else None

    def adopt(self, entries: list[Entry]) -> None:
        """The member list of what was written into the temporary folder already: checked
        as :meth:`check` checks it (the free space was watched while writing)."""
        final = check_members(entries, self.archive)
        check_path_lengths(final, self.dest, self.archive)
        kept = {e.path for e in final}
        for e in entries:  # a leftover check_members leaves out, written already: it goes
            if e.kind == "file" and e.path not in kept:
                os.unlink(e.path, dir_fd=self.root.fd)
        self.final = entries = final
        self._listed()
        self.kept = {}  # an archive read as it arrives is written whole
        self._check_early(entries, written=True)
        for d in sorted({e.path for e in entries if e.kind == "dir"}):
            makedirs_at(self.root, d)
        self.entries = entries

    def finish(self) -> ExtractResult:
        """Step 4 (the files are written): links, folder modes and times, the records, and
        the merge into DEST under the merge lock, checked against DEST as it is then."""
        try:
            finish_tree(self.root, self.entries)
        except SymlinksRefused as exc:
            raise LocalFileError(
                f"cannot extract {self.archive} into {self.dest}: its member {exc.member} is "
                f"a symbolic link, and the file system of {self.dest} refuses them "
                f"({exc.strerror}; a Google Drive mount, FAT or exFAT, some network shares "
                "do); pull into a folder on local disk (e.g. /content/data)") from None
        records = record_members(self.root, self.entries)
        folders = self._folders()
        if self.turn is not None:
            self.turn.wait()  # outside the lock: the archive waited for takes it
        if self.occupied is not None:
            self.occupied.compare(self.root, recheck=True)  # outside the lock: 20,000 files?
        with merge_lock(self.lock_dir):
            self._check_dest(self.entries, written=True)
            adopted = self._adopted()
            left = self.occupied.left if self.occupied is not None else set()
            if self.later:
                left = left | self.later
                self._drop_later()
            if self.occupied is not None:   # (a kill from here on: see .occupied)
                note_merging(self.dest, self.archive, [r for r in records
                                                       if r.path not in adopted and
                                                       r.path not in left], made=folders)
            merge(self.archive, self.root, self.dest,
                  sorted({e.path.split("/", 1)[0] for e in self.entries
                          if e.path not in adopted and e.path not in left}), owned=self.owned)
            made = made_folders(self.dest, folders)
        if left:
            records = [r for r in records if r.path not in left]
            log.info("%d of the members of %s were left as DEST holds them (%s, …): another "
                     "archive pulled after it has them too", len(left), self.archive,
                     min(left))
        if adopted:
            records = [adopted.get(r.path, r) for r in records]
            log.info("%d of the members of %s were in %s already, with the same bytes: "
                     "kept as they are", len(adopted), self.archive, self.dest)
        if self.kept:  # the whole list, in archive order: what was written and what was kept
            written = {r.path: r for r in records}
            records = [self.kept.get(e.path) or written[e.path] for e in self.final
                       if e.path not in left]
        return ExtractResult(archive=self.archive, dest=self.dest, members=records,
                             kept=len(self.kept) + len(adopted), left=sorted(left), made=made)

    def _folders(self) -> list[MemberRecord]:
        """The folders in the temporary folder that the archive does not list (its members'
        paths need them), as records with their inodes: one DEST shows with that inode after
        the merge arrived with it, made by this merge (:func:`made_folders`)."""
        listed = {e.path for e in self.entries if e.kind == "dir"}
        out = []
        for path in sorted(ancestors(e.path for e in self.entries) - listed):
            try:
                st = os.lstat(path, dir_fd=self.root.fd)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                out.append(MemberRecord(path, "dir", 0, st.st_mtime_ns, st.st_ino))
        return out

    def _listed(self) -> None:
        """Tell the turn the final member list (every member, the kept ones too: they are
        where they land)."""
        if self.turn is None:
            return
        paths = [e.path for e in self.final]
        self.turn.listed({e.path for e in self.final if e.kind != "dir"},
                         ancestors(paths).union(e.path for e in self.final
                                                if e.kind == "dir"))

    def _check_early(self, entries: list[Entry], written: bool = False) -> None:
        """:meth:`_check_dest` before the extraction (again when merging). A refusal waits
        for the turn first: what an earlier archive of the pull put in DEST is then named
        by the turn (its folder where this one has a file), not "move that folder away"."""
        try:
            self._check_dest(entries, written)
        except UserFilesError:
            if self.turn is None:
                raise
            self.turn.wait()   # an earlier archive of the pull merged there: its stamp says so
            self._check_dest(entries, written)
        except ArchiveError:
            if self.turn is not None:
                self.turn.wait()
            raise

    def _drop_later(self) -> None:
        """Remove the members :attr:`later` names from the temporary folder (what the merge
        moves in is what is left there)."""
        for path in self.later:
            try:
                os.unlink(path, dir_fd=self.root.fd)
            except FileNotFoundError:
                pass

    def _held(self, paths: Collection[str]) -> Collection[str]:
        """Of ``paths`` (where DEST holds something already), the file and link members a
        later archive of the pull holds (:meth:`Turn.held`). Not a hard link's target, nor
        a hard link (its group goes whole)."""
        if self.turn is None:
            return ()
        kinds = {e.path: e.kind for e in self.final}
        targets = {e.target for e in self.final if e.kind == "hardlink"}
        leavable = [p for p in paths
                    if kinds.get(p) in ("file", "symlink") and p not in targets]
        return self.turn.held(leavable) if leavable else ()

    def _inside(self, paths: Iterable[str]) -> set[str]:
        """``paths`` inside DEST, relative, with "/" (those outside it left out)."""
        inside = (os.path.relpath(os.path.abspath(p), self.dest).replace(os.sep, "/")
                  for p in paths)
        return {p for p in inside if p != "." and not p.startswith("../")}

    def _check_dest(self, entries: list[Entry], written: bool = False) -> None:
        """The checks against DEST, and no member at (or under) a protected file: it would
        replace a verified copy its stamp describes, and each rerun would stage both again;
        no file member where a protected folder is (the pull's folder from Drive).
        ``written``: the members are in the temporary folder already."""
        for e in entries if self.folders else ():
            if e.kind != "dir" and e.path in self.folders:
                raise ArchiveError(
                    f"member {e.path!r} of {os.path.basename(self.archive)} is a file, but "
                    f"{os.path.join(self.dest, *e.path.split('/'))} is a folder the pull "
                    "stages from Drive; refusing the archive: rename that member, or that "
                    "folder on Drive")
        paths = [e.path for e in entries]
        if self.protected and not self.protected.isdisjoint(ancestors(paths).union(paths)):
            for e in entries:  # which member, as the message names the first one
                parts = e.path.split("/")
                for i in range(1, len(parts) + 1):
                    if "/".join(parts[:i]) in self.protected:
                        staged = os.path.join(self.dest, *parts[:i])
                        raise ArchiveError(
                            f"member {e.path!r} of {os.path.basename(self.archive)} would "
                            f"replace {staged}, a file staged from Drive (the archive itself "
                            "or another download); refusing the archive: rename that member, "
                            "or that file on Drive")
        if self.later:   # (only grows: one left once is not written this time)
            entries = [e for e in entries if e.path not in self.later]
        self._asked.append(entries)
        plan = check_against_dest(self.archive, self.dest, entries, self.owned,
                                  later=self._held if self.turn is not None else None)
        self.later.update(plan.later)
        if self.occupied is not None:
            self.occupied.check(plan.tree, plan.occupied, skip=self.owned,
                                written=self.root if written else None)

    def _adopted(self) -> dict[str, MemberRecord]:
        """Under the merge lock: the members DEST holds already (any that appeared since
        :meth:`finish` compared them are compared now), which the merge leaves as they are."""
        if self.occupied is None:
            return {}
        self.occupied.compare(self.root)
        self.occupied.drop_copies(self.root)
        return self.occupied.adopted

    def close(self) -> None:
        """Remove the temporary folder (whatever the merge did not move); a Ctrl-C waits
        for it (:func:`~drivestage.interrupts.deferred`). The member tree cached for the
        check and the merge is released."""
        asked, self._asked = self._asked, []
        release_tree(asked)
        with deferred():
            if self._unlock is not None:
                self._unlock.detach()  # closed below, once the folder is empty
                self._unlock = None
            owner, self._owner = self._owner, -1
            if self._root is not None:
                root, self._root = self._root, None
                remove_temp(root, owner)  # closes the lock once the folder is empty
            elif owner >= 0:
                fork_drop.close(owner)


def keep_in_place(entries: list[Entry], records: Mapping[str, MemberRecord]
                  ) -> dict[str, MemberRecord]:
    """Of ``records`` (members in place in DEST, written by an earlier extraction of this
    archive: a rerun that puts back a member deleted by hand), those that describe the
    member ``entries`` (the checked list) has at that path: same kind, a file's size, a
    link's target. A group of hard links is kept only whole (a link is made to a file in
    the temporary folder). Whatever is not kept is written."""
    by_path = {e.path: e for e in entries}
    kept: dict[str, MemberRecord] = {}
    for path, rec in records.items():
        e = by_path.get(path)
        if e is None or rec.path != path:
            continue
        kind = "file" if e.kind == "hardlink" else e.kind
        if kind != rec.kind or (e.kind == "file" and e.size != rec.size) or \
                (e.kind == "symlink" and e.target != rec.target):
            continue
        kept[path] = rec
    groups: dict[str, list[str]] = {}
    for e in entries:
        if e.kind == "hardlink":
            groups.setdefault(e.target, [e.target]).append(e.path)
    for group in groups.values():
        if any(p not in kept for p in group):
            for p in group:
                kept.pop(p, None)
    return kept


def check_against_dest(archive: str, dest: str, entries: list[Entry],
                       owned: Owned = NOTHING,
                       later: Optional[Callable[[Collection[str]], Collection[str]]] = None
                       ) -> Plan:
    """The checks that depend on DEST as it is now (folders, links); ``owned``: see
    :class:`Job`'s ``replaceable``. ``later``: of the member paths where DEST holds
    something, those a later archive of the pull holds (asked only for those, once): left
    out of the plan (:attr:`Plan.later`). Returns the merge's plan."""
    plan = plan_merge(archive, dest, entries, owned, lenient=later is not None)
    if later is not None:
        asked = [*plan.clashes, *plan.occupied]
        held = frozenset(later(asked)) if asked else frozenset()
        if held:
            entries = [e for e in entries if e.path not in held]
            plan = plan_merge(archive, dest, entries, owned)   # (a clash not held: refused)
            plan.later = held
        elif plan.clashes:
            raise folder_error(archive, dest, plan.clashes[0])
    judge_links(archive, dest, entries, plan.tree, plan.kept, plan.replaces_links)
    return plan


def made_folders(dest: str, folders: list[MemberRecord]) -> list[MemberRecord]:
    """Of ``folders`` (records of folders in a merge's temporary folder), those DEST holds
    now as that very folder (device and inode, reached through real folders of DEST): the
    merge moved it in, so the pull made it; one DEST had already (the user's, another
    archive's) keeps its own inode."""
    if not folders:
        return []
    try:
        dev = os.stat(dest).st_dev
    except OSError:
        return []
    out = []
    for rec in folders:
        try:
            st = os.lstat(os.path.join(dest, *rec.path.split("/")))
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode) and (st.st_dev, st.st_ino) == (dev, rec.ino):
            out.append(rec)
    return out


def _default_free_bytes(path: str) -> int:
    return shutil.disk_usage(path).free


def _needed_bytes(entries: list[Entry]) -> int:
    files = sum(-(-e.size // _BLOCK) * _BLOCK for e in entries if e.kind == "file")
    return files + _BLOCK * sum(1 for e in entries if e.kind == "dir")
