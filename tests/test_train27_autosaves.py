"""train27: the autosaves a push under way may be sending stay here until it ends
(attacktrain26's :mod:`trainer.autosaves`), also in a run sent back on purpose, whose folder
holds the old branch's autosaves numbered above every new one. Those were taken for the
newest two (by number), and the new branch's autosave under upload was pruned here: Drive
got its checkpoint and never its sidecar, an undescribed file it keeps for good.

The real writer, the real PyDrive2 stack against the emulator."""
from __future__ import annotations

import os

from test_trainer22_uploads import _remote_in
from test_writer import _job as autosave
from test_writer import _until, _uploads_started
from trainer import checkpoint as ckpt

SPEC = "drive:Models/t27/logs"


def test_a_run_sent_back_keeps_its_autosave_under_upload_until_the_push_ends(
        emulator, drive_env, local_state, tmp_path):
    from trainer.drive import DriveFolder, retention_policy
    from trainer.writer import BackgroundWriter

    out = tmp_path / "run"
    out.mkdir()
    drive = DriveFolder(SPEC, str(out), retention_policy(3, 1, None))
    for i in (150, 160):     # the branch left: further on, saved before the new one
        ckpt.save_checkpoint(autosave(i).state, str(out / f"autosave_{i:08d}.pt"),
                             saved=1000.0 + i)
    drive.push()
    emulator.clear_requests()
    emulator.faults.latency(3.0, path=r"^/upload/", times=1)     # the next upload: slow
    writer = BackgroundWriter(str(out), drive)
    try:
        writer.submit(autosave(101))
        _until(lambda: _uploads_started(emulator), "the push never started")
        for i in (102, 103):
            job = autosave(i)
            writer.submit(job)
            _until(lambda: job.written, f"autosave {i} was not written")
        assert os.path.exists(out / "autosave_00000101.pt")     # its upload is under way
    finally:
        emulator.faults.clear()
        closed = writer.close()
    assert closed is True
    remote = _remote_in(emulator, "Models/t27/logs")
    lone = [n for n in remote if n.endswith(".pt") and n[:-3] + ".json" not in remote]
    assert lone == [], sorted(remote)
