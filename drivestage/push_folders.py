"""The store folders a push writes into: each folder of SRC listed once where the store has
it, made where it does not and the push sends something into it (:func:`list_folders`).

Split from :mod:`drivestage.push_job` at its 500-line cap. A folder of SRC that holds nothing
the push sends (``push --include '*.zip'``: the extracted tree beside the zips) is not made
(:attr:`drivestage.local_tree.LocalTree.made`); where the store has it already, it is still
listed for ``--delete``, which removes the files the filters let through that SRC lacks, and
leaves the folder and what the filters left out (include29)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional, Sequence

from drivestage import walk_clock
from drivestage.dedupe import pick_folder
from drivestage.errors import DriveStageError, ShortcutCycleError
from drivestage.local_tree import LocalTree
from drivestage.old_copies import Listings
from drivestage.paths import StorePath, printable
from drivestage.shell_words import exclude_pattern
from drivestage.store import RemoteEntry, RemoteStore


def index(entries: Iterable[RemoteEntry]) -> dict[str, list[RemoteEntry]]:
    """Entries by name; an item listed twice counts once (it is one file, not a duplicate).
    Two shortcuts to one folder are two items: taken for one, the push saw only the second,
    made the first anew (a copy of each file sent into the folder it leads to), and
    ``--delete`` removed one of them a push (tidy34)."""
    out: dict[str, list[RemoteEntry]] = {}
    for e in {e.item_id: e for e in entries}.values():
        out.setdefault(e.name, []).append(e)
    return out


@dataclass
class Folders:
    """What :func:`list_folders` found: SRC's folders as on the store, how many it made, and
    the clock of the push's walk (what ``--delete`` lists then counts against it too)."""

    remote: dict[str, RemoteEntry] = field(default_factory=dict)
    created: int = 0
    clock: walk_clock.WalkClock = field(default_factory=lambda: walk_clock.WalkClock("DEST"))


def list_folders(store: RemoteStore, root: RemoteEntry, path: StorePath, tree: LocalTree,
                 listing: Listings, *, deleting: bool) -> Folders:
    """One listing per folder, into ``listing`` (a dict others hold: filled in place). A
    folder the push makes is empty: no listing. One it does not make (``tree.made``) is
    listed only for ``--delete`` (``deleting``) and only where the store has it.

    The listings share one bound (:mod:`drivestage.walk_clock`), named by DEST: a listing
    past ``DRIVESTAGE_LISTING_TIMEOUT`` was followed by the next as if nothing happened
    (walk51); the push's own clock where it has one (the listings it makes later count too:
    walk52)."""
    out = Folders({"": root}, clock=walk_clock.current() or
                  walk_clock.WalkClock(store.describe(root)))
    with walk_clock.walking(out.clock):
        _listed(store, root, path, tree, listing, deleting, out)
    return out


def _listed(store: RemoteStore, root: RemoteEntry, path: StorePath, tree: LocalTree,
            listing: Listings, deleting: bool, out: Folders) -> None:
    """:func:`list_folders`' listings, into ``out``, under the walk's clock."""
    taken = {root.id: ""}   # (each store folder by the folder of SRC pushed into it)
    listing[""] = index(store.list(root))
    made = set(tree.made)
    for rel in tree.folders[1:]:
        parent_rel, name = rel.rsplit("/", 1) if "/" in rel else ("", rel)
        parent = out.remote.get(parent_rel)
        if parent is None or not (deleting or rel in made):
            continue  # (a folder above it neither on the store nor made: nor is it)
        found = [e for e in listing[parent_rel].get(name, []) if e.is_dir]
        if found:
            folder = pick_folder(found, f"{store.describe(parent)}/{name}")
            _once(store, taken, out.remote, rel, folder)
            out.remote[rel] = folder
            listing[rel] = index(store.list(folder))
        elif rel in made:
            out.remote[rel] = store.make_folders(
                StorePath(path.start, path.names + tuple(rel.split("/"))))
            _once(store, taken, out.remote, rel, out.remote[rel])
            listing[rel] = {}
            out.created += 1


def _once(store: RemoteStore, taken: dict[str, str], remote: dict[str, RemoteEntry],
          rel: str, folder: RemoteEntry) -> None:
    """Refuse a store folder two folders of SRC lead to (two shortcuts to it in DEST, one to
    DEST itself or to a folder of it): their files would mix in it, each push replacing the
    other's same-named files and ``--delete`` judging it by one of them."""
    first = taken.setdefault(folder.id, rel)
    if first == rel:
        return
    shown = f"SRC's {printable(first)}/" if first else "SRC itself"
    raise ShortcutCycleError(
        f"{store.describe(folder)} is the folder {store.describe(remote[first])} again (a "
        f"shortcut to it, or a folder with two parents): {shown} and {printable(rel)}/ would "
        "both be pushed into it, their files mixed; nothing was uploaded. Remove the extra "
        f"shortcut on Drive, or leave one out (push --exclude {exclude_pattern(rel)})")


def at_path(store: RemoteStore, path: StorePath, remote_folder: Mapping[str, RemoteEntry],
            parents: Sequence[str], folder_rel: str) -> Optional[RemoteEntry]:
    """Of ``parents`` (where a file listed in the folder of ``folder_rel`` sits now), the
    folder the DEST path ``path`` (and ``folder_rel``, whose folder ``remote_folder`` holds)
    leads to: walked up by files.get, each title the path's name, to the path's start
    (:class:`drivestage.push_job.PushJob`'s, split from it at its 500-line cap). A dedupe
    moves a file into the oldest of same-named folders, at that very path (the push follows
    it there); a user moves it to keep it elsewhere (the push leaves it). A dedupe moves a
    file only into a folder older than its own (:func:`drivestage.dedupe.oldest`): a move
    into a newer folder of that name at the path (two machines made DEST at once) is the
    user's, and following it overwrote the log they moved there to keep. A few files.get,
    only for a moved file."""
    names = path.names + (tuple(folder_rel.split("/")) if folder_rel else ())
    try:
        mine: Optional[RemoteEntry] = store.stat(remote_folder[folder_rel])
    except DriveStageError:  # gone or trashed: merged away by a dedupe
        mine = None
    for pid in parents:
        cur, found = pid, None
        try:
            for name in reversed(names):
                up = store.stat(RemoteEntry(id=cur, name=name, is_dir=True))
                if not up.is_dir or up.name != name or up.parent_id is None:
                    break
                found, cur = found or up, up.parent_id
            else:
                top = store.resolve(StorePath(path.start, (), path.key))
                if found is not None and (cur == top.id or cur == store.stat(top).id) \
                        and (mine is None or (found.created, found.id) <
                             (mine.created, mine.id)):
                    return found
        except DriveStageError:  # gone, trashed, unreadable: not where the path leads
            continue
    return None
