"""attackt31: trainer/final_wait.py's line for a run without ``drive.logs`` whose run folder
(``train.out_dir`` in Colab's Drive mount) hangs after the last epoch's files were written
whole, while the writer still worked there (``train.keep_local`` removing an older epoch file,
the sidecar read back): the line was made for a push and said ``the final push of <out_dir>
to None has not ended`` and ``upload the run with drivestage push <out_dir> None``."""
from __future__ import annotations

import tempfile

import pytest

from _drivemount import working_drive_mount  # noqa: F401 (fixture)
from test_hungend30_final_wait import _fit_end, _policy
from trainer.errors import SaveError
from trainer.state import Position


@pytest.fixture(autouse=True)
def _temporary_folders_here(tmp_path, monkeypatch):
    here = tmp_path / "tmp"
    here.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(here))


def test_a_run_folder_mount_hung_after_its_last_write_without_drive_logs_names_no_push(
        tiny_config, working_drive_mount):
    mount = working_drive_mount
    logs = mount.point / "MyDrive" / "logs"
    run, writer, saver = _policy(tiny_config, logs, **{"train.keep_local": 1})
    keep_local = writer._keep_local

    def hung_then_keep_local() -> None:   # (DriveFS stops answering as the files are in)
        if writer._upto == 2:   # (epoch 2's files written: the epoch the writer reached)
            mount.hang()
        keep_local()

    writer._keep_local = hung_then_keep_local
    try:
        saver.on_fit_epoch_end(run, Position(1, 2, 0), {})
        assert writer.wait(saver._epoch_job)
        saver.on_fit_epoch_end(run, Position(2, 4, 0), {})
        got = _fit_end(saver, run)[0]
    finally:
        mount.answer()
        writer.close()
    assert isinstance(got, SaveError), got
    assert str(got) == (
        f"the last writes into {logs} have not ended: {logs} did not answer for 0.5 s "
        f"({mount.point} is a Google Drive mount: stopped answering?); the checkpoints were "
        f"written into {logs}, the newest epoch_002.pt (epoch 2, iteration 4), and Drive may "
        "lack any of them until the mount answers and sends them: keep this machine until "
        "then (with drive.logs=drive:... set, the next run sends its checkpoints to Drive "
        "itself)")
