"""stopleft31: two lines of a stop that told the user the wrong thing.

- A stop's write on a disk merely slow, whose folder takes more than 0.2 s to list (Colab's
  /content/drive under a 70 MB write): at half the grace the writer warned ``the disk does
  not answer (a hung network or FUSE mount?)`` (its own listing, bounded at 0.2 s), and the
  stop's line right after it said ``the disk answers, but too slowly`` (its own listing,
  begun later and waited for longer). One listing, begun at the signal, now words both.
- A SIGTERM while the end of a run waits on ``drive.logs`` in a Google Drive mount (hung:
  trainer.final_wait) said ``run the same command again to upload them``: that command pushes
  into the same mount again. It now gives the ``drivestage push … drive:…`` that needs no
  mount, as the run's other hung-mount lines do.
"""
from __future__ import annotations

import logging
import os
import re
import signal
import tempfile
import threading

from _drivemount import working_drive_mount  # noqa: F401 (fixture)
from _tempdir import own_tempdir  # noqa: F401  (an autouse fixture)
from test_stop30_slow_disk import GRACE, SPEC, SlowDisk, _slow_policy, _stopped_within_grace
from trainer.state import Position

#: Seconds a listing of the slow disk's run folder takes while the stop's write goes on there:
#: more than the writer's own bound (trainer.write_order.LIST_WITHIN_S, 0.2 s), far less than
#: half the grace (1.25 s).
LIST_TAKES_S = 0.5


def test_a_folder_slow_to_list_is_not_said_to_be_a_disk_that_does_not_answer(
        emulator, drive_env, local_state, tiny_config, monkeypatch, caplog):
    from trainer.drive import DriveFolder

    logs = os.path.abspath(os.path.join(tempfile.gettempdir(), "..", "logs"))
    disk = SlowDisk(monkeypatch, logs)
    listdir = os.listdir

    def slow_listdir(path=".", *args):
        if os.fspath(path) == logs and disk.began.is_set() and not disk._end.is_set():
            threading.Event().wait(LIST_TAKES_S)   # (its latency while the write goes on)
        return listdir(path, *args)

    monkeypatch.setattr(os, "listdir", slow_listdir)
    run, writer, saver = _slow_policy(tiny_config, logs, DriveFolder(SPEC, logs))
    with caplog.at_level(logging.WARNING, logger="trainer.writer"):
        said = str(_stopped_within_grace(run, writer, saver, disk))
    assert f"the disk answers, but too slowly for train.grace_seconds ({GRACE:g} s)" in said, said
    warned = [r.getMessage() for r in caplog.records if "has not ended for" in r.getMessage()]
    assert len(warned) == 1 and re.fullmatch(
        rf"writing autosave_00000003\.pt in {re.escape(logs)} has not ended for \d s, though "
        r"its folder lists: the disk answers, but slowly; the saves after it wait for it",
        warned[0]), warned


def test_a_stop_while_the_end_waits_on_drive_logs_in_a_hung_mount_gives_the_push_to_drive(
        local_state, tiny_config, tmp_path, working_drive_mount):
    from test_hungend30_final_wait import _fit_end, _policy
    from trainer.drive import DriveFolder
    from trainer.errors import TrainingInterrupted
    from trainer.stopping import StopFlag

    mount = working_drive_mount
    logs = tmp_path / "logs"
    spec = str(mount.point / "MyDrive" / "Models" / "run")
    run, writer, saver = _policy(tiny_config, logs, DriveFolder(spec, str(logs)),
                                 **{"drive.logs": spec})
    saver.final_wait.patience = 30.0   # (the stop comes well before the end gives up)
    run.stop = saver.stop = StopFlag(0.5)
    try:
        saver.on_fit_epoch_end(run, Position(1, 2, 0), {})
        assert writer.wait(saver._epoch_job)
        mount.hang()   # DriveFS stops answering (not ended: no ENOTCONN)
        saver.on_fit_epoch_end(run, Position(2, 4, 0), {})
        run.stop.request(signal.SIGTERM)
        got = _fit_end(saver, run)
    finally:
        mount.answer()
        writer.close()
    assert isinstance(got[0], TrainingInterrupted), got
    assert got[0].exit_code == 143
    assert str(got[0]) == (
        f"stopped by SIGTERM while the last checkpoints were uploaded; they are complete in "
        f"{logs}: {spec} is in the Google Drive mount {mount.point} (it may not answer: the "
        f"same command would push into it again): upload them with drivestage push {logs} "
        f"drive:Models/run before this machine goes (it sends what Drive lacks; it trains "
        f"nothing more)")


def test_a_stop_whose_push_waits_on_drive_logs_in_a_hung_mount_gives_the_push_to_drive(
        local_state, tiny_config, tmp_path, working_drive_mount):
    """The same during training: the stop's save is complete in the run folder, its push into
    the hung mount does not end within the grace; the upload the line gives needs no mount."""
    from test_hungend30_final_wait import _policy
    from test_train28_hung_disk import _sigterm_stop
    from trainer.drive import DriveFolder
    from trainer.stopping import StopFlag

    mount = working_drive_mount
    logs = tmp_path / "logs"
    spec = str(mount.point / "MyDrive" / "Models" / "run")
    run, writer, saver = _policy(tiny_config, logs, DriveFolder(spec, str(logs)),
                                 **{"drive.logs": spec})
    run.stop = saver.stop = StopFlag(0.5)
    out: list = []
    try:
        mount.hang()
        _sigterm_stop(run, saver, out)()
    finally:
        mount.answer()
        writer.close()
    assert out and out[0].exit_code == 143, out
    assert str(out[0]) == (
        f"stopped by SIGTERM at epoch 2, iteration 3: autosave_00000003.pt is saved in {logs} "
        f"but did not reach {spec} within train.grace_seconds (0.5 s); --resume auto on this "
        f"machine continues from it, elsewhere upload it first: drivestage push {logs} "
        f"drive:Models/run")
