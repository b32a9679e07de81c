"""train27: what a push verified on Drive counts as safe there even when a later step of that
same push fails (every push, for good: Drive answers 403 to the deletions of retention in a
folder shared with this account as a writer that may not delete).

Before, such a push credited nothing; the next one found the files unchanged and, failing
too at its end, credited nothing either: a stop's line told the user to upload files Drive
held, and "safe on Drive" never moved. The real writer and save policy, the real PyDrive2
stack against the emulator."""
from __future__ import annotations

import signal

import pytest

from test_keeplocal25 import SPEC, _save_epochs, _saver
from trainer.errors import TrainingInterrupted
from trainer.state import Position

REFUSED = "insufficientFilePermissions"


def _refuse_deletions(emulator) -> None:
    emulator.faults.inject("DELETE", None, reason=REFUSED, times=None)
    emulator.faults.inject(None, r"/trash", reason=REFUSED, times=None)


def test_what_a_push_failing_at_its_end_verified_is_safe_on_drive(
        emulator, drive_env, local_state, fast_retries, tiny_config, tmp_path):
    from trainer.drive import DriveFolder, retention_policy

    logs = tmp_path / "logs"
    drive = DriveFolder(SPEC, str(logs), retention_policy(1, 0, None))   # drive.keep_last 1
    run, writer, saver = _saver(tiny_config, logs, 0, drive)
    saver.drive_spec = SPEC
    try:
        _save_epochs(run, saver, 1)
        writer.wait(saver._epoch_job)
        assert writer.last_error is None and writer.verified("epoch_001.pt")
        _refuse_deletions(emulator)       # for good: every later push fails at its end
        _save_epochs(run, saver, 2)
        writer.wait(saver._epoch_job)
        assert writer.last_error is not None
        assert writer.verified("epoch_002.pt")
        assert writer.safe is not None and writer.safe.name == "epoch_002.pt"
        run.stop.request(signal.SIGTERM)
        with pytest.raises(TrainingInterrupted) as stopped:
            saver._save_and_stop(run, Position(2, 5, 1))
    finally:
        emulator.faults.clear()
        writer.close()
    said = str(stopped.value)
    assert "autosave_00000005.pt is saved and verified on drive:Models/kl25/logs" in said, said
    assert "not on" not in said and "upload" not in said, said
    # What failed is said: the older copies Drive kept.
    assert "; the rest of that push failed (delete drive:Models/kl25/logs/epoch_001.pt: " \
        "permission denied (HTTP 403 insufficientFilePermissions" in said, said
    assert writer.not_on_drive() == []
    assert writer.safe is not None and writer.safe.name == "autosave_00000005.pt"


def test_a_failed_push_credits_a_checkpoint_only_with_its_sidecar(tmp_path):
    """Pure: a checkpoint verified while its sidecar was not (the push failed between them)
    is not verified on Drive; a push that failed before it knew what it sends credits none;
    what the policy left out is never credited."""
    from drivestage.push_result import PushResult
    from trainer.pushed import credit

    for name in ("epoch_002.pt", "epoch_003.pt", "best.pt"):
        (tmp_path / name).write_bytes(b"x")
    written = {"epoch_002.pt": 1, "epoch_003.pt": 1, "best.pt": 2, "last.pt": 3}
    result = PushResult(uploaded=["epoch_002.pt", "epoch_002.json", "epoch_003.pt",
                                  "best.pt", "best.json"], skipped_by_policy=["best.pt"])
    got = credit(result, written, dict(written), {"last.pt"}, ("last.pt",), str(tmp_path),
                 ["epoch_003.json"])
    assert got.sent == ["epoch_002.pt"] and got.left == {"best.pt", "last.pt"}
    assert credit(result, written, dict(written), set(), (), str(tmp_path), None).sent == []
    again = {**written, "epoch_002.pt": 2}       # written again while the push ran
    assert credit(result, again, written, set(), (), str(tmp_path), []).changed == {"epoch_002.pt"}
    assert credit(result, again, written, set(), (), str(tmp_path), []).sent == ["epoch_003.pt"]
