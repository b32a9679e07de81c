"""walk52: a prune's listings of its folder under one clock, as a walk's.

``prune`` lists the folder for its plan, and again after the checkpoints it removes, before
their sidecars go (another machine may have sent a new copy since the plan: pruning.apply).
Each listing had ``DRIVESTAGE_LISTING_TIMEOUT`` of its own, and a listing of one page asks
for no page after it: the first listing's page answered past the bound (0.15 s under a
0.12 s bound, the emulator's latency) was followed by the second as if nothing happened (on
main: exit 0, epoch_001's pair removed). Now the second is not asked for: the listing line,
naming the folder, exit 1; the checkpoint removed before it is gone (the plan's), its
sidecar stays for the next prune.
"""
from __future__ import annotations

import re

from _checkpoints import save
from _cli import run
from _envs import env  # noqa: F401  (a fixture)
from _messages import error_line


def test_a_prune_whose_first_listing_came_past_the_bound_lists_no_more(
        emulator, env, tmp_path, monkeypatch):
    for n in (1, 2):
        for name in save(str(tmp_path / "run"), f"epoch_{n:03d}", n, 1000.0 + n):
            emulator.add_file(f"logs/{name}", (tmp_path / "run" / name).read_bytes())
    fid = emulator.find("logs")["id"]
    # (the folder's first listing answered past the bound; every other request at once)
    emulator.faults.latency(0.15, "GET", rf"^/drive/v2/files\?.*{fid}", times=1)
    monkeypatch.setenv("DRIVESTAGE_LISTING_TIMEOUT", "0.12")
    code, _, err = run("prune", "drive:logs", "--keep-last", "1")
    line = error_line(err)
    assert code == 1, err
    assert re.fullmatch(
        r"Error: listing drive:logs: not done after 1 pages and \d+\.\d\d s \(a listing may "
        r"take 0\.12 s: DRIVESTAGE_LISTING_TIMEOUT\); stopped: the server answers its pages "
        r"too slowly, or keeps sending new page tokens\. Try again later; if it persists, the "
        r"server \(or a proxy\) is broken", line), line
    assert sum(1 for r in emulator.requests if r.path == "/drive/v2/files"
               and f"'{fid}' in parents" in (r.query.get("q") or "")) == 1
    left = sorted(r["title"] for r in emulator.store.files.values()
                  if not r["trashed"] and r.get("parents") and
                  fid in r["parents"])
    assert left == ["epoch_001.json", "epoch_002.json", "epoch_002.pt"], left
