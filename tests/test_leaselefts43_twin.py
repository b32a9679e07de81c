"""leaselefts43: the run's folder trashed while its trainer held it, a second trainer started
then (the path led nowhere: it made a new folder there and holds its lease), the first
folder restored. Two same-named folders, each trainer pushing into its own by id, each
holding a lease (attacklease42, left: until a walk of the path). Now each renewal looks at
the folder's twins (one files.list a period): the trainer in the newer one, which the path
does not lead to, finds the live claim in the older one and stops with one line naming
both; the other one trains on. Periods shrunk to 0.6 s; the real PyDrive2 stack against
the emulator."""
from __future__ import annotations

import os
import socket
import time

from test_lease39_pending_guard import DEST


def test_the_trainer_in_the_newer_twin_stops_for_the_live_claim_in_the_older(
        drive_env, emulator, store, tmp_path, fast_retries, monkeypatch):
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    monkeypatch.setenv("TRAINER_LEASE_SETTLE", "0")
    stops: list[str] = []
    first = RunLease(DriveFolder(DEST, str(tmp_path / "first")), period_s=0.6)
    second = RunLease(DriveFolder(DEST, str(tmp_path / "second")), period_s=0.6,
                      on_lost=stops.append)
    try:
        first.acquire()
        first.start()
        [old] = [f["id"] for f in emulator.files() if f["title"] == "exp"]
        store.drive.CreateFile({"id": old}).Trash()   # (the user trashes the run's folder)
        second.acquire()   # (the path leads nowhere: a new runs/exp, held)
        [new] = [f["id"] for f in emulator.files() if f["title"] == "exp" and f["id"] != old]
        second.start()
        store.drive.CreateFile({"id": old}).UnTrash()   # (and restores it)
        deadline = time.monotonic() + 10.0
        while second.lost is None and time.monotonic() < deadline:
            time.sleep(0.05)   # (its renewal thread's next period: 0.6 s)
        assert second.lost is not None, "the trainer in the newer twin never stopped"
        assert stops == [second.lost.split(": this trainer pushes")[0]]
        assert second.lost.startswith(
            f"pid {os.getpid()} on {socket.gethostname()} holds the run's lease on {DEST} (renewed ")
        assert second.lost.endswith(
            f" s ago; in a same-named folder beside this trainer's (id {new}): the older one, "
            f"id {old}, where the path leads (trashed and restored while this trainer started, "
            f"or made by another tool); merge the two with `drivestage dedupe {DEST}` once "
            f"that run ends): this trainer pushes nothing more there, its checkpoints stay in "
            f"{tmp_path / 'second'} only")
        assert first.lost is None   # (the one where the path leads trains on)
        first.check()
    finally:
        second.release()
        first.release()
