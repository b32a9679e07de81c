"""lease36: after a --take-over of a live lease, the taker's first push waits until the
trainer it took the lease from is gone: that one stops pushing at its next check, but a push it
had begun ends first, and sent before it ended, the taker's files were replaced by its (or
their same-named twins removed). RunLease objects of this process against the emulator."""
from __future__ import annotations

import threading
import time

import pytest

from trainer.drive import DriveFolder
from trainer.errors import LeaseLostError
from trainer.lease import RunLease


def test_the_first_push_after_a_take_over_waits_for_the_old_holder(drive_env, tmp_path, caplog):
    old = RunLease(DriveFolder("drive:runs/exp", str(tmp_path / "old")), period_s=30.0)
    old.acquire()
    new = RunLease(DriveFolder("drive:runs/exp", str(tmp_path / "new")), period_s=30.0,
                   take_over=True)
    new.acquire()
    with pytest.raises(LeaseLostError):   # the old one's next check: taken over
        old.check()
    done = threading.Event()
    thread = threading.Thread(target=lambda: (new.after_predecessor(), done.set()))
    caplog.set_level("INFO", "trainer.lease")
    thread.start()
    try:
        # Its claim is live (renewed 0 s ago; stale after 90 s): the push waits, says so, and
        # waits on past its next look at the claims (one a second).
        end = time.monotonic() + 30
        while not any("waiting for pid " in r.getMessage() and "whose lease this run took over"
                      in r.getMessage() for r in caplog.records):
            assert not done.is_set() and time.monotonic() < end
            time.sleep(0.02)
        assert not done.wait(1.5)
        old.release()   # its run ended (its last push with it): the claim goes
        assert done.wait(30)
    finally:
        old.release()
        thread.join(60)
        new.release()
    new.after_predecessor()   # once only: no wait, no request


def test_status_names_the_trainer_that_holds_the_lease(drive_env, store, tiny_config, tmp_path):
    """``trainer status`` says which trainer runs the run now (and nothing once none does)."""
    import os
    import re
    import socket

    from click.testing import CliRunner

    from trainer.cli import cli

    path = tiny_config(**{"drive.logs": "drive:runs/exp", "train.epochs": 1,
                          "train.freeze_epochs": 0})
    assert CliRunner().invoke(cli, ["train", "-c", path]).exit_code == 0
    r = CliRunner().invoke(cli, ["status", "-c", path])
    assert r.exit_code == 0 and "trained now by" not in r.output, r.output
    holder = RunLease(DriveFolder("drive:runs/exp", str(tmp_path / "other")), period_s=60.0)
    holder.acquire()
    try:
        r = CliRunner().invoke(cli, ["status", "-c", path])
    finally:
        holder.release()
    assert r.exit_code == 0, r.output
    said = [l for l in r.output.splitlines() if "trained now" in l]
    assert len(said) == 1 and re.fullmatch(
        f"drive:runs/exp: trained now by pid {os.getpid()} on {re.escape(socket.gethostname())} "
        r"\(its lease renewed \d s ago\)", said[0]), r.output
