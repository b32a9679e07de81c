"""walk52's scene: drive:logs's first listing answered past the listing bound (0.15 s under
0.12 s, the emulator's latency), and what a command says of it (prune's and push's tests)."""
from __future__ import annotations

import re

from _messages import error_line


def first_listing_late(emulator, monkeypatch) -> str:
    """drive:logs's next listing answered 0.15 s late, every other request at once, under a
    0.12 s bound: its id."""
    fid = emulator.find("logs")["id"]
    emulator.faults.latency(0.15, "GET", rf"^/drive/v2/files\?.*{fid}", times=1)
    monkeypatch.setenv("DRIVESTAGE_LISTING_TIMEOUT", "0.12")
    return fid


def stopped_at_first_listing(emulator, fid: str, code: int, err: str) -> None:
    """The command ended with the listing line naming drive:logs, exit 1, after one listing
    of it (no second asked for)."""
    line = error_line(err)
    assert code == 1, err
    assert re.fullmatch(
        r"Error: listing drive:logs: not done after 1 pages and \d+\.\d\d s \(a listing may "
        r"take 0\.12 s: DRIVESTAGE_LISTING_TIMEOUT\); stopped: the server answers its pages "
        r"too slowly, or keeps sending new page tokens\. Try again later; if it persists, the "
        r"server \(or a proxy\) is broken", line), line
    assert sum(1 for r in emulator.requests if r.path == "/drive/v2/files"
               and f"'{fid}' in parents" in (r.query.get("q") or "")) == 1
