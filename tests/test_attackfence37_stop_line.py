"""attackfence37: the stop's line of a trainer that found the run's lease held when it first
reached Drive (Drive down at its start) said the holder took it "while Drive was down at this
trainer's start, before this trainer could take it". Where the holder held it long before
(a trainer training for hours; this one started during an outage) that is false, and it
reads as if this trainer had been first and the other had jumped in: a user stops the wrong
one. The line now says what is true in both cases: the lease was held before this trainer
first reached Drive. The lease as the trainer takes it (``held_folder``), the holder a real
RunLease that took it first; the real PyDrive2 stack against the emulator; the line as
``trainer train`` prints it."""
from __future__ import annotations

import re

from _lease_lines import refused_while_held_before
from _lease_pairs import save_pair

DEST = "drive:runs/exp"


def test_a_lease_held_before_this_trainer_started_is_not_said_taken_after(
        drive_env, emulator, tmp_path, fast_retries):
    from trainer.config import load_config
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease, held_folder
    from trainer.stopping import StopFlag

    holder = RunLease(DriveFolder(DEST, str(tmp_path / "holder")), period_s=3.0)
    holder.acquire()   # (the run's trainer, long before this one starts)
    holder.start()
    out_dir = str(tmp_path / "late")
    cfg = load_config(None, [f"drive.logs={DEST}", f"train.out_dir={out_dir}",
                             "drive.lease_minutes=0.05"])
    stop = StopFlag(60.0)
    save_pair(out_dir, "epoch_001.pt", 1)
    # (Drive down for the listing of the run folder: the claims could not be read)
    listing = re.escape(f"%27{holder._folder.id}%27+in+parents")
    emulator.faults.inject(method="GET", path=listing, status=503, times=None)
    late = held_folder(cfg, stop)   # (Drive down at its start: the lease not taken)
    emulator.faults.clear()
    refused_while_held_before(late, holder, stop, out_dir, DEST)
