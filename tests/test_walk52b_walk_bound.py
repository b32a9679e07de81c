"""walk52b: a folder walk bounded in its whole listing time as well.

walk52 bounded a walk by its progress (``DRIVESTAGE_LISTING_TIMEOUT`` without a page) and its
pages (``MAX_WALK_PAGES``, 200,000): a server that keeps answering, each page in time, with
new folders was stopped only by the page count, about 200,000 times a page's time (days).
Now the walk's listing time, all its listings together, is bounded too
(``DRIVESTAGE_WALK_TIMEOUT``, a day by default) and the page count is settable
(``DRIVESTAGE_WALK_PAGES``); a value of either that is no positive number is refused in one
line, exit 2, before anything is asked of Drive.

The walk's time bound itself: tests/test_messages_walk52b.py. On main both tests here
failed: the page count was not settable (exit 1 at 3 pages), a bad value not refused
(exit 0).
"""
from __future__ import annotations

import pytest

from _cli import run
from _envs import env  # noqa: F401  (a fixture)
from _messages import error_line
from test_walk52_progress import listed, tree


def test_a_walk_may_list_more_pages_when_told(emulator, env, tmp_path, monkeypatch):
    """``DRIVESTAGE_WALK_PAGES`` sets the walk's page count, over the default (here lowered
    to 3, under which the six-folder walk stops: test_messages_walk52): 50 lets it through,
    every folder listed once."""
    from drivestage.drive import paging

    folders = tree(emulator)
    monkeypatch.setattr(paging, "MAX_WALK_PAGES", 3)
    monkeypatch.setenv("DRIVESTAGE_WALK_PAGES", "50")
    code, _, err = run("pull", "-q", "drive:data", str(tmp_path / "d"))
    assert code == 0, err
    assert (tmp_path / "d" / "data" / "a" / "b" / "c" / "d" / "e" / "f.txt").read_bytes() == \
        b"f6" * 10
    assert listed(emulator, folders) >= len(folders)


@pytest.mark.parametrize("name, value, line", [
    ("DRIVESTAGE_WALK_TIMEOUT", "1d",
     "Error: DRIVESTAGE_WALK_TIMEOUT='1d' is not a number of seconds above 0 and below 1e9 "
     "(how long the listings of one folder walk may take, all together; 86400 by default)"),
    ("DRIVESTAGE_WALK_TIMEOUT", "0",
     "Error: DRIVESTAGE_WALK_TIMEOUT='0' is not a number of seconds above 0 and below 1e9 "
     "(how long the listings of one folder walk may take, all together; 86400 by default)"),
    ("DRIVESTAGE_WALK_PAGES", "1.5",
     "Error: DRIVESTAGE_WALK_PAGES='1.5' is not a whole number of pages above 0 and below "
     "1e9 (how many pages one folder walk may list, all its listings together; 200,000 by "
     "default)"),
    ("DRIVESTAGE_WALK_PAGES", "-3",
     "Error: DRIVESTAGE_WALK_PAGES='-3' is not a whole number of pages above 0 and below "
     "1e9 (how many pages one folder walk may list, all its listings together; 200,000 by "
     "default)"),
])
def test_a_bad_walk_bound_is_refused_before_drive_is_asked(
        emulator, env, tmp_path, monkeypatch, name, value, line):
    tree(emulator)
    monkeypatch.setenv(name, value)
    before = len(emulator.requests)
    code, _, err = run("pull", "-q", "drive:data", str(tmp_path / "d"))
    assert code == 2, err
    assert error_line(err) == line, err
    assert len(emulator.requests) == before
