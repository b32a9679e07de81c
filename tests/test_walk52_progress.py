"""walk52: a folder walk bounded by its progress, not by its size.

Since session 51 every listing of a walk shared one clock, and the walk stopped once their
listing time *summed* to ``DRIVESTAGE_LISTING_TIMEOUT``: a legitimate tree of thousands of
folders (an ImageNet-like dataset kept unzipped on Drive: 1,000 folders of 2 pages at 1-2 s
a page) walked past the hour and failed every rerun, blaming the server. Now a walk stops
only once its listings went the bound without a page answered; each listing is still
bounded alone (its pages and time: pull50), the walk in pages (``MAX_WALK_PAGES``:
test_messages_walk52), and a page token sent again still ends a listing at once.

Here the tree is six folders deep, every ``files.list`` of the walk waits 0.08 s (the
emulator's latency) and the bound is 0.4 s: each listing (one page) is well under it (a page
took up to 0.15 s in all at a load of 12 on two cores), the walk's sum (six listings, 0.48 s
at least) over it. On main the pull failed, exit 1, before a byte moved.
"""
from __future__ import annotations

import _proxy
from _cli import run
from _envs import env  # noqa: F401  (a fixture)
from _messages import error_line

LEVELS = ("data", "a", "b", "c", "d", "e")


def tree(emulator) -> list[str]:
    """A file at each of six nested levels; the folders' ids, top first."""
    for depth in range(1, len(LEVELS) + 1):
        emulator.add_file("/".join(LEVELS[:depth]) + "/f.txt", b"f%d" % depth * 10)
    return [emulator.find("/".join(LEVELS[:depth]))["id"] for depth in range(1, len(LEVELS) + 1)]


def listed(emulator, folders: list[str]) -> int:
    """The listings asked of ``folders`` (their ids)."""
    return sum(1 for r in emulator.requests if r.method == "GET" and
               r.path == "/drive/v2/files" and
               any(f"'{f}' in parents" in (r.query.get("q") or "") for f in folders))


def test_a_walk_of_slow_listings_each_within_the_bound_goes_through(
        emulator, env, tmp_path, monkeypatch):
    tree(emulator)
    # The walk's listings slow (the path's and one per folder: the look again after the
    # downloads, listed anew, answers at once).
    emulator.faults.latency(0.08, "GET", r"^/drive/v2/files\?", times=1 + len(LEVELS))
    monkeypatch.setenv("DRIVESTAGE_LISTING_TIMEOUT", "0.4")
    code, _, err = run("pull", "-q", "drive:data", str(tmp_path / "d"))
    assert code == 0, err
    for depth in range(1, len(LEVELS) + 1):
        got = tmp_path / "d" / "/".join(LEVELS[:depth]) / "f.txt"
        assert got.read_bytes() == b"f%d" % depth * 10


def test_a_page_token_sent_again_in_a_walk_still_stops_it(emulator, through, tmp_path):
    """A folder deep in the walk whose listing says the same next page token again (the
    proxy): stopped at its second page, as one listing alone is, whatever the walk's clock."""
    folders = tree(emulator)
    through.on("GET", rf"^/drive/v2/files\?.*{folders[3]}", _proxy.repeat_page_token)
    through.rewrite(r"&pageToken=" + _proxy.REPEATED_TOKEN, "")
    code, _, err = run("pull", "-q", "drive:data", str(tmp_path / "d"))
    assert code == 1, err
    assert error_line(err) == (
        "Error: listing drive:data/a/b/c: Drive sent the same page token twice (after 2 pages), "
        "so the listing would never end; stopped. Try again later; if it persists, the server "
        "(or a proxy) is broken"), err
    assert through.count("GET", rf"^/drive/v2/files\?.*{folders[3]}") == 2
    assert not (tmp_path / "d" / "data" / "f.txt").exists()
