"""stopleft31: what the start's sweep of this machine's temporary folder (stop30) left.

- ``trainer-rescued-…`` (a state rescued when the run folder's mount stopped) was never
  swept, a whole checkpoint each, for good; now under the rules of ``trainer-stop-…``: gone
  once its bytes are verified on Drive or in the run folder.
- A ``trainer-stop-…`` copy the user resumed from (``--resume <path>``, as the stop's line
  says) was never swept either: the run writes new states, so its md5 appears nowhere
  else. Now one of this run that Drive (or the run folder, md5-checked) holds a checkpoint of
  the run further on than, saved later, goes: at the next start, and at the end of the run
  resumed from it.
  One of another run, or one saved after Drive's (the run sent back past it), stays.

The real save policy and DriveFolder against the emulator."""
from __future__ import annotations

import os
import tempfile

from _tempdir import own_tempdir  # noqa: F401  (an autouse fixture)
from test_train28_hung_disk import _policy
from trainer.state import Position

SPEC = "drive:Models/sl31/sweep"


def _leftover(state: dict, folder: str, name: str, **change) -> str:
    from trainer import checkpoint as ckpt

    saved = change.pop("saved", None)
    os.makedirs(os.path.join(tempfile.gettempdir(), folder))
    return ckpt.save_checkpoint({**state, **change},
                                os.path.join(tempfile.gettempdir(), folder, name), saved=saved)


def _left() -> list[str]:
    return sorted(n for n in os.listdir(tempfile.gettempdir()) if n.startswith("trainer-"))


def test_the_start_sweeps_rescued_copies_and_copies_this_run_went_on_past(
        emulator, drive_env, local_state, tiny_config, caplog):
    from trainer import checkpoint as ckpt
    from trainer.drive import DriveFolder
    from trainer.saving import snapshot

    logs = os.path.abspath(os.path.join(tempfile.gettempdir(), "..", "logs"))
    drive = DriveFolder(SPEC, logs)
    run, writer, saver = _policy(tiny_config, logs, drive)
    state = snapshot(run)
    mine = run.state.run
    assert mine
    # On Drive: this run's epoch 4 (iteration 12), saved at 2000; the run starts from it.
    ckpt.save_checkpoint({**state, "epoch": 4, "iteration": 12, "epoch_iteration": 0},
                         os.path.join(logs, "epoch_004.pt"), saved=2000.0)
    drive.push()
    run.state.pos = Position(4, 12, 0)
    on_drive = _leftover(state, "trainer-rescued-ondrive", "epoch_002.pt", epoch=2,
                         iteration=6, epoch_iteration=0)
    drive.send_alone([on_drive, ckpt.sidecar_path(on_drive)])
    resumed = _leftover(state, "trainer-stop-resumed", "autosave_00000007.pt", epoch=2,
                        iteration=7, epoch_iteration=1, saved=1000.0)   # went on past it
    only = _leftover(state, "trainer-rescued-only", "epoch_005.pt", epoch=5, iteration=15,
                     epoch_iteration=0, saved=3000.0)                    # further on, here only
    _leftover(state, "trainer-stop-later", "autosave_00000009.pt", epoch=3, iteration=9,
              epoch_iteration=0, saved=3000.0)      # saved after Drive's: sent back past it
    _leftover(state, "trainer-stop-theirs", "autosave_00000007.pt", epoch=2, iteration=7,
              epoch_iteration=1, saved=1000.0, run="another")
    try:
        with caplog.at_level("INFO", logger="trainer"):
            saver.on_fit_start(run)
            assert saver.swept.join(30)
    finally:
        writer.close()
    assert _left() == ["trainer-rescued-only", "trainer-stop-later", "trainer-stop-theirs"]
    said = sorted(r.getMessage() for r in caplog.records if "trainer-" in r.getMessage())
    assert said == [
        f"{os.path.dirname(only)} holds this run's checkpoint of epoch 5, iteration 15, further "
        f"on than where it starts, on this machine only (rescued when the run folder's mount "
        f"stopped): stop and run again with --resume {only} to train on from it",
        f"removed {os.path.dirname(on_drive)}, an earlier rescued copy of epoch_002.pt: it is "
        f"verified in {SPEC}/epoch_002.pt",
        f"removed {os.path.dirname(resumed)}, an earlier stop's copy of autosave_00000007.pt: "
        f"{SPEC}/epoch_004.pt (epoch 4, iteration 12) of this run is further on, saved later, "
        f"verified there"], said


def test_the_end_of_a_run_resumed_from_a_stop_s_copy_removes_it(
        emulator, drive_env, local_state, tiny_config, caplog):
    """``--resume /tmp/trainer-stop-…/autosave_00000003.pt``, as the stop's line said: once
    the run's last epoch is verified on Drive, that copy goes (it stayed for good)."""
    from trainer.drive import DriveFolder
    from trainer.saving import snapshot

    logs = os.path.abspath(os.path.join(tempfile.gettempdir(), "..", "logs"))
    run, writer, saver = _policy(tiny_config, logs, DriveFolder(SPEC, logs))
    state = snapshot(run)
    resumed = _leftover(state, "trainer-stop-x", "autosave_00000003.pt", epoch=1, iteration=3,
                        epoch_iteration=1, saved=writer.taken())
    run.resumed_from, run.state.pos = resumed, Position(1, 3, 1)   # (restored from it)
    saver.on_fit_start(run)
    assert saver.swept.join(30)
    assert _left() == ["trainer-stop-x"]   # (nothing further on yet: kept)
    run.state.pos = Position(2, 4, 0)
    saver.on_fit_epoch_end(run, Position(2, 4, 0), {})
    with caplog.at_level("INFO", logger="trainer"):
        saver.on_fit_end(run)
    assert writer.verified("epoch_002.pt")
    assert _left() == []
    assert [r.getMessage() for r in caplog.records if "trainer-stop-" in r.getMessage()] == [
        f"removed {os.path.dirname(resumed)}, an earlier stop's copy of autosave_00000003.pt: "
        f"{SPEC}/epoch_002.pt (epoch 2, iteration 4) of this run is further on, saved later, "
        "verified there"]


def test_the_end_of_a_run_resumed_from_a_rescued_state_without_drive_removes_it(
        tiny_config, caplog):
    """No ``drive.logs``: ``--resume /tmp/trainer-rescued-…/epoch_001.pt`` (the rescue's line
    says so), the run goes on in its run folder; once its last epoch is written there, md5
    checked, the rescued copy goes."""
    from trainer.saving import snapshot

    logs = os.path.abspath(os.path.join(tempfile.gettempdir(), "..", "logs"))
    run, writer, saver = _policy(tiny_config, logs)
    state = snapshot(run)
    resumed = _leftover(state, "trainer-rescued-x", "epoch_001.pt", epoch=1, iteration=2,
                        epoch_iteration=0, saved=writer.taken())
    run.resumed_from, run.state.pos = resumed, Position(1, 2, 0)   # (restored from it)
    saver.on_fit_start(run)
    assert saver.swept.join(30)
    run.state.pos = Position(2, 4, 0)
    saver.on_fit_epoch_end(run, Position(2, 4, 0), {})
    with caplog.at_level("INFO", logger="trainer"):
        saver.on_fit_end(run)
    assert _left() == []
    assert [r.getMessage() for r in caplog.records if "trainer-rescued-" in r.getMessage()] == [
        f"removed {os.path.dirname(resumed)}, an earlier rescued copy of epoch_001.pt: "
        f"{logs}/epoch_002.pt (epoch 2, iteration 4) of this run is further on, saved later, "
        "verified there"]
