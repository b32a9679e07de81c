"""attackint47: retain47's rule that keeps an old copy "another writer sent after these bytes
were on the store" (:func:`drivestage.old_copies._later_work`) read a copy's date as when it
came. A copy dated ahead (a year: a tool that sets modifiedDate from a clock or a file's
mtime ahead, a server that lies) came "after" every copy for good: each push took it for the
newest, sent its checkpoint again, and kept it beside: a full upload per push and two copies
of ``last.pt`` for good (on main the first push sent it once and removed the other). A date
ahead of the store's clock says nothing of when a copy came: such a copy is an old copy."""
from __future__ import annotations

import os
import time

from _checkpoints import md5, sidecar_json
from _cli import run
from _drive_state import live_md5s


def test_a_copy_dated_a_year_ahead_is_removed_once_and_the_next_push_sends_nothing(
        emulator, drive_env, local_state, tmp_path):
    ours, ahead = os.urandom(3000), os.urandom(3000)
    old = emulator.add_file("runs/a/last.pt", ours)
    emulator.store.update(old, modified=time.time() - 100)
    emulator.add_file("runs/a/last.json", sidecar_json(1, ours))
    liar = emulator.add_file("runs/a/last.pt", ahead)
    emulator.store.update(liar, modified=time.time() + 365 * 24 * 3600)
    src = tmp_path / "run"
    src.mkdir()
    (src / "last.pt").write_bytes(ours)
    (src / "last.json").write_bytes(sidecar_json(1, ours))
    code, _, err = run("push", str(src), "drive:runs/a")
    assert code == 0, err
    assert live_md5s(emulator, "runs/a") == {"last.pt": [md5(ours)],
                                             "last.json": [md5(sidecar_json(1, ours))]}, err
    emulator.clear_requests()
    code, _, err = run("push", str(src), "drive:runs/a")
    assert code == 0, err
    assert not [r for r in emulator.requests if "/upload/" in r.path], err   # (unchanged)
