"""The lease's refusal (docs/troubleshooting.md), made to happen by the real code: a lease
held and renewed on the emulator by :class:`trainer.lease.RunLease` in this process, a
trainer of the run started beside it."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from _messages import renders, shown
from trainer.cli import cli

REFUSED = "is the folder of a run another trainer still trains"


@renders(REFUSED)
def test_a_trainer_is_refused_while_another_renews_the_lease(drive_env, tiny_config, tmp_path):
    import os
    import socket

    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    holder = RunLease(DriveFolder("drive:runs/exp", str(tmp_path / "other")), period_s=0.6)
    holder.acquire()
    holder.start()
    try:
        # (A 3 s period, stale after 9 s by this trainer's clock: at 0.6 s (0.01) a holder's
        # renewal thread starved 1.8 s on a loaded machine read as gone, taken over: exit 0.)
        path = tiny_config(**{"drive.logs": "drive:runs/exp", "drive.lease_minutes": 0.05})
        r = CliRunner().invoke(cli, ["train", "-c", path])
    finally:
        holder.release()
    assert r.exit_code == 1, (r.output, r.exception)
    line = r.stderr.strip().splitlines()[-1]
    who = f"pid {os.getpid()} on {socket.gethostname()}"
    assert line.startswith(f"Error: drive.logs drive:runs/exp {REFUSED}: {who} holds its lease "
                           "(last renewed "), line
    assert line.endswith(" ago); two trainers of one run overwrite each other's checkpoints "
                         "there. Stop that one, or wait 9 s after it stopped renewing and start "
                         "again, or start this one with --take-over (that one then stops at its "
                         "next save); or give this run another drive.logs"), line
    shown(REFUSED, line)
    assert not (tmp_path / "logs" / "last.pt").exists()   # nothing trained


STOPPED = "stopped by the take-over of the run's lease"


@pytest.mark.slow
@renders(STOPPED)
def test_a_trainer_whose_lease_is_taken_over_stops(drive_env, store, tiny_config, tmp_path):
    """A lease taken over (--take-over elsewhere: here a RunLease of the test's, on a thread,
    once the trainer's claim and a checkpoint of it are on Drive): the trainer saves here,
    pushes nothing more, and ends with that line, exit 1."""
    import threading
    import time

    from drivestage.paths import StorePath
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    def names() -> list[str]:
        try:
            folder = store.resolve(StorePath.parse("runs/exp"))
        except Exception:
            return []
        return [e.name for e in store.list(folder)]

    taker = RunLease(DriveFolder("drive:runs/exp", str(tmp_path / "other")), period_s=0.6,
                     take_over=True)
    took = threading.Event()

    def take() -> None:
        end = time.monotonic() + 120
        while time.monotonic() < end:
            got = names()
            if any(n.startswith("trainer-lease-") for n in got) and "epoch_001.json" in got:
                taker.acquire()
                took.set()
                return
            time.sleep(0.1)

    thread = threading.Thread(target=take)
    thread.start()
    # (The taker renews nothing: by this trainer's 0.05 (stale after 9 s, not 1.8 s) its
    # claim is live when this trainer's next save reads it, however late on a loaded machine.)
    path = tiny_config(**{"drive.logs": "drive:runs/exp", "drive.lease_minutes": 0.05,
                          "train.epochs": 1000, "train.keep_local": 2})
    try:
        r = CliRunner().invoke(cli, ["train", "-c", path])
    finally:
        thread.join()
        taker.release()
    assert took.is_set()
    assert r.exit_code == 1, (r.output, r.exception)
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith(f"Error: {STOPPED} at epoch "), line
    shown(STOPPED, line)
