"""outside38: :func:`drivestage.other_parents.spare`, the pure part of ``push --delete``'s
rule for items with a second parent (kept from before 2020), on plain entries: what goes,
what is kept, and that it ends on folders each inside the other."""
from __future__ import annotations

from drivestage.other_parents import Kept, count, removed_from, spare
from drivestage.store import RemoteEntry


def _tree(parents: dict[str, tuple[str, ...]], folders: set[str]):
    """Entries by id (``parents``: id -> its parents' ids), and a listing function."""
    entries = {i: RemoteEntry(id=i, name=i, is_dir=i in folders, parent_ids=ps)
               for i, ps in parents.items()}

    def children(folder: RemoteEntry) -> list[RemoteEntry]:
        return [e for e in entries.values() if folder.id in e.parent_ids]

    return entries, children, lambda folder_id: children(entries[folder_id])


def test_an_item_removed_from_every_folder_it_is_in_goes():
    """``old`` holds ``Photos`` (also in My Drive's top): kept, item by item. ``pic`` is in
    ``old`` and ``older`` (SRC lacks both): it goes from ``old`` item by item, so ``older``,
    which holds it too, still goes whole (``pic`` and ``junk`` with it)."""
    e, children, listed = _tree({
        "old": ("dest",), "older": ("dest",), "Photos": ("top", "old"), "pic": ("old", "older"),
        "junk": ("older",)}, {"old", "older", "Photos"})

    going, kept = spare(children, [("old", e["old"]), ("older", e["older"])],
                        {"": {"dest"}, "old": {"old"}, "older": {"older"}}, listed)

    assert going == [("old/pic", e["pic"]), ("older", e["older"])]
    assert kept == [Kept("old", e["old"], "old/Photos", None)]
    assert count(children, going) == 3


def test_a_folder_kept_keeps_one_that_would_take_an_item_of_it():
    """``older`` holds ``pic``, which is in ``old`` too, where ``--delete`` leaves it
    (``old`` is kept for ``Photos``, and ``pic`` is not removed from it: no entry says so):
    ``older`` is kept, and ``junk`` goes."""
    e, children, listed = _tree({
        "old": ("dest",), "older": ("dest",), "Photos": ("top", "old"), "pic": ("old", "older"),
        "junk": ("older",)}, {"old", "older", "Photos"})

    going, kept = spare(children, [("older", e["older"]), ("old/Photos", e["Photos"])],
                        {"": {"dest"}, "old": {"old"}, "older": {"older"}}, listed)

    assert going == [("older/junk", e["junk"])]
    assert kept == [Kept("older", e["older"], "older/pic", "old"),
                    Kept("old/Photos", e["Photos"], "old/Photos", None)]


def test_two_folders_each_inside_the_other_end_the_passes():
    """``a`` holds ``b``, which holds ``a`` (old Drive allowed it) and ``Photos`` (also in
    the top): both kept, the rest goes, and the passes end."""
    e, children, listed = _tree({
        "a": ("dest", "b"), "b": ("a",), "Photos": ("top", "b"), "x": ("a",), "y": ("b",)},
        {"a", "b", "Photos"})

    going, kept = spare(children, [("a", e["a"])], {"": {"dest"}, "a": {"a"}}, listed)

    assert sorted(rel for rel, _ in going) == ["a/b/y", "a/x"]
    assert [k.held for k in kept] == ["a/b/Photos"]


def test_nothing_with_another_parent_changes_nothing():
    e, children, listed = _tree({"old": ("dest",), "f": ("old",), "g": ("old", "old2"),
                                 "old2": ("dest",)}, {"old", "old2"})
    doomed = [("old", e["old"]), ("old2", e["old2"])]

    assert spare(children, doomed, {"": {"dest"}}, listed) == (doomed, [])


def test_the_folders_an_item_is_removed_from_are_those_of_dest_it_goes_from():
    """parents39: ``pic`` goes item by item from ``old`` and ``new`` (each kept for a log)
    and is in ``whole`` too, which goes whole: all three are named for it, its other parent
    (``top``) is not; an item with one parent is not named at all (its folder is the one it
    was listed in)."""
    e, children, listed = _tree({
        "old": ("dest",), "new": ("dest",), "whole": ("dest",),
        "pic": ("old", "new", "whole", "top"), "solo": ("old",), "in_whole": ("whole",)},
        {"old", "new", "whole"})

    got = removed_from(children, [("old/pic", e["pic"]), ("new/pic", e["pic"]),
                                  ("old/solo", e["solo"]), ("whole", e["whole"])],
                       {"": {"dest"}, "old": {"old"}, "new": {"new"}, "whole": {"whole"}},
                       listed)

    assert got == {"pic": frozenset({"old", "new", "whole"})}
