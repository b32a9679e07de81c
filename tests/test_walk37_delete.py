"""walk37: ``push --delete`` lists each Drive folder it decides on once, however many paths
lead to it: a folder with two parents (an item Drive kept from before 2020's single-parent
rule) and two folders each inside the other (Drive refuses to make that, 400 badRequest; a
server in front of it may show one). Before, the count of what a folder SRC lacks holds (:func:`drivestage.extra._inside`)
and its walk under ``--include``/``--exclude`` (``_filtered``) listed such a folder once for
every path to it: 2^depth listings for a chain of them, a count of items inflated as much
(a push refused as "far more than the files in SRC"), and a cycle either stopped the push as
a server that "lists a folder inside itself" or, unfiltered, never ended but at the bound.

Through the real stack (the CLI in-process, PyDrive2, googleapiclient, the emulator over
HTTP); the multi-parent folders are seeded on the emulator's store, as docs/emulator.md says.
Requests are counted from the emulator's log. No sleeps."""
from __future__ import annotations

from _cli import run
from _drive_state import live_md5s


def _runs(tmp_path, files: int = 13):
    runs = tmp_path / "runs"
    (runs / "exp2").mkdir(parents=True)
    for i in range(files):
        (runs / "exp2" / f"log{i}.txt").write_text(f"{i}\n")
    return runs


def _parents(emulator, rel: str, *more: str) -> None:
    """Give the folder ``rel`` the folders ``more`` as parents too (kept from before 2020)."""
    rec = emulator.store.get(emulator.find(rel)["id"])
    emulator.store.update(rec["id"], parents=[*rec["parents"],
                                              *(emulator.find(m)["id"] for m in more)])


def _diamonds(emulator, levels: int) -> None:
    """``runs/old`` holding ``levels`` levels of two folders each, the second of every level
    a parent of the first's child too: 2 * levels folders, 2^(levels-1) paths to the
    deepest, which holds ``x.txt``."""
    at = "runs/old"
    for level in range(levels):
        emulator.add_folder(f"{at}/l{level}")
        emulator.add_folder(f"{at}/r{level}")
        at = f"{at}/l{level}"
    emulator.add_file(f"{at}/x.txt", b"z\n")
    parent = "runs/old"
    for level in range(1, levels):
        _parents(emulator, f"{parent}/l{level - 1}/l{level}", f"{parent}/r{level - 1}")
        parent = f"{parent}/l{level - 1}"


def _lists(emulator) -> list:
    return [r for r in emulator.requests if r.kind == "files.list"]


def _folder_lists(emulator) -> dict:
    """folder id -> how many listings of its children (``'<id>' in parents``) were sent."""
    out: dict = {}
    for r in _lists(emulator):
        q = r.query.get("q") or ""
        if "in parents" in q and "title=" not in q:
            folder = q.split("'")[1]
            out[folder] = out.get(folder, 0) + 1
    return out


def test_the_plan_counts_a_chain_of_folders_with_two_parents_once_each(
        emulator, local_state, drive_env, tmp_path):
    """``runs/old``: 6 levels of diamonds (12 folders, 32 paths to the deepest, one file).
    Before: the count listed ``l5`` once for each of its 32 paths and passed the default
    limit (2 x 13 files + 10 = 36) at "at least 38 items" (66 counted whole): the push was
    refused, nothing sent. Now: 14 items (``old``, its 12
    folders, ``x.txt``), the push goes, and no folder is listed more than twice (once to
    count, once by the re-check just before the removal)."""
    _diamonds(emulator, 6)
    old = emulator.find("runs/old")["id"]
    emulator.clear_requests()

    code, _, err = run("push", str(_runs(tmp_path)), "drive:runs", "--delete")

    assert code == 0, err
    assert "--delete: removing 14 items from drive:runs" in err, err
    assert set(live_md5s(emulator, "runs")) == {"exp2"}, err
    listed = _folder_lists(emulator)
    assert max(listed.values()) <= 2, listed
    assert listed[old] == 2, listed


def test_a_chain_of_thirteen_levels_costs_a_listing_or_two_per_folder(
        emulator, local_state, drive_env, tmp_path):
    """The attacksync36 chain (13 levels, 27 folders in ``runs/old``): 1,654 listings
    before; now the count lists each of the 27 once, and the re-check once more: 54, plus
    the plan's own (``runs``, ``runs/exp2``'s absence costs none) and the made folder's."""
    _diamonds(emulator, 13)
    emulator.clear_requests()

    code, _, err = run("push", str(_runs(tmp_path)), "drive:runs", "--delete",
                       "--max-delete", "5000")

    assert code == 0, err
    assert "--delete: removing 28 items from drive:runs" in err, err
    listed = _folder_lists(emulator)
    assert sum(listed.values()) < 60 and max(listed.values()) <= 2, listed


def test_with_filters_a_chain_of_folders_with_two_parents_is_walked_once_each(
        emulator, local_state, drive_env, tmp_path):
    """``--exclude '*.keep'`` walks a folder SRC lacks file by file (what the filters leave
    out stays): the same chain, 10 levels (512 paths to the deepest). Before: the walk went
    down every path. Now each folder is listed at most twice, ``old`` goes whole."""
    _diamonds(emulator, 10)
    emulator.clear_requests()

    code, _, err = run("push", str(_runs(tmp_path)), "drive:runs", "--delete",
                       "--exclude", "*.keep", "--max-delete", "5000")

    assert code == 0, err
    assert set(live_md5s(emulator, "runs")) == {"exp2"}, err
    assert "--delete: removing 22 items from drive:runs" in err, err
    listed = _folder_lists(emulator)
    assert max(listed.values()) <= 2, listed
    assert sum(listed.values()) < 60, listed


def test_with_filters_what_they_leave_out_stays_in_a_folder_reached_twice(
        emulator, local_state, drive_env, tmp_path):
    """A folder reached on two paths, holding a file the filters leave out: walked once, the
    file stays, so do the folders on both paths to it (each left holding it), and the rest
    of what SRC lacks goes."""
    emulator.add_folder("runs/old/a/shared")
    emulator.add_folder("runs/old/b")
    emulator.add_file("runs/old/a/shared/notes.keep", b"mine\n")
    emulator.add_file("runs/old/a/shared/gone.txt", b"g\n")
    emulator.add_file("runs/old/b/alsogone.txt", b"h\n")
    _parents(emulator, "runs/old/a/shared", "runs/old/b")
    shared = emulator.find("runs/old/a/shared")["id"]
    gone, alsogone = (emulator.find(f"runs/old/{p}")["id"]
                      for p in ("a/shared/gone.txt", "b/alsogone.txt"))
    emulator.clear_requests()

    code, _, err = run("push", str(_runs(tmp_path)), "drive:runs", "--delete",
                       "--exclude", "*.keep")

    assert code == 0, err
    assert live_md5s(emulator, "runs/old/a/shared") == {
        "notes.keep": [emulator.find("runs/old/a/shared/notes.keep")["md5Checksum"]]}, err
    assert set(live_md5s(emulator, "runs/old")) == {"a", "b"}, err   # (each holds shared)
    assert emulator.store.get(gone)["trashed"], err
    assert emulator.store.get(alsogone)["trashed"], err
    listed = _folder_lists(emulator)
    assert listed[shared] == 1, listed


def _cycle(emulator) -> tuple[str, str]:
    """``runs/old/a/b``, and ``b`` a parent of ``a`` too: two folders each inside the other
    (seeded through the store: Drive refuses to make it, a server in front of it may
    show one). Their ids."""
    emulator.add_file("runs/old/a/b/x.txt", b"x\n")
    _parents(emulator, "runs/old/a", "runs/old/a/b")
    return emulator.find("runs/old/a")["id"], emulator.find("runs/old/a/b")["id"]


def test_two_folders_each_inside_the_other_end_the_count(emulator, local_state, drive_env,
                                                         tmp_path):
    """``push --delete`` of a DEST holding ``old/a`` and ``old/a/b``, ``b`` a parent of ``a``
    too. Before: the count listed ``a`` inside ``b`` and the store stopped the push: "listed
    inside itself … Drive never lists so: check --api-root". Now: each listed once to count (and once by the re-check),
    4 items (old, a, b, x.txt), ``old`` goes."""
    a, b = _cycle(emulator)
    emulator.clear_requests()

    code, _, err = run("push", str(_runs(tmp_path)), "drive:runs", "--delete")

    assert code == 0, err
    assert "--delete: removing 4 items from drive:runs" in err, err
    assert set(live_md5s(emulator, "runs")) == {"exp2"}, err
    listed = _folder_lists(emulator)
    assert listed[a] == 2 and listed[b] == 2, listed


def test_with_filters_two_folders_each_inside_the_other_end_the_walk(
        emulator, local_state, drive_env, tmp_path):
    """The same cycle under ``--exclude '*.keep'``. Before: the filtered walk listed ``a``
    inside ``b`` and stopped the push: "listed inside itself … Drive never lists so: check
    --api-root". Now: each listed once by the walk; the file the filters let through goes,
    the two folders stay (trashed whole, ``b`` would take ``a`` along, and a walk that left
    something in ``a`` cannot have it go), said in one line."""
    a, b = _cycle(emulator)
    x = emulator.find("runs/old/a/b/x.txt")["id"]
    emulator.clear_requests()

    code, _, err = run("push", str(_runs(tmp_path)), "drive:runs", "--delete",
                       "--exclude", "*.keep")

    assert code == 0, err
    assert emulator.store.get(x)["trashed"], err
    assert not emulator.store.get(a)["trashed"], err
    assert not emulator.store.get(b)["trashed"], err
    assert ("WARNING drivestage.extra: --delete leaves drive:runs/old/a/b/a and the folders "
            "it is in: it is inside itself") in err, err
    assert "--delete: removing 1 item from drive:runs" in err, err
    listed = _folder_lists(emulator)
    assert listed[a] <= 2 and listed[b] <= 2, listed


def test_a_folder_that_also_holds_what_src_has_is_left(emulator, local_state, drive_env,
                                                       tmp_path):
    """``runs/old`` (SRC lacks it) holds ``runs/exp2`` too (SRC has it), given it as a second
    parent before 2020. Before: ``--delete`` trashed ``old``, and the trash took ``exp2``
    along with the files just pushed: ``drive:runs/exp2`` not found after a push that exited
    0. Now ``old`` is left whole, said in one line, and ``exp2`` keeps its files."""
    runs = _runs(tmp_path, 2)
    assert run("push", str(runs), "drive:runs")[0] == 0
    emulator.add_file("runs/old/y.txt", b"y\n")
    _parents(emulator, "runs/exp2", "runs/old")

    code, _, err = run("push", str(runs), "drive:runs", "--delete")

    assert code == 0, err
    assert set(live_md5s(emulator, "runs")) == {"exp2", "old"}, err
    assert set(live_md5s(emulator, "runs/exp2")) == {"log0.txt", "log1.txt"}, err
    assert ("WARNING drivestage.extra: --delete leaves drive:runs/old whole: it holds "
            "drive:runs/old/exp2 too (an item with two parents, kept from before 2020), which "
            "SRC has or the push keeps; its removal would take that along. Take it out of "
            "drive:runs/old on Drive") in err, err


def test_with_filters_a_folder_that_also_holds_a_file_src_has_keeps_it(
        emulator, local_state, drive_env, tmp_path):
    """The same with ``--exclude '*.keep'`` and a file: ``runs/old`` holds ``exp2/log0.txt``
    too. Before: ``old`` went whole (the filters let all it holds through), the pushed
    ``log0.txt`` with it. Now what the filters let through goes, ``old`` stays holding it."""
    runs = _runs(tmp_path, 2)
    assert run("push", str(runs), "drive:runs")[0] == 0
    y = emulator.add_file("runs/old/y.txt", b"y\n")
    _parents(emulator, "runs/exp2/log0.txt", "runs/old")

    code, _, err = run("push", str(runs), "drive:runs", "--delete", "--exclude", "*.keep")

    assert code == 0, err
    assert set(live_md5s(emulator, "runs/exp2")) == {"log0.txt", "log1.txt"}, err
    assert set(live_md5s(emulator, "runs/old")) == {"log0.txt"}, err
    assert emulator.store.get(y)["trashed"], err
