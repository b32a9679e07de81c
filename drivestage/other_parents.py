"""What ``push --delete`` removes, spared where the removal would take an item from a folder
it does not remove (outside38).

Drive kept the several parents items had before 2020's single-parent rule (the API refuses a
new one since: ``parents.insert``'s ``enforceSingleParent`` is deprecated, "adding files to
multiple folders is no longer supported"), and its trash takes everything a folder holds,
whatever else holds it too. ``drive:Photos``, in My Drive's top and also inside
``drive:runs/old``, went to the trash with ``runs/old`` when ``push SRC drive:runs --delete``
removed that folder: a push that exits 0 took a folder it was never pointed at.

:func:`spare` goes over what :func:`drivestage.extra.decide` would remove, on the listings
it made (no request more): an item with a parent that stays (outside DEST, or a folder of
DEST the push leaves) is not removed, nor is a folder that holds one at any depth; what else
such a folder holds goes item by item, and one line says what was kept and why
(:func:`say`). A listing names the parents the account can see (Drive leaves out those it
may not open): a parent it cannot see cannot be kept."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional

from drivestage.store import RemoteEntry

#: A store folder's children, each listed once (:class:`drivestage.extra.Listings`).
Children = Callable[[RemoteEntry], list[RemoteEntry]]


@dataclass(frozen=True)
class Kept:
    """An item ``--delete`` meant to remove (``rel`` in DEST) that stays, at least in part:
    it is, or holds at ``held`` (its path in DEST), an item also in a folder the push does
    not remove: ``other``, that folder's path in DEST, or None where it is none the push
    listed (outside DEST). ``item``: the item at ``held``, as listed (for a fresh read of
    its parents: :func:`drivestage.extra.decide`)."""

    rel: str
    entry: RemoteEntry
    held: str
    other: Optional[str]
    item: Optional[RemoteEntry] = field(default=None, compare=False)


@dataclass
class _Going:
    """One item to remove: its path, the folders it is removed from (its listing's), and
    what ``--delete`` meant to remove that it stands for (itself, or a folder it is in)."""

    rel: str
    entry: RemoteEntry
    homes: frozenset[str]
    top: tuple[str, RemoteEntry]


def spare(children: Children, doomed: list[tuple[str, RemoteEntry]],
          folders: Mapping[str, set[str]],
          listed: Callable[[str], list[RemoteEntry]]) -> tuple[list[tuple[str, RemoteEntry]],
                                                              list[Kept]]:
    """``doomed`` (``(rel, entry)``, as :func:`drivestage.extra.decide` found them) less what
    its removal would take from a folder that stays: ``(what goes, what was kept)``.
    ``folders``: the ids of DEST's folders by path (``""``: DEST itself), those the push
    listed and those in them; ``listed``: a folder's children by id, as listed already
    (none where it was not: never a request).

    An item stays where it has a parent neither removed with it nor one it is removed from
    (an item removed from two folders of DEST goes); a folder that holds one, at any depth,
    stays too, and what else it holds goes item by item. Each pass may only keep more (a
    folder kept no longer takes what it holds), so passes repeat until one keeps nothing:
    at most one per item, each item given up once."""
    work = [_Going(rel, e, frozenset(_ids_at(listed, folders, _above(rel))), (rel, e))
            for rel, e in doomed]
    kept: dict[tuple[str, str], Kept] = {}
    paths = {i: rel for rel, ids in folders.items() for i in ids}   # (what a Kept names)
    given_up: set[str] = set()
    for _ in range(len(work) + 1 + _bound(children, work)):
        inside = {id(w): _walk(children, w) for w in work}
        for items in inside.values():
            paths.update((e.id, rel) for rel, e in items if e.is_dir and e.id not in paths)
        gone = {w.entry.id for w in work if w.entry.is_dir and not w.entry.linked} | {
            e.id for items in inside.values() for _, e in items
            if e.is_dir and not e.linked}
        removed_from: dict[str, set[str]] = {}
        for w in work:
            removed_from.setdefault(w.entry.id, set()).update(w.homes)
        after: list[_Going] = []
        for w in work:
            stuck = _stuck(w, inside[id(w)], gone, removed_from)
            if stuck is None:
                after.append(w)
                continue
            held, other, item = stuck
            kept.setdefault((w.top[0], w.top[1].id),
                            Kept(*w.top, held, paths.get(other), item))
            given_up.add(w.entry.id)
            if held != w.rel:   # a folder holding it: what else is in it goes item by item
                after.extend(_Going(f"{w.rel}/{c.name}", c, frozenset({w.entry.id}), w.top)
                             for c in children(w.entry) if c.id not in given_up)
        if len(after) == len(work) and all(a is b for a, b in zip(after, work)):
            break
        work = after
    return [(w.rel, w.entry) for w in work], list(kept.values())


def count(children: Children, going: list[tuple[str, RemoteEntry]]) -> int:
    """The items removed with ``going``: each once (one removed from two folders item by
    item is one item), and once each what its folders hold."""
    seen = {e.id for _, e in going}
    extra = set()
    for rel, e in going:
        for _, c in _walk(children, _Going(rel, e, frozenset(), (rel, e))):
            if c.id not in seen:
                extra.add(c.id)
    return len({e.item_id for _, e in going}) + len(extra)


def removed_from(children: Children, going: list[tuple[str, RemoteEntry]],
                 folders: Mapping[str, set[str]],
                 listed: Callable[[str], list[RemoteEntry]]) -> dict[str, frozenset[str]]:
    """The folders the removal of ``going`` takes each of its items with several parents
    out of, by id: each folder of DEST it is removed from item by item, and each folder
    that goes whole with one of ``going`` (arguments as :func:`spare`'s). The store's check
    before a deletion knows only the folder an item was listed in (a prune or an old copy
    decided on no other): told these, it lets go an item ``--delete`` removes from two
    folders of DEST, each item by item (attackout38's strict xfail, parents39)."""
    gone: set[str] = set()
    for rel, e in going:
        if e.is_dir and not e.linked:
            gone.add(e.id)
            gone.update(c.id for _, c in _walk(children, _Going(rel, e, frozenset(), (rel, e)))
                        if c.is_dir and not c.linked)
    out: dict[str, set[str]] = {}
    for rel, e in going:
        if len(e.parent_ids) < 2 or e.linked:
            continue
        homes = _ids_at(listed, folders, _above(rel)) | gone
        out.setdefault(e.id, set()).update(p for p in e.parent_ids if p in homes)
    return {i: frozenset(ps) for i, ps in out.items() if ps}


def say(kept: Kept, describe: Callable[[RemoteEntry], str], dest: str) -> str:
    """The line that says ``kept`` stays and why (``dest``: DEST as the store names it)."""
    top = describe(kept.entry)
    name = kept.held.rsplit("/", 1)[-1]
    held = f"{dest}/{kept.held}"
    other = f"a folder outside {dest}" if kept.other is None else \
        f"{dest}/{kept.other}, which --delete leaves" if kept.other else \
        f"{dest}, which --delete leaves"
    if kept.held == kept.rel:
        return (f"--delete kept {top}: it is also in {other} (an item with two parents, kept "
                "from before 2020), and its removal would take it from there too. Take it out "
                f"of {_in(dest, kept.rel)} on Drive (it stays in its other folder) to let it go")
    return (f"--delete kept {top}: it holds {held}, which is also in {other} (an item with "
            "two parents, kept from before 2020), and its removal would take that along; "
            f"what else is in it goes item by item. Take {name} out of "
            f"{_in(dest, kept.held)} on Drive (it stays in its other folder) to let it go")


def _stuck(w: _Going, inside: list[tuple[str, RemoteEntry]], gone: set[str],
           removed_from: Mapping[str, set[str]]
           ) -> Optional[tuple[str, str, RemoteEntry]]:
    """The first item of ``w`` (itself, then what it holds) with a parent that stays:
    ``(its path, that parent's id, it)``; None where there is none. A link is only itself."""
    for rel, e, homes in [(w.rel, w.entry, w.homes)] + [(r, c, frozenset()) for r, c in inside]:
        if e.linked:
            continue   # (removing a shortcut leaves what it leads to)
        for p in e.parent_ids:
            if p not in gone and p not in homes and p not in removed_from.get(e.id, ()):
                return rel, p, e
    return None


def _walk(children: Children, w: _Going) -> list[tuple[str, RemoteEntry]]:
    """Everything ``w`` holds at any depth, with its path (each folder walked once: two
    folders each inside the other end the walk)."""
    if not w.entry.is_dir or w.entry.linked:
        return []
    out: list[tuple[str, RemoteEntry]] = []
    todo, seen = [(w.rel, w.entry)], {w.entry.id}
    while todo:
        rel, folder = todo.pop()
        for c in children(folder):
            out.append((f"{rel}/{c.name}", c))
            if c.is_dir and not c.linked and c.id not in seen:
                seen.add(c.id)
                todo.append((f"{rel}/{c.name}", c))
    return out


def _bound(children: Children, work: list[_Going]) -> int:
    """The most passes :func:`spare` needs: one per item it could give up."""
    return sum(len(_walk(children, w)) for w in work)


def _in(dest: str, rel: str) -> str:
    """The folder of DEST that ``rel`` is in, as a message names it."""
    return f"{dest}/{_above(rel)}" if "/" in rel else dest


def _above(rel: str) -> str:
    return rel.rsplit("/", 1)[0] if "/" in rel else ""


def _ids_at(listed: Callable[[str], list[RemoteEntry]], folders: Mapping[str, set[str]],
            rel: str) -> set[str]:
    """The ids of the folders at ``rel`` in DEST: listed by the push, or found by name in
    the listings :func:`drivestage.extra.decide` made below one (``--include``/``--exclude``
    walk a folder SRC lacks item by item)."""
    if rel in folders or not rel:
        return set(folders.get(rel, ()))
    above = _ids_at(listed, folders, _above(rel))
    name = rel.rsplit("/", 1)[-1]
    return {c.id for f in above for c in listed(f)
            if c.name == name and c.is_dir and not c.linked}
