"""pull50: a listing bounded in time as well as in pages.

A server that answers every ``files.list`` page slowly and sends a new page token each time
was stopped only at 1,000 pages (drive/paging.py): at two minutes a page (within the
connection's timeout), a pull listed for a day and a half. Now a listing that has taken
``DRIVESTAGE_LISTING_TIMEOUT`` seconds (an hour by default) asks for no other page: one
line, exit 1. Here the bound is 0.2 s and each page waits 0.05 s (the emulator's latency),
every page empty with a new token (``empty_pages``): on main the pull asked for 1,000 pages
and failed on their count, 50 s later.
"""
from __future__ import annotations

import re

from _cli import run
from _envs import env  # noqa: F401  (a fixture)
from _messages import error_line, renders, shown


def _pages(emulator, folder: str) -> int:
    return sum(1 for r in emulator.requests if r.method == "GET" and r.path == "/drive/v2/files"
               and folder in (r.query.get("q") or ""))


@renders("not done after … pages and … s (a listing may take … s: DRIVESTAGE_LISTING_TIMEOUT)")
def test_a_listing_that_never_ends_slowly_stops_at_its_time_bound(
        emulator, env, tmp_path, monkeypatch):
    emulator.add_file("data/a.bin", b"a" * 10)
    folder = emulator.find("data")["id"]
    emulator.faults.empty_pages(times=2000, query=folder)     # a new token after every page
    emulator.faults.latency(0.05, "GET", r"^/drive/v2/files\?")  # each page slow
    monkeypatch.setenv("DRIVESTAGE_LISTING_TIMEOUT", "0.2")
    code, _, err = run("pull", "-q", "drive:data", str(tmp_path / "d"))
    line = error_line(err)
    shown("not done after … pages and … s (a listing may take … s: DRIVESTAGE_LISTING_TIMEOUT)", line)
    assert code == 1, err
    assert re.fullmatch(
        r"Error: listing drive:data: not done after \d+ pages and \d+\.\d\d s \(a listing may "
        r"take 0\.2 s: DRIVESTAGE_LISTING_TIMEOUT\); stopped: the server answers its pages "
        r"too slowly, or keeps sending new page tokens\. Try again later; if it persists, the "
        r"server \(or a proxy\) is broken", line), line
    # No page asked after the bound: at least 0.05 s each, at most 0.2 / 0.05 + 1 of them.
    pages = int(re.search(r"after (\d+) pages", line).group(1))
    assert _pages(emulator, folder) == pages <= 5, (pages, _pages(emulator, folder))
    assert not (tmp_path / "d" / "data" / "a.bin").exists()


def test_the_listing_time_bound_is_a_positive_number(env, tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_LISTING_TIMEOUT", "soon")
    code, _, err = run("pull", "-q", "drive:data", str(tmp_path / "d"))
    assert code == 2, err
    assert error_line(err) == (
        "Error: DRIVESTAGE_LISTING_TIMEOUT='soon' is not a number of seconds above 0 and below "
        "1e9 (how long one listing may take; 3600 by default)"), err
