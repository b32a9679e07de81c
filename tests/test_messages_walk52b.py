"""walk52b: a folder walk bounded in its whole listing time (``DRIVESTAGE_WALK_TIMEOUT``, a
day by default): a server that keeps answering, each page in time, with new folders was
stopped only by the walk's page count (200,000 pages: days at a second a page).

Here the tree is six folders deep (test_walk52_progress's), every listing of the walk waits
0.05 s (the emulator's latency), far within the listing bound (3600 s), and the walk may list
0.12 s in all: it stops at its third or fourth page asked, having listed at most three of
the six folders. On main the pull went through, exit 0.
"""
from __future__ import annotations

import re

from _cli import run
from _envs import env  # noqa: F401  (a fixture)
from _messages import error_line, renders, shown
from test_walk52_progress import LEVELS, listed, tree


@renders("the folders walked took … s of listing in … pages, more than … s "
         "(DRIVESTAGE_WALK_TIMEOUT")
def test_a_walk_that_keeps_listing_new_folders_stops_at_its_time(
        emulator, env, tmp_path, monkeypatch):
    folders = tree(emulator)
    emulator.faults.latency(0.05, "GET", r"^/drive/v2/files\?", times=1 + len(LEVELS))
    monkeypatch.setenv("DRIVESTAGE_WALK_TIMEOUT", "0.12")
    code, _, err = run("pull", "-q", "drive:data", str(tmp_path / "d"))
    line = error_line(err)
    shown("the folders walked took … s of listing in … pages, more than … s "
          "(DRIVESTAGE_WALK_TIMEOUT", line)
    assert code == 1, err
    got = re.fullmatch(
        r"Error: listing drive:data: the folders walked took (\d+\.\d\d) s of listing in "
        r"(\d) pages, more than 0\.12 s \(DRIVESTAGE_WALK_TIMEOUT; 86400 by default, a day\); "
        r"stopped: the server keeps listing new folders or pages\. Try again later; for a "
        r"tree that large, take a folder further down at a time, or raise "
        r"DRIVESTAGE_WALK_TIMEOUT", line)
    assert got, line
    assert float(got[1]) >= 0.12   # (over it, shown to two places)
    # (the path's listing, then one per folder: each 0.05 s at least, so the fourth page is
    # never asked, nor the fourth folder's listing)
    assert 1 <= int(got[2]) <= 3, line
    assert listed(emulator, folders) <= 3
    assert not (tmp_path / "d" / "data" / "f.txt").exists()
