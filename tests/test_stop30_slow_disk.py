"""stop30: a stop's save on a run folder whose disk answers but writes slowly (Colab's
/content/drive, a loaded NFS mount: a 70 MB checkpoint in more than the grace), with
``drive.logs`` set. The stop looked at the folder halfway through the grace, found it
answering, and then waited for the write without a bound (``job.ended.wait()``): past
``train.grace_seconds``, until the SIGKILL, with nothing on Drive. Now the copy elsewhere
starts halfway through the grace whatever the disk answers, and whichever copy is complete
first is the one sent: the stop ends within its grace, one file of each name on Drive.

The slow disk: the stop's write into the run folder waits on an event the test sets (the
folder can still be listed). The real writer and save policy; the real PyDrive2 stack against
the emulator."""
from __future__ import annotations

import os
import re
import tempfile
import threading
import time

from _tempdir import own_tempdir  # noqa: F401  (an autouse fixture)
from test_attacktr29_hung import _ended
from test_train28_hung_disk import _policy, _sigterm_stop
from test_writer import _until

SPEC = "drive:Models/s30/slow"
#: The stops' grace: the copy elsewhere starts at its half and has the other half to be
#: written, sent and verified (2.5 s left it 1.25 s: at load 20 it missed, flakes44).
GRACE = 4.0


class SlowDisk:
    """The stop's write into ``logs`` begins, then waits until :meth:`ends` (the rest of the
    bytes); :attr:`began` is set when it is under way. Other writes go as they come."""

    def __init__(self, monkeypatch, logs):
        from trainer import checkpoint as ckpt

        self.began, self._end = threading.Event(), threading.Event()
        real = ckpt.save_checkpoint

        def save(state, path, **kwargs):
            if os.path.dirname(path) == str(logs) and "autosave_" in path:
                self.began.set()
                self._end.wait(30)
            return real(state, path, **kwargs)

        monkeypatch.setattr(ckpt, "save_checkpoint", save)

    def ends(self) -> None:
        self._end.set()


def _slow_policy(tiny_config, logs: str, drive):
    """The save policy of a run in ``logs`` with ``drive.logs`` SPEC on ``drive`` and a grace
    of GRACE; ``(run, writer, saver)``."""
    run, writer, saver = _policy(tiny_config, logs, drive, grace=GRACE)
    saver.drive_spec = SPEC
    return run, writer, saver


def _stopped_within_grace(run, writer, saver, disk: SlowDisk):
    """The stop (:func:`_sigterm_stop`) on a thread, the slow write let end after it: it
    ended within its grace (GRACE, and 1 s to spare); what it raised."""
    out: list = []
    try:
        ended, took = _ended(_sigterm_stop(run, saver, out), 8.0)
    finally:
        disk.ends()
        writer.close()
    assert ended and took < GRACE + 1.0, f"the stop took {took:.1f} s (grace {GRACE:g} s)"
    return out[0]


def _names_on_drive(store) -> list[str]:
    return sorted(e.name for e in store.list(store.resolve("Models/s30/slow")))


def test_a_stop_on_a_slow_disk_with_drive_ends_within_its_grace_saved_on_drive(
        emulator, drive_env, local_state, store, tiny_config, monkeypatch):
    from trainer.drive import DriveFolder, newest_of_current_run

    logs = os.path.abspath(os.path.join(tempfile.tempdir, "..", "logs"))
    disk = SlowDisk(monkeypatch, logs)
    run, writer, saver = _slow_policy(tiny_config, logs, DriveFolder(SPEC, logs))
    stopped = _stopped_within_grace(run, writer, saver, disk)
    said = str(stopped)
    assert re.fullmatch(
        r"stopped by SIGTERM at epoch 2, iteration 3: autosave_00000003\.pt could not be "
        rf"written \(its write in {re.escape(logs)} has not ended after \d\.\d s: the disk "
        rf"answers, but too slowly for train\.grace_seconds \({GRACE:g} s\)\); it is sent to "
        r"drive:Models/s30/slow from a temporary folder instead and verified there \(\d\.\d s "
        r"after the signal; the temporary copy is removed\); resume with --resume auto",
        said), said
    assert stopped.exit_code == 143
    newest = newest_of_current_run(DriveFolder(SPEC, logs + "-other").checkpoints())
    assert newest is not None and newest.name == "autosave_00000003.pt"
    assert _names_on_drive(store) == ["autosave_00000003.json", "autosave_00000003.pt"]
    assert [n for n in os.listdir(tempfile.tempdir) if n.startswith("trainer-stop-")] == []


def test_a_slow_write_that_ends_first_is_pushed_and_nothing_is_sent_twice(
        emulator, drive_env, local_state, store, tiny_config, monkeypatch):
    """The run folder's write ends while the copy elsewhere is still being written (its
    /tmp is slow too): the copy elsewhere is dropped before it is sent, the run folder's push
    sends the save, and Drive holds one file of each name; no copy is left in /tmp."""
    from trainer import checkpoint as ckpt
    from trainer.drive import DriveFolder

    logs = os.path.abspath(os.path.join(tempfile.tempdir, "..", "logs"))
    disk = SlowDisk(monkeypatch, logs)
    slow_tmp = ckpt.save_checkpoint
    tmp_began, tmp_end = threading.Event(), threading.Event()

    def save(state, path, **kwargs):
        if path.startswith(tempfile.tempdir):
            tmp_began.set()
            tmp_end.wait(30)
        return slow_tmp(state, path, **kwargs)

    monkeypatch.setattr(ckpt, "save_checkpoint", save)
    run, writer, saver = _slow_policy(tiny_config, logs, DriveFolder(SPEC, logs))
    out: list = []
    stopping = threading.Thread(target=_sigterm_stop(run, saver, out), daemon=True)
    try:
        stopping.start()
        assert tmp_began.wait(10), "no copy elsewhere was begun"
        disk.ends()                  # the run folder's copy is complete first
        stopping.join(8.0)
        ended = not stopping.is_alive()
    finally:
        disk.ends()
        tmp_end.set()                # (the copy elsewhere, dropped, ends now)
        stopping.join(10)
        writer.close()
    assert ended and out, "the stop did not end within its grace"
    said = str(out[0])
    assert said.startswith("stopped by SIGTERM at epoch 2, iteration 3: autosave_00000003.pt "
                           "is saved and verified on drive:Models/s30/slow ("), said
    assert _names_on_drive(store) == ["autosave_00000003.json", "autosave_00000003.pt"]
    _until(lambda: not [n for n in os.listdir(tempfile.tempdir) if n.startswith("trainer-"
                                                                               "stop-")],
           "the dropped copy stays in /tmp")


def test_a_slow_write_that_ends_while_its_copy_elsewhere_is_sent_leaves_one_file_each(
        emulator, drive_env, local_state, store, tiny_config, monkeypatch):
    """The run folder's write ends just as the copy elsewhere begins to go to Drive: that copy
    is sent and verified, and no push sends the run folder's (two files of one name were
    left there); the temporary folder is removed."""
    from trainer import checkpoint as ckpt
    from trainer.drive import DriveFolder

    logs = os.path.abspath(os.path.join(tempfile.tempdir, "..", "logs"))
    disk = SlowDisk(monkeypatch, logs)
    mine = os.path.join(logs, "autosave_00000003.pt")

    pushed: list = []

    class Gate(DriveFolder):
        def send_alone(self, paths):
            disk.ends()              # the run folder's copy is complete as this one goes
            _until(lambda: ckpt.read_sidecar(mine) is not None, "the slow write never ended")
            # A push meanwhile (a retry of a failed one; the next save's) leaves the name to
            # this copy, and does not count it as verified.
            pushed.append(writer.wait_pushed(writer.push_soon(), time.monotonic() + 5))
            pushed.append((_names_on_drive(store), writer.verified("autosave_00000003.pt")))
            super().send_alone(paths)

    run, writer, saver = _slow_policy(tiny_config, logs, Gate(SPEC, logs))
    said = str(_stopped_within_grace(run, writer, saver, disk))
    assert re.fullmatch(
        rf"stopped by SIGTERM at epoch 2, iteration 3: autosave_00000003\.pt is saved in "
        rf"{re.escape(logs)} late; it is sent to drive:Models/s30/slow from a temporary folder "
        r"instead and verified there \(\d\.\d s after the signal; the temporary copy is "
        r"removed\); resume with --resume auto", said), said
    assert _names_on_drive(store) == ["autosave_00000003.json", "autosave_00000003.pt"]
    assert [n for n in os.listdir(tempfile.tempdir) if n.startswith("trainer-stop-")] == []
    assert pushed == [True, ([], False)]


def test_a_slow_write_whose_copy_elsewhere_drive_refuses_is_still_waited_for(
        emulator, drive_env, local_state, fast_retries, store, tiny_config, monkeypatch):
    """Drive refuses the copy elsewhere (its quota); the run folder's write, slow, ends later
    within the grace: the stop waits for it and says the save is complete there, with the
    command that uploads it, not that it could not be written."""
    from test_writer import _uploads_started
    from trainer.drive import DriveFolder

    logs = os.path.abspath(os.path.join(tempfile.tempdir, "..", "logs"))
    disk = SlowDisk(monkeypatch, logs)
    run, writer, saver = _slow_policy(tiny_config, logs, DriveFolder(SPEC, logs))
    emulator.faults.inject("POST", r"/upload/", reason="storageQuotaExceeded", times=None)
    out: list = []
    stopping = threading.Thread(target=_sigterm_stop(run, saver, out), daemon=True)
    try:
        stopping.start()
        _until(lambda: _uploads_started(emulator), "the copy elsewhere was never sent", 10)
        disk.ends()
        stopping.join(8.0)
        ended = not stopping.is_alive()
    finally:
        disk.ends()
        stopping.join(10)
        writer.close()
    assert ended and out, "the stop did not end within its grace"
    said = str(out[0])
    assert re.fullmatch(
        rf"stopped by SIGTERM at epoch 2, iteration 3: autosave_00000003\.pt is saved in "
        rf"{re.escape(logs)} but did not reach drive:Models/s30/slow within "
        rf"train\.grace_seconds \({GRACE:g} s\) \(Not enough Drive storage.*\); --resume auto on "
        r"this machine continues from it, elsewhere upload it first: drivestage push "
        rf"{re.escape(logs)} drive:Models/s30/slow", said), said
    assert [n for n in os.listdir(tempfile.tempdir) if n.startswith("trainer-stop-")] == []
