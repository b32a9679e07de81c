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

from _checkpoints import save
from _cli import run
from _envs import env  # noqa: F401  (a fixture)
from _late_listing import first_listing_late, stopped_at_first_listing


def test_a_prune_whose_first_listing_came_past_the_bound_lists_no_more(
        emulator, env, tmp_path, monkeypatch):
    for n in (1, 2):
        for name in save(str(tmp_path / "run"), f"epoch_{n:03d}", n, 1000.0 + n):
            emulator.add_file(f"logs/{name}", (tmp_path / "run" / name).read_bytes())
    # (the folder's first listing answered past the bound; every other request at once)
    fid = first_listing_late(emulator, monkeypatch)
    code, _, err = run("prune", "drive:logs", "--keep-last", "1")
    stopped_at_first_listing(emulator, fid, code, err)
    left = sorted(r["title"] for r in emulator.store.files.values()
                  if not r["trashed"] and r.get("parents") and
                  fid in r["parents"])
    assert left == ["epoch_001.json", "epoch_002.json", "epoch_002.pt"], left
