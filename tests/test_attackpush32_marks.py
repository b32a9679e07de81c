"""The run-folder mark on Drive, when setting it fails, by attackpush32."""
from __future__ import annotations

import logging

from _drive_state import live_md5s
from test_attackds29_run_folders import _save, env  # noqa: F401  (env: a fixture)
from test_runmark30_marks import OURS, marks_of, _fresh_vm, _mirror_once
from trainer.drive import DriveFolder, retention_policy


def test_a_mark_lost_to_a_drive_outage_is_set_at_the_runs_next_push(
        emulator, env, tmp_path, monkeypatch, caplog):
    """A run into a folder made before it (by hand): Drive answered 503 to every attempt of
    the mark (its first property's insert) at the run's first push. The mark was never tried again in the
    run's process (days of training), and a fresh VM's ``mirror ./runs drive:runs --delete``
    trashed the run's checkpoints. It is tried again at the next push; said once."""
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "2")
    folder_id = emulator.add_folder("runs/exp1")
    emulator.faults.inject(method="POST", path=f"{folder_id}/properties", status=503, times=2)
    run_dir = tmp_path / "old-vm" / "exp1"
    run_dir.mkdir(parents=True)
    drive = DriveFolder("drive:runs/exp1", str(run_dir), retention_policy(0, 0, None))
    with caplog.at_level(logging.WARNING):
        for epoch in (1, 2):
            _save(str(run_dir), epoch)
            drive.push()

    assert marks_of(emulator, folder_id) == OURS
    said = [r.getMessage() for r in caplog.records if "could not mark" in r.getMessage()]
    assert len(said) == 1, said
    assert emulator.api_calls("properties.insert") == 4   # 2 refused, then PUBLIC, PRIVATE
    _mirror_once(_fresh_vm(tmp_path, monkeypatch))
    assert set(live_md5s(emulator, "runs/exp1")) == {"epoch_001.pt", "epoch_001.json",
                                                     "epoch_002.pt", "epoch_002.json"}
