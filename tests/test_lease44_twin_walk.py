"""lease44: the run's folder trashed while its trainer held it, a second trainer started then
(it made a new folder at the path and holds its lease there), the first folder restored
(leaselefts43's twins). Before the second trainer's renewal finds the twin (once a period),
its pushes go into its own folder by id, and the push that walks the path (every tenth,
drivestage.mirror.WALK_EVERY) finds the older twin and is stopped at its first commit. Its
line said the lease was "taken over" and its folder "moved, renamed or trashed": neither
happened, and the stop was named a take-over. Now it is the twin's line (the renewal's), and
the stop is another trainer holding the lease. No renewal thread (a 10-minute period); the
real PyDrive2 stack against the emulator."""
from __future__ import annotations

import os
import socket

import pytest

from _lease_pairs import save_pair
from test_lease39_pending_guard import DEST


def test_the_walk_that_finds_the_older_twin_stops_the_push_with_the_twins_line(
        drive_env, emulator, store, tmp_path, fast_retries):
    from drivestage.mirror import WALK_EVERY
    from trainer.drive import DriveFolder
    from trainer.errors import LeaseLostError
    from trainer.lease import RunLease
    from trainer.lease_claims import stop_name

    first = RunLease(DriveFolder(DEST, str(tmp_path / "first")), period_s=600.0)
    local = tmp_path / "second"
    local.mkdir()
    folder = DriveFolder(DEST, str(local))
    stops: list[str] = []
    second = RunLease(folder, period_s=600.0, on_lost=stops.append)
    try:
        first.acquire()
        [old] = [f["id"] for f in emulator.files() if f["title"] == "exp"]
        store.drive.CreateFile({"id": old}).Trash()   # (the user trashes the run's folder)
        second.acquire()   # (the path leads nowhere: a new runs/exp, held)
        folder.lease = second
        [new] = [f["id"] for f in emulator.files() if f["title"] == "exp" and f["id"] != old]
        store.drive.CreateFile({"id": old}).UnTrash()   # (and restores it)
        save_pair(local, "epoch_001.pt", 1)
        for _ in range(WALK_EVERY - 1):   # (its own folder, by id: the pair goes there)
            folder.push()
        with pytest.raises(LeaseLostError) as caught:
            folder.push()   # (the walk: the path leads to the older twin)
        sent = {f["title"]: f["parents"][0]["id"] for f in emulator.files()
                if f["title"].startswith("epoch_") and not f["labels"]["trashed"]}
        assert sent == {"epoch_001.pt": new, "epoch_001.json": new}   # (none in the older)
        assert str(caught.value) == second.lost == (
            f"pid {os.getpid()} on {socket.gethostname()} holds the run's lease on {DEST} "
            f"(renewed {str(caught.value).split('(renewed ')[1].split(' ')[0]} s ago; in a "
            f"same-named folder beside this trainer's (id {new}): the older one, id {old}, "
            "where the path leads (trashed and restored while this trainer started, or made "
            f"by another tool); merge the two with `drivestage dedupe {DEST}` once that run "
            f"ends): this trainer pushes nothing more there, its checkpoints stay in {local} "
            "only")
        assert stops and stop_name(stops[0]) == "another trainer holding the run's lease"
        assert first.lost is None
        first.check()   # (the one where the path leads holds on)
    finally:
        second.release()
        first.release()
