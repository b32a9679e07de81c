"""fence37: the stop's line of a trainer that found the run's lease held by another when it
first reached Drive (Drive was down when it started: the lease could not be taken then). It
said "stopped by the take-over of the run's lease", though nothing was taken over: this
trainer never held it. Now it says what happened; a real take-over keeps its words. The
lease as the trainer takes it (``held_folder``) and a second trainer's RunLease, the real
PyDrive2 stack against the emulator; the line as ``trainer train`` prints it
(``stop_lines.stopped_text`` with the stop's name and detail)."""
from __future__ import annotations

import os
import re
import socket

DEST = "drive:runs/exp"


def _pair(folder, name: str, weight: float) -> None:
    import torch

    from trainer import checkpoint as ckpt

    os.makedirs(folder, exist_ok=True)
    state = {"format_version": ckpt.FORMAT_VERSION, "model": {"w": torch.full((64,), weight)},
             "optimizer": {}, "epoch": 1, "iteration": 3, "epoch_iteration": 3, "config": {},
             "run": "r1"}
    ckpt.save_checkpoint(state, os.path.join(folder, name), saved=1000.0 + weight)


def _line(stop, out_dir: str) -> str:
    from trainer.stop_lines import stopped_text

    return "Error: " + stopped_text(f"stopped by {stop.name} at epoch 1, iteration 3",
                                    "epoch_001.pt", out_dir, stop.detail)


def _tail() -> str:
    return (", and this trainer pushes nothing more there (it would replace that one's "
            "checkpoints); that one goes on from Drive. To go on with this one instead, stop "
            "that one, then start this one again with --take-over (--resume auto continues "
            "from epoch_001.pt)")


def test_held_when_first_reached_is_no_take_over(drive_env, emulator, tmp_path, fast_retries):
    from trainer.config import load_config
    from trainer.drive import DriveFolder
    from trainer.errors import LeaseLostError
    from trainer.lease import RunLease, held_folder, release_all
    from trainer.stopping import StopFlag

    out_dir = str(tmp_path / "first")
    cfg = load_config(None, [f"drive.logs={DEST}", f"train.out_dir={out_dir}",
                             "drive.lease_minutes=0.05"])
    stop = StopFlag(60.0)
    _pair(out_dir, "epoch_001.pt", 1)   # (torch's import first: seconds on a loaded machine)
    emulator.faults.inject(method="POST", path="/upload/", status=503, times=None)
    first = held_folder(cfg, stop)   # (Drive down: its claim could not be written)
    emulator.faults.clear()
    second = RunLease(DriveFolder(DEST, str(tmp_path / "second")), period_s=3.0)
    second.acquire()
    second.start()   # (renewed: live however slow this test runs)
    try:
        try:
            first.push()
        except LeaseLostError:
            pass
        else:
            raise AssertionError("pushed while another trainer holds the lease")
    finally:
        second.release()
        release_all()
    who = f"pid {os.getpid()} on {socket.gethostname()}"
    want = (f"Error: stopped by another trainer holding the run's lease at epoch 1, iteration 3: "
            f"epoch_001.pt is saved in {out_dir} only: {who} holds the run's lease on {DEST} "
            f"(renewed 0 s ago; held before this trainer first reached Drive, which was down "
            f"at its start)" + _tail())
    line = _line(stop, out_dir)
    assert re.sub(r"renewed \d+ s ago", "renewed 0 s ago", line) == want, line
    assert "take-over of" not in line


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
    want = (f"Error: stopped by the take-over of the run's lease at epoch 1, iteration 3: "
            f"epoch_001.pt is saved in {out_dir} only: {who} took the run's lease on {DEST} "
            f"over (renewed 0 s ago)" + _tail())
    line = _line(stop, out_dir)
    assert re.sub(r"renewed \d+ s ago", "renewed 0 s ago", line) == want, line
