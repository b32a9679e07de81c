"""stop29: the line of a stop whose save did not reach Drive, in a ``drive.logs`` that holds
another run's checkpoint of one of this run's names (two runs started into one folder at
once). It said ``elsewhere upload it first: drivestage push <out> drive:<the same folder>``:
that push leaves the other run's file again and exits 1 saying ``--force`` replaces it,
which deletes the other run's verified checkpoint (the flaw attacktr29 fixed in the final
push's line). Now the line gives a push into a folder of this run's own, and how to resume
from there.

The real writer and save policy of two runs; the real PyDrive2 stack against the emulator."""
from __future__ import annotations

import re
import signal

import pytest

from test_keeplocal25 import _save_epochs
from test_train28_hung_disk import _policy
from trainer.errors import TrainingInterrupted
from trainer.state import Position

SPEC = "drive:Models/stop29/shared"


def test_a_stop_save_drive_refused_beside_another_runs_checkpoint_says_where_to_push(
        emulator, drive_env, local_state, tiny_config, tmp_path):
    from trainer.drive import DriveFolder

    mine, other = tmp_path / "mine", tmp_path / "other"
    run, writer, saver = _policy(tiny_config, mine, DriveFolder(SPEC, str(mine)), grace=3.0)
    saver.drive_spec = SPEC
    _save_epochs(run, saver, 1)
    writer.wait(saver._epoch_job)
    run2, writer2, saver2 = _policy(tiny_config, other, DriveFolder(SPEC, str(other)))
    _save_epochs(run2, saver2, 1, 2)        # its epoch_002.pt reaches Drive first
    writer2.close()
    _save_epochs(run, saver, 2)             # this run's is left there as another run's
    writer.wait(saver._epoch_job)
    assert writer.left == ["epoch_002.pt"]
    emulator.faults.inject(method="POST", path="/upload/", status=403,
                           reason="storageQuotaExceeded", times=100)
    run.stop.request(signal.SIGTERM)
    run.state.pos = Position(2, 5, 1)
    try:
        with pytest.raises(TrainingInterrupted) as stopped:
            saver._save_and_stop(run, Position(2, 5, 1))
    finally:
        writer.close()
    said = str(stopped.value)
    assert stopped.value.exit_code == 143
    assert re.fullmatch(
        rf"stopped by SIGTERM at epoch 3, iteration 5: autosave_00000005\.pt is saved in "
        rf"{re.escape(str(mine))} but did not reach {SPEC} within train\.grace_seconds \(3 s\) "
        rf"\(Not enough Drive storage .*\); --resume auto on this machine continues from it, "
        rf"elsewhere upload it first: drivestage push {re.escape(str(mine))} drive:<a new "
        rf"Drive folder> \({SPEC} holds another run's epoch_002\.pt\) and resume there with "
        rf"--set drive\.logs=<that folder>", said), said
