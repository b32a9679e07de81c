"""fuse51: the listing time bound holds for a folder pull's whole walk, not for each listing.

pull50 bounded one listing in time (``DRIVESTAGE_LISTING_TIMEOUT``), but a folder pull lists
one folder after another: a listing that took longer than the bound, its one page answered
late, was followed by the next folder's as if nothing happened (pull50's left). Since walk52
the walk is bounded by its progress: it stops once its listings went the bound without a
page answered (a walk of many listings, each within the bound, goes on:
test_walk52_progress). Here the tree is five folders deep, ``data/a``'s listing waits
0.3 s (the emulator's latency) and the bound is 0.25 s (the others, at once, well within it
under load too): the walk asks for no page after
it, with the same line as one listing's, naming the folder pulled and the pages of every
listing, exit 1, before a byte moves.
"""
from __future__ import annotations

import re

from _cli import run
from _envs import env  # noqa: F401  (a fixture)
from _messages import error_line

LEVELS = ("data", "a", "b", "c", "d")


def test_a_walk_whose_listing_went_the_bound_without_a_page_stops(emulator, env, tmp_path,
                                                                    monkeypatch):
    for depth in range(1, len(LEVELS) + 1):
        emulator.add_file("/".join(LEVELS[:depth]) + "/f.txt", b"f" * 10)
    folders = [emulator.find("/".join(LEVELS[:depth]))["id"]
               for depth in range(1, len(LEVELS) + 1)]
    # data/a's listing late: its page answered after the bound, the others at once
    emulator.faults.latency(0.3, "GET", rf"^/drive/v2/files\?.*{folders[1]}")
    monkeypatch.setenv("DRIVESTAGE_LISTING_TIMEOUT", "0.25")
    code, _, err = run("pull", "-q", "drive:data", str(tmp_path / "d"))
    line = error_line(err)
    assert code == 1, err
    assert re.fullmatch(
        r"Error: listing drive:data: not done after \d+ pages and \d+\.\d\d s \(a listing may "
        r"take 0\.25 s: DRIVESTAGE_LISTING_TIMEOUT\); stopped: the server answers its pages "
        r"too slowly, or keeps sending new page tokens\. Try again later; if it persists, the "
        r"server \(or a proxy\) is broken", line), line
    # The walk's listings (one page each): none after data/a's, not every one.
    listed = sum(1 for r in emulator.requests if r.method == "GET" and
                 r.path == "/drive/v2/files" and
                 any(f"'{f}' in parents" in (r.query.get("q") or "") for f in folders))
    pages = int(re.search(r"after (\d+) pages", line).group(1))
    assert listed == pages == 2, (listed, pages)
    assert not (tmp_path / "d" / "data" / "f.txt").exists()
