"""walk51: the trainer's look for checkpoints on Drive (``DriveFolder.checkpoints``) lists
its folder under one time bound.

It lists ``drive.logs`` once, and once more where a sidecar read holds other bytes than the
listing showed (another machine pushed a new version after the listing): each listing had
``DRIVESTAGE_LISTING_TIMEOUT`` of its own, so the look took twice the bound. Here the first
listing shows the sidecar as it was (the emulator's lagging listing), every ``files.list``
waits 0.15 s and the bound is 0.12 s. A listing of one page asks for no page after it, so
each listing alone went through (on main the look did); the bound is checked before each
page. Now both share one clock: the second listing is not asked for once the first took the
bound, the listing line, naming the folder.
"""
from __future__ import annotations

import io
import re
import time

import pytest

from drivestage.errors import RemoteError
from trainer.drive import DriveFolder

from _checkpoints import save
from _envs import env  # noqa: F401  (a fixture)


def test_the_look_for_checkpoints_lists_under_one_time_bound(emulator, env, tmp_path,
                                                            monkeypatch):
    files = save(str(tmp_path / "run"), "epoch_001", 1, time.time() - 60)
    for name in files:
        emulator.add_file(f"logs/{name}", (tmp_path / "run" / name).read_bytes())
    side = emulator.find("logs/epoch_001.json")["id"]
    folder = DriveFolder("drive:logs", str(tmp_path / "x"))
    emulator.faults.lag_listing(updated=1, titles=r"\.json$")
    # Another machine's push: the sidecar anew in place (the first listing still shows the old)
    up = folder._store.drive.CreateFile({"id": side})
    up.content = io.BytesIO((tmp_path / "run" / "epoch_001.json").read_bytes()
                            .replace(b'"epoch": 1', b'"epoch": 1 '))
    up.Upload()
    emulator.faults.latency(0.15, "GET", r"^/drive/v2/files\?")   # each listing slow
    monkeypatch.setenv("DRIVESTAGE_LISTING_TIMEOUT", "0.12")
    fid = emulator.find("logs")["id"]
    before = len(emulator.requests)
    with pytest.raises(RemoteError) as over:
        folder.checkpoints()
    # (the first listing made, and its sidecar read; the second refused before its page)
    assert sum(1 for r in emulator.requests[before:] if r.path == "/drive/v2/files"
               and f"'{fid}' in parents" in (r.query.get("q") or "")) == 1
    assert re.fullmatch(
        r"listing drive:logs: not done after 1 pages and \d+\.\d\d s \(a listing may take "
        r"0\.12 s: DRIVESTAGE_LISTING_TIMEOUT\); stopped: the server answers its pages too "
        r"slowly, or keeps sending new page tokens\. Try again later; if it persists, the "
        r"server \(or a proxy\) is broken", str(over.value)), str(over.value)
