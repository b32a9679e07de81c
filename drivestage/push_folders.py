"""The store folders a push writes into: each folder of SRC listed once where the store has
it, made where it does not and the push sends something into it (:func:`list_folders`).

Split from :mod:`drivestage.push_job` at its 500-line cap. A folder of SRC that holds nothing
the push sends (``push --include '*.zip'``: the extracted tree beside the zips) is not made
(:attr:`drivestage.local_tree.LocalTree.made`); where the store has it already, it is still
listed for ``--delete``, which removes the files the filters let through that SRC lacks, and
leaves the folder and what the filters left out (include29)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from drivestage.dedupe import pick_folder
from drivestage.errors import ShortcutCycleError
from drivestage.local_tree import LocalTree
from drivestage.old_copies import Listings
from drivestage.paths import StorePath, exclude_pattern, printable
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
    """What :func:`list_folders` found: SRC's folders as on the store, and how many it made."""

    remote: dict[str, RemoteEntry] = field(default_factory=dict)
    created: int = 0


def list_folders(store: RemoteStore, root: RemoteEntry, path: StorePath, tree: LocalTree,
                 listing: Listings, *, deleting: bool) -> Folders:
    """One listing per folder, into ``listing`` (a dict others hold: filled in place). A
    folder the push makes is empty: no listing. One it does not make (``tree.made``) is
    listed only for ``--delete`` (``deleting``) and only where the store has it."""
    out = Folders({"": root})
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
    return out


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
