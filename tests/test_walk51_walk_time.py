"""walk51: ``DRIVESTAGE_LISTING_TIMEOUT`` bounds a push's (and a dedupe's) whole walk, not
each listing.

fuse51 gave a folder pull's walk one clock; a push lists DEST's folders one after another
(each folder of SRC that DEST has: push_folders.list_folders), and a listing that took longer
than the bound (its one page answered late) was followed by the next folder's as if nothing
happened. Since walk52 a walk is bounded by its progress, not its size (test_walk52_progress):
it stops once its listings went the bound without a page answered. Here the tree is five
folders deep, the listing of the folder ``a`` waits 0.3 s (the emulator's latency) and the
bound is 0.25 s (the others, at once, well within it under load too): the same line as one
listing's, naming DEST, exit 1, before anything is sent or deleted (before walk51: exit 0,
``old.txt`` deleted). The same for ``dedupe``, which lists
every folder below the one it is given (before walk51: exit 0, the duplicate at the bottom
merged), and a mirror: one clock per period (each a push), a period that hits it said and
the next one tried again.
"""
from __future__ import annotations

import os
import re

import pytest

from drivestage.emulator.store import FOLDER_MIME
from drivestage.errors import MirrorError
from drivestage.mirror import Mirror

from _cli import run
from _envs import env  # noqa: F401  (a fixture)
from _messages import error_line

LEVELS = ("a", "b", "c", "d")
LINE = (r"Error: listing {}: not done after \d+ pages and \d+\.\d\d s \(a listing may "
        r"take 0\.25 s: DRIVESTAGE_LISTING_TIMEOUT\); stopped: the server answers its pages "
        r"too slowly, or keeps sending new page tokens\. Try again later; if it persists, the "
        r"server \(or a proxy\) is broken")


def _slow(emulator, monkeypatch, folder: str) -> None:
    """The listing of ``folder`` (its id) 0.3 s late, every other at once; a listing may
    take 0.25 s (that one does not)."""
    emulator.faults.latency(0.3, "GET", rf"^/drive/v2/files\?.*{folder}")
    monkeypatch.setenv("DRIVESTAGE_LISTING_TIMEOUT", "0.25")


def _listed(emulator, folders) -> int:
    """The listings asked of ``folders`` (their ids)."""
    return sum(1 for r in emulator.requests if r.method == "GET" and
               r.path == "/drive/v2/files" and
               any(f"'{f}' in parents" in (r.query.get("q") or "") for f in folders))


def _nested(emulator, src) -> None:
    """``src`` and ``drive:logs``: a file at each of five nested levels, the same bytes."""
    for depth in range(len(LEVELS) + 1):
        rel = "/".join(LEVELS[:depth])
        (src / rel).mkdir(parents=True, exist_ok=True)
        (src / rel / "f.txt").write_bytes(b"f" * 10)
        emulator.add_file("/".join(("logs",) + LEVELS[:depth] + ("f.txt",)), b"f" * 10)


def test_a_push_delete_walk_whose_listing_went_the_bound_without_a_page_stops(
        emulator, env, tmp_path, monkeypatch):
    src = tmp_path / "logs"
    _nested(emulator, src)
    emulator.add_file("logs/a/b/old.txt", b"o" * 10)      # what --delete would remove
    (src / "a" / "b" / "c" / "d" / "new.txt").write_bytes(b"n" * 10)   # what it would send
    folders = [emulator.find("/".join(("logs",) + LEVELS[:depth]))["id"]
               for depth in range(len(LEVELS) + 1)]
    _slow(emulator, monkeypatch, folders[1])
    code, _, err = run("push", "--delete", str(src), "drive:logs")
    line = error_line(err)
    assert code == 1, err
    assert re.fullmatch(LINE.format("drive:logs"), line), line
    # The walk's listings (one page each): no folder listed after the bound, not every one.
    listed = _listed(emulator, folders)
    pages = int(re.search(r"after (\d+) pages", line).group(1))
    assert pages < len(folders) and listed <= pages + 1, (listed, pages)
    # Nothing sent, nothing deleted.
    assert emulator.find("logs/a/b/old.txt") is not None
    assert emulator.find("logs/a/b/c/d/new.txt") is None
    assert os.path.exists(src / "a" / "b" / "c" / "d" / "new.txt")


def test_a_dedupe_walk_whose_listing_went_the_bound_without_a_page_stops(emulator, env,
                                                                         monkeypatch):
    for depth in range(len(LEVELS) + 1):
        emulator.add_file("/".join(("runs", "exp") + LEVELS[:depth] + ("f.txt",)), b"f")
    bottom = "runs/exp/" + "/".join(LEVELS)
    emulator.add_folder(bottom + "/twin")
    emulator.store.create("twin", FOLDER_MIME, [emulator.find(bottom)["id"]])   # its twin
    folders = [emulator.find("/".join(("runs", "exp") + LEVELS[:depth]))["id"]
               for depth in range(len(LEVELS) + 1)]
    _slow(emulator, monkeypatch, folders[1])
    code, _, err = run("dedupe", "drive:runs/exp")
    line = error_line(err)
    assert code == 1, err
    assert re.fullmatch(LINE.format("drive:runs/exp"), line), line
    pages = int(re.search(r"after (\d+) pages", line).group(1))
    listed = _listed(emulator, folders)
    assert listed < len(folders) and listed <= pages, (listed, pages)
    twins = [r for r in emulator.store.files.values()
             if r["title"] == "twin" and not r["trashed"]]
    assert len(twins) == 2, twins     # nothing merged


def test_a_mirror_period_that_hits_the_bound_is_said_and_the_next_has_its_own(
        emulator, env, tmp_path, monkeypatch):
    """The first period's walk (a late listing) hits the bound: its flush fails with the line,
    the mirror goes on. The second (the server fast again) has a clock of its own: one for
    the mirror's life would have been spent already, and every period after failed."""
    src = tmp_path / "logs"
    _nested(emulator, src)
    (src / "a" / "b" / "c" / "d" / "new.txt").write_bytes(b"n" * 10)
    _slow(emulator, monkeypatch, emulator.find("logs/a")["id"])
    mirror = Mirror(str(src), "drive:logs").start()
    try:
        with pytest.raises(MirrorError) as failed:
            mirror.flush()
        assert re.fullmatch(rf"mirror of {re.escape(str(src))} to drive:logs failed: "
                            + LINE.format("drive:logs")[len("Error: "):],
                            str(failed.value)), str(failed.value)
        assert emulator.find("logs/a/b/c/d/new.txt") is None
        emulator.faults.clear()
        mirror.flush()
        assert emulator.find("logs/a/b/c/d/new.txt") is not None
    finally:
        mirror.stop(flush=False)
