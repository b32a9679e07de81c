"""attacktr29: the line of a final push that left another run's checkpoints on Drive (two runs
started into one ``drive.logs`` at the same time). It named them as "not there" and told the
user to ``upload them with drivestage push <out> drive:<the same folder>``, which leaves them
again (or, with ``--force``, deletes the other run's verified checkpoints); the error before it
says to give the run its own folder. Now the line names them as another run's and gives a
push into a folder of this run's own.

The real writer and save policy of two runs; the real PyDrive2 stack against the emulator."""
from __future__ import annotations

import pytest

from test_keeplocal25 import _save_epochs
from test_train28_hung_disk import _policy

SPEC = "drive:Models/tr29/shared"


def test_a_final_push_that_left_another_runs_checkpoint_says_where_to_push_instead(
        emulator, drive_env, local_state, tiny_config, tmp_path):
    from drivestage.errors import MirrorError
    from trainer.drive import DriveFolder

    mine, other = tmp_path / "mine", tmp_path / "other"
    run, writer, saver = _policy(tiny_config, mine, DriveFolder(SPEC, str(mine)))
    saver.drive_spec = SPEC
    _save_epochs(run, saver, 1)
    writer.wait(saver._epoch_job)
    assert writer.verified("epoch_001.pt")
    run2, writer2, saver2 = _policy(tiny_config, other, DriveFolder(SPEC, str(other)))
    assert run2.state.run != run.state.run
    _save_epochs(run2, saver2, 1, 2)        # its epoch_002.pt reaches Drive first
    writer2.close()
    _save_epochs(run, saver, 2)
    with pytest.raises(MirrorError) as failed:
        saver._close(push_error=True)
    said = str(failed.value)
    assert said.startswith(f"mirror of {mine} to {SPEC} failed: {SPEC} holds another run's "
                           f"epoch_002.pt, left as they are"), said
    assert said.endswith(
        f"; the newest verified there is epoch_001.pt (epoch 1, iteration 2); not there as this "
        f"run's: epoch_002.pt (another run's of that name is there): push this run into a "
        f"folder of its own with drivestage push {mine} drive:<a new Drive folder> before this "
        f"machine goes"), said
