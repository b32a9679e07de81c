"""train27: the writer's warning when every push fails at its end but verifies the run's
checkpoints (Drive refusing the deletions of ``drive.keep_last``): it said "Drive has not
accepted a checkpoint for 22 minutes" while naming, in the same line, a checkpoint verified
there a moment before."""
from __future__ import annotations

import logging

from _messages import log_text, renders, shown
from test_train27_writer import _refuse_deletions
from test_writer import _job as autosave


@renders("Drive verifies this run's checkpoints but has refused the rest of every push for")
def test_pushes_that_fail_at_their_end_for_two_intervals_say_what_drive_did_take(
        emulator, drive_env, local_state, fast_retries, tmp_path, caplog):
    from trainer.drive import DriveFolder, retention_policy
    from trainer.writer import BackgroundWriter

    out = tmp_path / "run"
    out.mkdir()
    now = [0.0]
    drive = DriveFolder("drive:Models/t27m/logs", str(out), retention_policy(1, 0, None))
    writer = BackgroundWriter(str(out), drive, interval_s=600, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="trainer"):
        try:
            first = autosave(1)
            writer.submit(first)
            assert writer.wait(first, deadline=30) and writer.last_error is None
            _refuse_deletions(emulator)
            now[0] = 1300.0                              # more than two intervals later
            second = autosave(2)
            writer.submit(second)
            assert writer.wait(second, deadline=1330) and writer.last_error is not None
        finally:
            emulator.faults.clear()
            assert writer.close(push=False) is True
    text = log_text(caplog.records)
    assert "has not accepted a checkpoint" not in text, text
    assert ("Drive verifies this run's checkpoints but has refused the rest of every push for "
            "22 minutes: delete drive:Models/t27m/logs/autosave_00000001.pt: permission denied "
            in text), text
    assert "the newest copy safe on Drive is Drive: " in text
    assert "(autosave_00000002.pt). Older checkpoints stay on Drive" in text, text
    shown("Drive verifies this run's checkpoints but has refused the rest of every push for", text)
