"""``push --delete``: the remote files and folders that are not in SRC.

Decided and counted before a byte is sent (:func:`decide`), removed after every upload was
verified (:func:`apply`), and guarded:

* never into the top of a drive (My Drive, a shared drive): :func:`check_dest`;
* moved to the trash (Drive keeps it 30 days; it counts toward the quota) unless
  ``Removal.permanent``;
* refused (:class:`~drivestage.errors.DeletionRefusedError`, nothing sent or deleted) when it
  would remove more items than ``Removal.limit``, by default :func:`default_limit`: twice the
  files in SRC plus 10. A remote folder counts with everything it holds;
* filtered-out names are left alone (as rsync does), in a folder SRC lacks too (it goes
  whole only when everything in it passes the filters), so are links push skipped, and in DEST
  itself everything the retention plan keeps, the newest verified checkpoint of every run
  (:func:`drivestage.pruning.newest_verified_ids`) and ``protect``;
* drivestage's own names (:func:`drivestage.paths.is_reserved`: a pull's ``.drivestage``
  state folder in a local DEST) are left alone in a folder SRC has: a push never sends one;
* a folder that holds, anywhere inside, an item SRC has or the push keeps (given it as a
  second parent before 2020's single-parent rule) is left whole: its removal takes all it
  holds. Each folder is listed once per decision (:class:`Listings`), however many paths
  lead to it, and two folders each inside the other end the walk (walk37).
* an item also in a folder the push does not remove (outside DEST, or one it leaves: a second
  parent from before 2020) is left, and a folder that holds one at any depth: what else that
  folder holds goes item by item, said in one line (:mod:`drivestage.other_parents`,
  outside38).
"""
from __future__ import annotations

import collections
import dataclasses
import logging
import weakref
from dataclasses import dataclass
from typing import Callable, Collection, Mapping, MutableMapping, Optional, Sequence, Union

from drivestage import other_parents
from drivestage.errors import (DeletionRefusedError, DriveStageError, LeftAloneError,
                               NotFoundError, UsageError)
from drivestage.local_tree import LocalTree, wanted
from drivestage.paths import StorePath, is_reserved, matches
from drivestage.store import RemoteEntry, RemoteStore

log = logging.getLogger(__name__)

#: The folders said to be left whole for a run folder in them, per store (a mirror: once).
_said: "MutableMapping[RemoteStore, set[object]]" = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Removal:
    """How ``--delete`` removes: permanently or to the trash, and at most how many items
    (None: :func:`default_limit`)."""

    permanent: bool = False
    limit: Optional[int] = None


@dataclass(frozen=True)
class Doomed:
    """A remote file or folder that is not in SRC."""

    rel: str
    entry: RemoteEntry


@dataclass(frozen=True)
class Deletions:
    """What ``--delete`` removes, and how many items that is (folders with what they hold).
    ``removed_from``: for an item with several parents, the folders its removal takes it out
    of that the plan reckoned with (:func:`drivestage.other_parents.removed_from`), for the
    store's check before each deletion; ``listed``: the decision's listings (what the items
    removed in the end count, no request more); ``folders``: DEST's folders by path (what
    ``removed_from`` is told again once the folders it names went, or not)."""

    doomed: list[Doomed]
    items: int
    removed_from: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)
    listed: Optional["Listings"] = dataclasses.field(default=None, compare=False)
    folders: Mapping[str, set[str]] = dataclasses.field(default_factory=dict, compare=False)


def default_limit(src_files: int) -> int:
    """The most items ``--delete`` removes without ``--max-delete``: a push that would delete
    more than twice what it sends (plus 10) is far more likely a wrong SRC or DEST than a
    tidy-up."""
    return 2 * src_files + 10


def check_dest(store: RemoteStore, root: RemoteEntry, path: StorePath) -> None:
    """Refuse ``--delete`` into a folder without a parent: the top of My Drive or of a shared
    drive (``push EMPTY drive: --delete`` would empty the drive). ``root`` is what ``path``
    resolved to (a path with names is below some folder). A folder shared with you, given by
    id, shows no parent either and is refused too: its metadata cannot tell it from the top of
    someone's drive, while ``drive:shared-with-me/<name>`` names it as one folder. A path
    through a shortcut to the top of a drive is refused like the top itself (``root.top``)."""
    if (not path.names and root.parent_id is None) or root.top:
        where = store.describe(root)
        raise UsageError(f"refusing --delete into {where.rstrip('/') or where}: it has no "
                         "parent folder you can see (the top of My Drive or of a shared drive, "
                         "a shortcut to one, or a folder shared with you), and --delete would remove everything "
                         "there that is not in SRC. Push into a folder below it instead "
                         "(e.g. drive:Models/logs); a folder shared with you: address it as "
                         "drive:shared-with-me/<its name>, where its place is known")


def decide(store: RemoteStore, root: RemoteEntry, listing: Mapping[str, Mapping[str, list[RemoteEntry]]],
           tree: LocalTree, removal: Removal, *, kept: set[str], protect: set[str],
           include: Sequence[str], exclude: Sequence[str],
           marked: Callable[[RemoteEntry], bool] = lambda e: False) -> Deletions:
    """What ``--delete`` removes, checked against the limit before anything happens; never
    a store file whose id is in ``kept`` (in any folder), nor a top-level name in ``protect``,
    nor a folder ``marked`` (a run folder: :mod:`drivestage.run_folders`) or one that holds
    one at any depth (left whole)."""
    # A skipped link stands for a file or a folder SRC has, only not followed this time; a
    # path the walk could not read, for one SRC may have: nothing at or under it goes (unread).
    local_files = {lf.rel for lf in tree.files} | set(tree.skipped_links) | tree.unread_rels
    local_folders = set(tree.folders) | set(tree.skipped_links) | tree.unread_rels
    doomed: list[Doomed] = []
    # Each folder listed once for this decision, however many paths lead to it (walk37).
    listed = Listings(store)
    walked: dict[str, Optional[bool]] = {}
    # What a folder shortcut inside DEST leads to is someone else's folder, not DEST: its
    # contents are never removed (the shortcut itself may be).
    linked = {(f"{folder_rel}/{name}" if folder_rel else name)
              for folder_rel, index in listing.items() for name, entries in index.items()
              if any(e.is_dir and e.linked for e in entries)} | tree.unread_rels
    # What SRC has on the store, and what the push keeps: a folder it removes may hold one
    # of them too, given it as a second parent before 2020; trashed, it took that along
    # (the files just pushed with it: walk37).
    held = set(kept) | {root.id} | {
        e.id for folder_rel, index in listing.items() for name, entries in index.items()
        for e in entries
        if (f"{folder_rel}/{name}" if folder_rel else name) in (
            local_folders if e.is_dir else local_files)}
    for folder_rel, index in listing.items():
        if _below(folder_rel, linked):
            continue
        for name, entries in index.items():
            if is_reserved(name):
                continue   # drivestage's own (a pull's stamps and locks): SRC never has one
            rel = f"{folder_rel}/{name}" if folder_rel else name
            for e in entries:
                if e.is_dir:
                    if rel in local_folders or matches(rel, exclude):
                        continue
                elif rel in local_files or not wanted(rel, include, exclude):
                    continue
                if e.id in kept or (folder_rel == "" and name in protect):  # (ids: anywhere)
                    continue
                if e.is_dir and (include or exclude) and not e.linked:
                    doomed.extend(_filtered(listed, rel, e, held, include, exclude, marked,
                                            walked))
                    continue
                doomed.append(Doomed(rel, e))
    limit = removal.limit if removal.limit is not None else default_limit(len(tree.files))
    doomed, total, exact = _count(listed, doomed, limit, marked, held)
    folders = _folders(root, listing)
    if exact:   # (else refused below: what goes is not known whole, nor needed)
        doomed, total = _spare(listed, root, folders, doomed, total)
    if total > limit:
        where = store.describe(root)
        how_many = f"{total} item{'' if total == 1 else 's'}"
        how_many = how_many if exact else f"at least {how_many}"
        why = (f"more than --max-delete {removal.limit} allows" if removal.limit is not None
               else f"far more than the {len(tree.files)} files in SRC (at most {limit} "
                    "without asking)")
        raise DeletionRefusedError(
            f"push --delete would remove {how_many} from {where}, {why}; nothing was sent or "
            f"deleted. Check SRC and DEST, or allow it with --max-delete {total}", count=total)
    going = [(d.rel, d.entry) for d in doomed]
    return Deletions(doomed, total, other_parents.removed_from(listed, going, folders,
                                                               listed.cached), listed, folders)


def _folders(root: RemoteEntry, listing: Mapping[str, Mapping[str, list[RemoteEntry]]]
             ) -> dict[str, set[str]]:
    """The ids of DEST's folders the push listed and those in them, by path (``""``: DEST)."""
    folders: dict[str, set[str]] = {"": {root.id}}
    for folder_rel, index in listing.items():
        for name, entries in index.items():
            ids = {e.id for e in entries if e.is_dir and not e.linked}
            if ids:
                folders.setdefault(f"{folder_rel}/{name}" if folder_rel else name, set()).update(ids)
    return folders


def _spare(listed: "Listings", root: RemoteEntry, folders: Mapping[str, set[str]],
           doomed: list[Doomed], total: int) -> tuple[list[Doomed], int]:
    """``doomed`` less what would take along an item also in a folder the push does not
    remove (:func:`drivestage.other_parents.spare`, on the listings made: no request more),
    said once per store and item, and the items that removes."""
    going, kept = other_parents.spare(listed, [(d.rel, d.entry) for d in doomed], folders,
                                      listed.cached)
    fresh = _reread(listed.store, kept)
    if fresh:   # (decided again on what the items are in now: one taken out is not inside)
        def now(entries: list[RemoteEntry], folder_id: str) -> list[RemoteEntry]:
            return [fresh.get(e.id, e) for e in entries
                    if e.id not in fresh or folder_id in fresh[e.id].parent_ids]
        going, kept = other_parents.spare(
            lambda f: now(listed(f), f.id),
            [(d.rel, fresh.get(d.entry.id, d.entry)) for d in doomed], folders,
            lambda i: now(listed.cached(i), i))
    if not kept:   # (nothing spared: all of doomed goes, as counted)
        return [Doomed(rel, e) for rel, e in going], total
    store = listed.store
    dest = store.describe(root).rstrip("/") or store.describe(root)
    for k in kept:
        if ("outside", k.rel, k.entry.id) not in _said.setdefault(store, set()):
            _said[store].add(("outside", k.rel, k.entry.id))
            log.warning("%s", other_parents.say(k, store.describe, dest))
    return [Doomed(rel, e) for rel, e in going], other_parents.count(listed, going)


def _reread(store: RemoteStore, kept: list[other_parents.Kept]) -> dict[str, RemoteEntry]:
    """The items ``kept`` stands on whose parents a fresh read (one files.get each, only for
    these) shows otherwise than the listing did, by id, with those parents. Drive's listings
    lag: one still showed ``Models/keep`` as a parent of ``logs/old.pt`` that the user had
    just taken out of it, and ``--delete`` kept the file for it (attack22, attackout38). An
    item that cannot be read is kept as listed (nothing is lost; the next push decides)."""
    out: dict[str, RemoteEntry] = {}
    for k in kept:
        item = k.item
        if item is None or item.id in out or item.linked:
            continue
        try:
            now = store.stat(item)
        except DriveStageError as exc:
            log.info("%s kept as listed: %s", store.describe(item), exc)
            continue
        if now.parent_ids and set(now.parent_ids) != set(item.parent_ids):
            out[item.id] = dataclasses.replace(item, parent_ids=now.parent_ids)
    return out


class Listings:
    """A store's folder listings, each asked once per decision, by folder id: a folder with
    two parents inside what ``--delete`` walks (an item Drive kept from before 2020's
    single-parent rule) is reached once for every path to it, 2^depth times in a chain of
    such folders (1,654 listings for 27 folders: walk37), and two folders each inside the
    other (which old Drive allowed) on and on."""

    def __init__(self, store: RemoteStore) -> None:
        self.store = store
        self._by_id: dict[str, list[RemoteEntry]] = {}

    def __call__(self, folder: RemoteEntry) -> list[RemoteEntry]:
        found = self._by_id.get(folder.id)
        if found is None:
            found = self._by_id[folder.id] = self.store.list(folder)
        return found

    def cached(self, folder_id: str) -> list[RemoteEntry]:
        """The folder's children where this decision listed it already, else none (no
        request)."""
        return self._by_id.get(folder_id, [])


def _filtered(listed: Listings, rel: str, folder: RemoteEntry, kept: Collection[str],
              include: Sequence[str], exclude: Sequence[str],
              marked: Callable[[RemoteEntry], bool],
              walked: dict[str, Optional[bool]]) -> list[Doomed]:
    """What ``--delete`` removes of a store folder SRC lacks when ``--include``/``--exclude``
    choose the files: the folder whole where everything in it passes the filters, else only
    what does (the folder, and what the filters left out, stay). It went whole, the files the
    filters left out with it, which the README says ``--delete`` leaves alone (include29).
    A ``marked`` folder (a run folder) is given back whole, for :func:`_count` to leave.

    ``walked``: the folders walked so far (folder id -> whether it went whole; None: its walk
    is under way, a folder inside itself). One reached again adds nothing (what goes of it is
    in the result already, or in a folder that goes whole) and lets the folder it is in go
    whole only where it went whole itself; one inside itself keeps that folder (trashed
    whole, it would take along the folder whose walk left something in it)."""
    store = listed.store
    walked[folder.id] = None
    if marked(folder):
        # A run folder the listing showed no mark on (asked itself): left whole by _count,
        # as without filters. Gone through file by file, every checkpoint of a fresh VM's
        # old runs went (attacksync33).
        walked[folder.id] = True
        return [Doomed(rel, folder)]
    doomed: list[Doomed] = []
    whole = True
    for e in listed(folder):
        sub = f"{rel}/{e.name}"
        if e.id in kept or (e.is_dir and marked(e)) or (
                matches(sub, exclude) if e.is_dir and not e.linked
                else not e.is_dir and not wanted(sub, include, exclude)):
            whole = False
        elif e.is_dir and not e.linked and e.id in walked:
            if walked[e.id] is None:
                _say_cycle(store, e)
            whole = whole and bool(walked[e.id])
        elif e.is_dir and not e.linked:
            inner = _filtered(listed, sub, e, kept, include, exclude, marked, walked)
            whole = whole and inner == [Doomed(sub, e)]
            doomed.extend(inner)
        else:
            doomed.append(Doomed(sub, e))
    walked[folder.id] = whole
    return [Doomed(rel, folder)] if whole else doomed


def _say_cycle(store: RemoteStore, folder: RemoteEntry) -> None:
    """Say once per store that ``folder`` is inside itself: the walk goes on without it."""
    if ("cycle", folder.id) in _said.setdefault(store, set()):
        return
    _said[store].add(("cycle", folder.id))
    log.warning("--delete leaves %s and the folders it is in: it is inside itself (a folder "
                "among its own subfolders, which Drive refuses to make), and with --include/--exclude only what the filters let through in it "
                "goes; move it out of its subfolder on Drive, or delete it there",
                store.describe(folder))


def _below(rel: str, linked: set[str]) -> bool:
    """Whether ``rel`` is one of the ``linked`` folders or inside one."""
    return any(rel == top or rel.startswith(top + "/") for top in linked)


def _count(listed: Listings, doomed: list[Doomed], limit: int,
           marked: Callable[[RemoteEntry], bool],
           held: Collection[str] = ()) -> tuple[list[Doomed], int, bool]:
    """What goes of ``doomed``, and the items removed with it (a folder with all it holds; a
    link only itself): ``(going, count, exact)``; the folders are listed only until the count
    passes ``limit``. A folder that holds a ``marked`` one anywhere inside does not go: a
    run folder's records may not name the folders it sits in now (moved on Drive into one
    SRC lacks, ``drive:runs/archive/exp1``), and a run folder the push listed is left whole
    (run_folders), so is one it did not list. Nor does one that holds an item whose id is
    ``held`` (what SRC has on the store, what the push keeps), given it as a second parent
    before 2020: the removal takes what a folder holds. An item inside two of ``doomed`` (a
    folder with two parents) counts once, and so does one of ``doomed`` removed from two
    folders, item by item (it counted once per path: leftovers39)."""
    store = listed.store
    going: list[Doomed] = []
    counted = {d.entry.id for d in doomed}
    total = len({d.entry.item_id for d in doomed})
    # Paths of each item not yet decided, and the items that go: one left at all its paths
    # leaves the count (each of ``doomed`` counts once, however many paths it goes by; by
    # item_id: two shortcuts to one folder are two items).
    paths = collections.Counter(d.entry.item_id for d in doomed)
    went: set[str] = set()
    for at, d in enumerate(doomed):
        paths[d.entry.item_id] -= 1
        inside = _inside(listed, d.entry, limit - total,
                         lambda e: e.id in held or (e.is_dir and marked(e)), counted)
        if isinstance(inside, RemoteEntry) and inside.id in held:
            if ("held", d.entry.id) not in _said.setdefault(store, set()):
                _said[store].add(("held", d.entry.id))
                log.warning("--delete leaves %s whole: it holds %s too (an item with two "
                            "parents, kept from before 2020), which SRC has or the push keeps; "
                            "its removal would take that along. Take it out of %s on Drive",
                            store.describe(d.entry), store.describe(inside),
                            store.describe(d.entry))
            total -= _left_whole(paths, went, d)
            continue
        if isinstance(inside, RemoteEntry):
            if d.entry.id not in _said.setdefault(store, set()):
                _said[store].add(d.entry.id)
                # (not named `held`: the check above reads that name at each item, and an
                # item SRC has was then looked for in this text: leftovers39)
                what = "is" if inside is d.entry else f"holds {store.describe(inside)},"
                log.warning("--delete leaves %s whole: it %s a run folder (its checkpoints "
                            "are left to that run's own push)", store.describe(d.entry), what)
            total -= _left_whole(paths, went, d)
            continue
        going.append(d)
        went.add(d.entry.item_id)
        total += inside[0]
        if not inside[1]:
            return going + doomed[at + 1:], total, False
    return going, total, True


def _left_whole(paths: "collections.Counter[str]", went: set[str], d: Doomed) -> int:
    """1 where ``d``, left, leaves ``_count``'s count: its item goes by no other path."""
    return int(not paths[d.entry.item_id] and d.entry.item_id not in went)


def _inside(listed: Listings, entry: RemoteEntry, room: int,
            marked: Callable[[RemoteEntry], bool],
            counted: set[str]) -> Union[tuple[int, bool], RemoteEntry]:
    """``(items inside entry, all counted)`` (none in a link), listed only until there are
    more than ``room``; or the first item in it that is ``marked``. Each folder is walked
    once, each item counted once (``counted``: those counted already, added to only when
    ``entry`` goes)."""
    folders = [entry] if entry.is_dir and not entry.linked else []
    if folders and marked(entry):   # (one the listing showed no mark on: asked itself)
        return entry
    walked = {entry.id}
    mine: set[str] = set()
    while folders:
        if len(mine) > room:
            counted |= mine
            return len(mine), False
        children = listed(folders.pop())
        for c in children:
            if marked(c):
                return c
        mine.update(c.id for c in children if c.id not in counted)
        for c in children:
            if c.is_dir and not c.linked and c.id not in walked:
                walked.add(c.id)
                folders.append(c)
    counted |= mine
    return len(mine), True


def apply(store: RemoteStore, root: RemoteEntry, deletions: Deletions,
          removal: Removal, check: Optional[Callable[[], None]] = None
          ) -> tuple[list[str], int]:
    """Remove what :func:`decide` found (after saying how many items go, and where); returns
    their paths, and how many items went as the count line counts them (a folder with what
    it held, an item removed from two folders once: the push's summary, guards40).
    ``check`` (the push's guard) before each removal request: what it raises stops the
    removals there, once what went is said."""
    if not deletions.doomed:
        return [], 0
    how = "permanently" if removal.permanent else f"to {store.trash_place()}"
    one = deletions.items == 1
    log.warning("--delete: removing %d item%s from %s that %s not in SRC (%s)", deletions.items,
                "" if one else "s", store.describe(root), "is" if one else "are", how)
    removed: list[str] = []
    went: list[Doomed] = []
    # An item with several parents goes after the rest, told only the folders that went
    # by then: one also in a folder that goes whole went with the other items of its
    # batch, though that folder was left at its own check (a run marked it meanwhile):
    # the run folder lost it (attackrm39).
    later = [d for d in deletions.doomed if d.entry.id in deletions.removed_from]
    firsts = [d for d in deletions.doomed if d.entry.id not in deletions.removed_from]
    rounds = [(r, False) for r in _rounds(firsts)] + [(r, True) for r in _rounds(later)]
    for doomed, told in rounds:
        # In as few requests as the store can (Drive: batches), each outcome its own.
        outcome: dict[str, Optional[DriveStageError]] = {}
        failed: Optional[BaseException] = None
        try:
            store.delete_many([d.entry for d in doomed], trash=not removal.permanent,
                              removed_from=_went_from(deletions, went, later) if told
                              else {}, check=check, into=outcome)
        except BaseException as stopped:   # (the guard refused midway: what went, said first)
            failed = stopped
        for d in doomed:
            exc = outcome.get(d.entry.id, LookupError())  # (absent: not tried, after a failure)
            if isinstance(exc, (LeftAloneError, LookupError)):
                continue  # changed on Drive since the listing (the store said so): not deleted
            if exc is not None and not isinstance(exc, NotFoundError):  # (gone: goal reached)
                failed = failed or exc
                continue
            removed.append(d.rel)
            went.append(d)
            log.info("deleted %s (not in the local tree)%s", d.rel,
                     "" if removal.permanent else " to the trash")
        if failed is not None:
            raise failed
    return removed, _say_removed(store, root, deletions, went)


def _went_from(deletions: Deletions, went: list[Doomed],
               later: list[Doomed]) -> Mapping[str, frozenset[str]]:
    """``deletions.removed_from`` as it stands once ``went`` went: of the folders that go
    whole, only those that did (on the decision's listings: no request)."""
    if deletions.listed is None:
        return deletions.removed_from
    going = [(d.rel, d.entry) for d in went + later]
    return other_parents.removed_from(deletions.listed, going, deletions.folders,
                                      deletions.listed.cached)


def _say_removed(store: RemoteStore, root: RemoteEntry, deletions: Deletions,
                 went: list[Doomed]) -> int:
    """Where the checks made just before the removals left some of what the count line
    said goes (each said by the store: changed on Drive since the listing, also in a folder
    the plan did not see), one line with the items that did go (folders with what they
    hold, on the decision's listings: no request). The count line is said before those
    checks; it counted items left after it (attackout38). Returns how many went."""
    if deletions.listed is None:
        return len({d.entry.item_id for d in went})
    done = other_parents.count(deletions.listed, [(d.rel, d.entry) for d in went])
    if done >= deletions.items:
        return done
    left = deletions.items - done
    log.warning("--delete: removed %d of those %d items from %s; %d %s left in place (the "
                "lines above say why)", done, deletions.items, store.describe(root), left,
                "was" if left == 1 else "were")
    return done


def _rounds(doomed: list[Doomed]) -> list[list[Doomed]]:
    """``doomed`` in rounds whose entries have distinct ids: a store answers by id, and two
    shortcuts to one folder carry that folder's (one of them went a push: tidy34)."""
    rounds: list[tuple[set[str], list[Doomed]]] = []
    for d in doomed:
        for ids, items in rounds:
            if d.entry.id not in ids:
                break
        else:
            ids, items = set(), []
            rounds.append((ids, items))
        ids.add(d.entry.id)
        items.append(d)
    return [items for _, items in rounds]
