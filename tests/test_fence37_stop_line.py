"""fence37: the stop's line of a trainer that found the run's lease held by another when it
first reached Drive (Drive was down when it started: the lease could not be taken then). It
said "stopped by the take-over of the run's lease", though nothing was taken over: this
trainer never held it. Now it says what happened; a real take-over keeps its words. The
lease as the trainer takes it (``held_folder``) and a second trainer's RunLease, the real
PyDrive2 stack against the emulator; the line as ``trainer train`` prints it
(``stop_lines.stopped_text`` with the stop's name and detail)."""
from __future__ import annotations

import os
import socket

from _lease_lines import TAIL, assert_line, refused_while_held_before, stop_line
from _lease_pairs import save_pair

DEST = "drive:runs/exp"


def test_held_when_first_reached_is_no_take_over(drive_env, emulator, tmp_path, fast_retries):
    from trainer.config import load_config
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease, held_folder
    from trainer.stopping import StopFlag

    out_dir = str(tmp_path / "first")
    cfg = load_config(None, [f"drive.logs={DEST}", f"train.out_dir={out_dir}",
                             "drive.lease_minutes=0.05"])
    stop = StopFlag(60.0)
    # (torch's import first: seconds on a loaded machine)
    save_pair(out_dir, "epoch_001.pt", 1)
    emulator.faults.inject(method="POST", path="/upload/", status=503, times=None)
    first = held_folder(cfg, stop)   # (Drive down: its claim could not be written)
    emulator.faults.clear()
    second = RunLease(DriveFolder(DEST, str(tmp_path / "second")), period_s=3.0)
    second.acquire()
    second.start()   # (renewed: live however slow this test runs)
    refused_while_held_before(first, second, stop, out_dir, DEST)
    assert "take-over of" not in stop_line(stop, out_dir)


def test_a_take_over_keeps_its_words(drive_env, emulator, tmp_path):
    from trainer.drive import DriveFolder
    from trainer.errors import LeaseLostError
    from trainer.lease import RunLease
    from trainer.stopping import LEASE_LOST, StopFlag

    out_dir = str(tmp_path / "first")
    stop = StopFlag(60.0)
    first = RunLease(DriveFolder(DEST, out_dir), period_s=3.0,
                     on_lost=lambda text: stop.request(LEASE_LOST, text))
    first.acquire()
    second = RunLease(DriveFolder(DEST, str(tmp_path / "second")), period_s=3.0,
                      take_over=True)
    second.acquire()
    try:
        try:
            first.check()
        except LeaseLostError:
            pass
        else:
            raise AssertionError("still held after a take-over")
    finally:
        second.release()
        first.release()
    who = f"pid {os.getpid()} on {socket.gethostname()}"
    assert_line(stop, out_dir, (
        f"Error: stopped by the take-over of the run's lease at epoch 1, iteration 3: "
        f"epoch_001.pt is saved in {out_dir} only: {who} took the run's lease on {DEST} "
        f"over (renewed 0 s ago)" + TAIL))
