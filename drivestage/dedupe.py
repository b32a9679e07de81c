"""Merging same-named folders: ``drivestage dedupe``.

Drive allows two folders of one name in one folder. Two machines that push into a brand-new
path while Drive's listing lags both make it; every push then writes into the oldest
(:mod:`drivestage.drive.folders`) and every read of the path (``pull``, ``ls``, a resume
from Drive) refuses it, naming the ids. :func:`dedupe` merges each newer folder into the
oldest, on the way to a path and everywhere below it, as a user would by hand:

- an item whose name is free in the oldest is moved there (one request; its id, bytes and
  sharing stay as they were);
- a same-named folder on both sides is merged the same way, level by level;
- a file whose name the oldest already holds *with the same bytes* (md5 and size) is a copy:
  it goes to the trash; one also in another folder (a second parent kept from before 2020)
  is only taken out of the newer folder, and stays in the other;
- any other item of a name the oldest holds is a **conflict** and stays where it is: which of
  two different ``epoch_001.pt`` is wanted is not ours to decide. Nothing is ever deleted
  for good, and nothing is renamed;
- an item in the oldest *and* a newer folder (two parents, as Drive allowed until 2020) only
  leaves the newer one: it is never a copy of itself;
- an item Drive does not let this account move or trash (someone else's, a shared drive's
  Contributor) stays, said so; the rest is merged all the same;
- an item gone when its turn comes (deleted or trashed meanwhile by someone else: Drive
  answers 404 and a files.get confirms it) is skipped, said so; the rest is merged;
- a duplicate left empty goes to the trash (Drive keeps it 30 days). One with a conflict
  stays, so the command can be run again once the user chose.

Run it while nothing pushes into the path: an item another push adds to a duplicate after
its last listing would go to the trash with it (still in Drive's trash, not lost). A pair
of which either folder is held by a live training run (its lease claim,
:mod:`drivestage.run_claims`) is refused before anything of it moves, in one line (exit 1):
merged under the run, its claim left the folder it renews it in, and the folder it pushes
into by id went to the trash with what it sent next (guards41). A newer folder's claims (no
run's, then) go to the trash, never into the oldest: a run started there meanwhile read a
moved one, dated by its move, of a higher generation as a take-over (attacklease42).
"""
from __future__ import annotations

import logging
from typing import Sequence

from drivestage import run_claims, run_folders, walk_clock
from drivestage.dedupe_result import Conflict, DedupeResult, Merge, plural as _plural
from drivestage.errors import DanglingShortcutError, DriveStageError, NotFoundError, \
    PermissionDeniedError, StaysElsewhereError, UsageError, WebPageRefusalError
from drivestage.remote import Where, open_store
from drivestage.paths import StorePath
from drivestage.store import RemoteEntry, RemoteStore

log = logging.getLogger(__name__)

#: Drive's own limit of nested folders (in a shared drive): a walk deeper than this is a
#: cycle or a lie, and stops.
MAX_DEPTH = 100


def _outside(item: RemoteEntry, folder: RemoteEntry) -> bool:
    """Whether ``item`` (listed in ``folder``) is in another folder too, as its listing says
    (a shortcut is only itself: trashing it leaves its target)."""
    return not item.linked and any(p != folder.id for p in item.parent_ids)


def dedupe(where: Where, *, dry_run: bool = False) -> DedupeResult:
    """Merge same-named folders on the way to ``where`` (a ``drive:`` folder) and below it
    into the oldest of each name (see the module doc). ``dry_run``: list, change nothing."""
    store, path = open_store(where)
    return _Dedupe(store, dry_run).run(path)


class _Dedupe:
    def __init__(self, store: RemoteStore, dry_run: bool):
        self.store = store
        self.result = DedupeResult(dry_run=dry_run)
        self.dry_run = dry_run
        self.seen: set[str] = set()   # folders walked: a folder shortcut never leads back
        #: Items this run moved into each folder (by its id), and the ids it moved out of a
        #: newer folder or trashed: Drive's listing may not show either for a while, and a
        #: name moved in a moment ago is held all the same (a second newer folder's item of
        #: that name is a copy or a conflict, never moved in beside it).
        self.moved_in: dict[str, list[RemoteEntry]] = {}
        self.gone: set[str] = set()
        #: The folders above the pair being merged (its claims read too: a mirror into one
        #: of them pushes into the pair: run_claims.refuse_held).
        self.above: list[RemoteEntry] = []

    def run(self, path: StorePath) -> DedupeResult:
        if path.start is None and not path.names:
            # Every folder of the whole drive, merged by name: not what anyone means by it.
            raise UsageError("dedupe needs a folder below the top of the drive (e.g. "
                             "drive:Models/logs), not the whole drive")
        cur = self.store.resolve(StorePath(path.start, (), path.key))
        if path.start is not None:   # (the top of the drive: no one claims it)
            self.above.append(cur)
        # Every listing of the command under one time bound (DRIVESTAGE_LISTING_TIMEOUT), as
        # a pull's walk: a tree of many folders, each listed slowly and within the bound,
        # took it once per folder (walk51). Named by the folder reached so far.
        clock = walk_clock.WalkClock(self.store.describe(cur))
        with walk_clock.walking(clock):
            for name in path.names:
                clock.where = self._where(cur, name)
                cur = self._step(cur, name)
                self.above.append(cur)
            self._walk(cur, 0)
        return self.result

    def _step(self, parent: RemoteEntry, name: str) -> RemoteEntry:
        """The folder ``name`` in ``parent``, its same-named folders merged into it first."""
        where = self._where(parent, name)
        same = [e for e in self.store.list(parent) if e.name == name]
        found = [e for e in same if _is_folder(e)]
        if not found and len(same) == 1 and same[0].is_dir and not same[0].unreadable:
            # A shortcut to a folder on the way (Colab's "Add shortcut to Drive"): followed,
            # as push, pull and ls follow it; it was "not a folder". Never merged itself.
            return same[0]
        if not found:
            if same:
                raise UsageError(f"{where} is not a folder; dedupe merges folders")
            # Worded as ls, pull and push word it: which name is missing, and from where.
            raise NotFoundError(f"{where} not found (no item named {name!r} in "
                                f"{self.store.describe(parent)}; names are case-sensitive)")
        return self._merge_all(found, where, 0)

    def _walk(self, folder: RemoteEntry, depth: int) -> None:
        """Merge same-named folders anywhere below ``folder``."""
        if folder.id in self.seen:
            return
        if depth > MAX_DEPTH:  # not silently: the tree below would read as merged (exit 0)
            raise _too_deep(self._where(folder, "").rstrip("/"))
        self.seen.add(folder.id)
        groups: dict[str, list[RemoteEntry]] = {}
        # With what this run moved in a moment ago: the duplicates inside a folder moved
        # here, which a lagging listing did not show yet, were never merged (exit 0).
        for e in self._listed(folder):
            if _is_folder(e):
                groups.setdefault(e.name, []).append(e)
        for name, found in sorted(groups.items()):
            merged = self._merge_all(found, self._where(folder, name), depth + 1)
            self.above.append(merged)
            try:
                self._walk(merged, depth + 1)
            finally:
                self.above.pop()

    def _merge_all(self, found: Sequence[RemoteEntry], where: str, depth: int) -> RemoteEntry:
        """The oldest of ``found`` (same-named folders), the others merged into it."""
        into = oldest(found)
        for dup in sorted((e for e in found if e.id != into.id), key=_age):
            self._merge_one(into, dup, where, depth)
        return into

    def _merge_one(self, into: RemoteEntry, dup: RemoteEntry, where: str, depth: int) -> bool:
        """Merge ``dup`` into ``into``, noting what became of it; whether ``dup`` is gone
        (nothing held it back)."""
        merge = Merge(where, dup.id, into.id)
        self.result.merged.append(merge)
        before = self.result._left()
        merge.gone = self._merge(into, dup, where, depth)
        after = self.result._left()
        merge.left = {k: after[k] - before[k] for k in after if after[k] > before[k]}
        return merge.gone

    def _merge(self, into: RemoteEntry, dup: RemoteEntry, where: str, depth: int) -> bool:
        """Move what ``dup`` holds into ``into``; trash ``dup`` once a listing shows it empty.
        Whether ``dup`` is gone."""
        if depth > MAX_DEPTH:
            raise _too_deep(where)
        theirs, ours = self.store.list(dup), self._listed(into)
        # Either held by a live training run (its lease claim): nothing of the pair moves
        # (its claim would leave the folder it renews it in, and a folder it pushes into by
        # id would go to the trash with what it sends next: run_claims).
        run_claims.refuse_held(self.store, [(into, ours), (dup, theirs)], "merging it",
                               self.above)
        if not self.dry_run:
            run_folders.carry(self.store, dup, into)   # before its checkpoints move
        held: dict[str, list[RemoteEntry]] = {}
        for e in ours:
            held.setdefault(e.name, []).append(e)
        left = False
        for item in theirs:
            item_where = f"{where}/{item.name}"
            same = held.get(item.name, [])
            if not item.is_dir and run_claims.is_claim(item.name):
                # A claim holds its own folder only, and none here is live (refuse_held):
                # moved, the move dated it now, and its generation read as a take-over to a
                # run that started in the oldest meanwhile (attacklease42).
                log.info("%s (id %s) is a lease claim no run holds: to the trash",
                         item_where, item.id)
                left |= self._trash(item, item_where, dup.id) == _REFUSED
            elif any(e.id == item.id for e in same):
                # This very item is in the oldest too (a second parent, as Drive allowed
                # until 2020): never a copy of itself, whose trashing takes it out of both;
                # never a folder merged into itself. Moving it takes ``dup`` off its parents.
                log.info("%s (id %s) is in %s as well: taken out of %s", item_where,
                         item.id, into.id, dup.id)
                left |= self._move(item, dup, into, item_where) == _REFUSED
            elif not same:
                log.info("moving %s (id %s) into %s", item_where, item.id, into.id)
                done = self._move(item, dup, into, item_where)
                if done == _DONE:
                    # Held there now: a second item of that name in ``dup`` is a copy or a
                    # conflict, never a second one moved in beside it.
                    held[item.name] = [item]
                left |= done == _REFUSED
            elif _is_folder(item) and all(_is_folder(e) for e in same):
                left |= not self._merge_one(oldest(same), item, item_where, depth + 1)
            elif _copy_of(item, same):
                log.info("%s (id %s) has the same bytes as the one in %s: to the trash, or "
                         "out of this folder only where it is in another too", item_where,
                         item.id, into.id)
                left |= self._drop_copy(item, item_where, dup, into)
            else:
                log.warning("%s (id %s) stays: the oldest folder (id %s) holds another item "
                            "of that name", item_where, item.id, into.id)
                self.result.conflicts.append(Conflict(item_where, dup.id, into.id))
                left = True
        if left:
            return False
        return self._trash_if_empty(dup, where)

    def _listed(self, folder: RemoteEntry) -> list[RemoteEntry]:
        """What ``folder`` holds: its listing, and what this run moved into it (which Drive's
        listing may not show for a while)."""
        listed = self.store.list(folder)
        ids = {e.id for e in listed}
        return listed + [e for e in self.moved_in.get(folder.id, []) if e.id not in ids]

    def _move(self, item: RemoteEntry, dup: RemoteEntry, into: RemoteEntry, where: str) -> str:
        """Move ``item`` from ``dup`` into ``into``: ``_DONE``, ``_REFUSED`` (Drive refused
        it) or ``_VANISHED`` (gone meanwhile)."""
        if not self.dry_run:
            try:
                self.store.move(item, dup, into)
            except WebPageRefusalError:
                raise   # a network filter's page, not Drive's: every request after meets it
            except PermissionDeniedError as exc:
                return self._refuse(item, where, dup.id, str(exc))
            except NotFoundError as exc:
                return self._vanished(item, where, dup.id, exc)
        self.moved_in.setdefault(into.id, []).append(item)
        self.gone.add(item.id)
        self.result.moved += 1
        return _DONE

    def _drop_copy(self, item: RemoteEntry, where: str, dup: RemoteEntry,
                   into: RemoteEntry) -> bool:
        """Take the same-bytes copy ``item`` out of ``dup``: to the trash, or, where it is
        also in another folder (a second parent kept from before 2020), out of ``dup`` only
        (:meth:`~drivestage.store.RemoteStore.take_out`; it stays there): the trash took it
        from ``Archive`` too (attackout38), and keeping it left ``dup`` unmerged. Whether it
        stays in ``dup`` (Drive refused, said)."""
        if self.dry_run or (not item.removable and not _outside(item, dup)):
            done = self._trash(item, where, dup.id)   # (dry: nothing done; or refused)
            if done == _DONE and _outside(item, dup):
                self.result.copies_taken_out += 1
            elif done == _DONE:
                self.result.copies_trashed += 1
            return done == _REFUSED
        try:
            taken = self.store.take_out(item, trash=True)
        except StaysElsewhereError:   # (Drive refused taking it out only: the store said)
            self.result.elsewhere.append(Conflict(where, dup.id, into.id))
            return True
        except WebPageRefusalError:
            raise
        except PermissionDeniedError as exc:
            return self._refuse(item, where, dup.id, str(exc)) == _REFUSED
        except NotFoundError as exc:
            return self._vanished(item, where, dup.id, exc) == _REFUSED
        self.gone.add(item.id)
        if taken == "stays":
            self.result.copies_taken_out += 1
        elif taken == "placed":
            self.result.copies_placed += 1
        else:
            self.result.copies_trashed += 1
        return False

    def _trash(self, item: RemoteEntry, where: str, folder_id: str) -> str:
        """Move ``item`` (in ``folder_id``) to the trash: ``_DONE``, ``_REFUSED`` where this
        account may not, ``_VANISHED`` where it is gone already.
        One item refused (someone else's file or folder) stopped the whole run, at the same
        item on every run: the rest was never merged. Now it stays, said so, and the rest is
        merged; Drive's capabilities say so beforehand, which spares the request."""
        if not item.removable:
            return self._refuse(item, where, folder_id, "Drive says this account may not "
                                "move it to the trash")
        if not self.dry_run:
            try:
                self.store.delete(item, trash=True)
            except WebPageRefusalError:
                raise
            except PermissionDeniedError as exc:
                return self._refuse(item, where, folder_id, str(exc))
            except NotFoundError as exc:
                return self._vanished(item, where, folder_id, exc)
        self.gone.add(item.id)
        return _DONE

    def _refuse(self, item: RemoteEntry, where: str, folder_id: str, why: str) -> str:
        log.warning("%s (id %s) stays: %s", where, item.id, why)
        self.result.refused.append(Conflict(where, folder_id, ""))
        return _REFUSED

    def _vanished(self, item: RemoteEntry, where: str, folder_id: str,
                  exc: NotFoundError) -> str:
        """``_VANISHED`` when a files.get confirms ``item`` gone after Drive's 404 (someone
        deleted or trashed it meanwhile): skipped, said so. The 404 stopped the whole run.
        A 404 for an item still there (a resource key Drive wants, the oldest folder gone
        meanwhile, a server's mistake) raises it as before: skipping would hide it, and
        its folder, holding it, would go to the trash with it."""
        try:
            self.store.stat(item)
        except DanglingShortcutError:
            raise exc from None   # the shortcut is there; its target is not
        except NotFoundError:
            log.warning("%s (id %s) was gone when dedupe came to it (deleted or trashed "
                        "meanwhile): skipped", where, item.id)
            self.result.vanished.append(Conflict(where, folder_id, ""))
            self.gone.add(item.id)   # a lagging listing may still show it: not "arrived"
            return _VANISHED
        raise exc

    def _trash_if_empty(self, dup: RemoteEntry, where: str) -> bool:
        if not self.dry_run:
            # Looked at again, not assumed: an item that reached it meanwhile keeps it.
            # What this run moved out or trashed may still be listed there for a moment.
            still = [e for e in self.store.list(dup) if e.id not in self.gone]
            if still:
                log.warning("%s (id %s) is not empty after the merge (%s arrived meanwhile?); "
                            "it stays: run dedupe again", where, dup.id,
                            ", ".join(sorted(e.name for e in still)[:3]))
                self.result.arrived.extend(Conflict(f"{where}/{e.name}", dup.id, "")
                                           for e in still)
                return False
        done = self._trash(dup, where, dup.id)
        if done == _DONE:
            log.info("%s (id %s) is empty: to the trash", where, dup.id)
            self.result.folders_trashed += 1
        return done != _REFUSED

    def _where(self, parent: RemoteEntry, name: str) -> str:
        base = self.store.describe(parent).rstrip("/")
        return f"{base}{'' if base.endswith(':') else '/'}{name}"


#: What became of one move or trash (:meth:`_Dedupe._move`, :meth:`_Dedupe._trash`).
_DONE, _REFUSED, _VANISHED = "done", "refused", "vanished"


def _too_deep(where: str) -> DriveStageError:
    return DriveStageError(f"{where}: folders nested more than {MAX_DEPTH} deep; Drive allows "
                           "no more, so this is a cycle or a server that is not Drive: stopped")


def oldest(found: Sequence[RemoteEntry]) -> RemoteEntry:
    """Of same-named folders, the one every push takes (the oldest, then the lowest id)."""
    return min(found, key=_age)


def pick_folder(found: list[RemoteEntry], where: str) -> RemoteEntry:
    """The folder a push writes into of same-named ``found`` (:func:`oldest`, so every push
    on every machine agrees: the rule :meth:`~drivestage.drive.store.DriveStore.make_folders`
    uses), with a warning saying what to do when there are several."""
    chosen = oldest(found)
    if len(found) > 1 and any(e.linked for e in found):
        log.warning("%s: %d folders have this name (ids %s), a folder and a shortcut to one; "
                    "pushing into %s, the oldest. Rename one of them on Drive: until then "
                    "`pull` refuses this path", where, len(found),
                    ", ".join(sorted(e.id for e in found)), chosen.id)
    elif len(found) > 1:
        log.warning("%s: %d folders have this name (ids %s), probably made by two pushes "
                    "from different machines at once; pushing into %s, the oldest. Until "
                    "they are one, `pull` refuses this path: `drivestage dedupe %s` merges "
                    "them", where, len(found), ", ".join(sorted(e.id for e in found)),
                    chosen.id, where)
    return chosen


def _age(e: RemoteEntry) -> tuple[float, str]:
    return (e.created, e.id)


def _is_folder(e: RemoteEntry) -> bool:
    """A folder that lives here (a shortcut to one is an item like a file: moved as one)."""
    return e.is_dir and not e.linked


def _copy_of(item: RemoteEntry, same: Sequence[RemoteEntry]) -> bool:
    """Whether ``item`` is a file whose bytes one of ``same`` (files of its name) holds."""
    if item.is_dir or item.linked or not item.md5:
        return False
    return any(not e.is_dir and not e.linked and e.md5 == item.md5 and e.size == item.size
               for e in same)
