"""walk52: a folder walk bounded in pages, every listing of it together
(``paging.MAX_WALK_PAGES``): its time is bounded by its progress, no longer by its size
(test_walk52_progress), so a server that keeps listing new folders, each answered at once,
is stopped by their count."""
from __future__ import annotations

from _cli import run
from _envs import env  # noqa: F401  (a fixture)
from _messages import error_line, renders, shown
from test_walk52_progress import listed, tree


@renders("more than … pages in the folders walked")
def test_a_walk_stops_once_it_got_its_pages(emulator, env, tmp_path, monkeypatch):
    """A server that keeps listing new folders (within the depth Drive allows) is stopped by
    the walk's page count; here lowered to 3 (``DRIVESTAGE_WALK_PAGES``): the walk asks for
    no fourth page."""
    folders = tree(emulator)
    monkeypatch.setenv("DRIVESTAGE_WALK_PAGES", "3")   # (settable since walk52b)
    code, _, err = run("pull", "-q", "drive:data", str(tmp_path / "d"))
    line = error_line(err)
    shown("more than … pages in the folders walked", line)
    assert code == 1, err
    assert line == (
        "Error: listing drive:data: more than 3 pages in the folders walked "
        "(DRIVESTAGE_WALK_PAGES; 200,000 by default, a hundred times an ImageNet-like "
        "tree's); stopped: the server keeps listing new folders or pages. Try again later; "
        "for a tree that large, take a folder further down at a time, or raise "
        "DRIVESTAGE_WALK_PAGES"), err
    assert listed(emulator, folders) == 3
    assert not (tmp_path / "d" / "data" / "f.txt").exists()
