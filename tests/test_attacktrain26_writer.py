"""attacktrain26: what the writer counts as verified on Drive (the progress bar's "safe on
Drive", a stop's line of the files not on Drive, ``train.keep_local``) is what Drive holds.

Two ways it was not: a push that failed after its uploads were verified (Drive answering
503 to the deletion of an older copy, at the end of the push) credited nothing, and the
next push found those files unchanged and sent nothing, so they were never counted: a
stop's line said forever that ``epoch_002.pt`` was not on Drive and told the user to push
it. And ``last.pt``, which never goes to Drive, written again while a push ran, was counted
verified by the next push: the progress bar said epoch 3 was safe on Drive (``last.pt``)
while Drive held epoch 2.

The real writer and save policy, the real PyDrive2 stack against the emulator."""
from __future__ import annotations

import signal
from types import SimpleNamespace

import pytest

from test_keeplocal25 import SPEC, _save_epochs, _saver
from test_trainer22_uploads import folder  # noqa: F401 (a fixture)
from test_writer import _until, _uploads_started
from trainer.errors import TrainingInterrupted
from trainer.state import Position


def test_files_a_failed_push_verified_count_once_a_push_finds_them_there(
        emulator, drive_env, local_state, fast_retries, tiny_config, tmp_path):
    from trainer.drive import DriveFolder, retention_policy

    logs = tmp_path / "logs"
    drive = DriveFolder(SPEC, str(logs), retention_policy(1, 0, None))   # drive.keep_last 1
    run, writer, saver = _saver(tiny_config, logs, 0, drive)
    saver.drive_spec = SPEC
    try:
        _save_epochs(run, saver, 1)
        writer.wait(saver._epoch_job)
        # Epoch 2's files reach Drive, verified; then deleting epoch_001 there fails.
        emulator.faults.inject("DELETE", None, status=503, times=None)
        emulator.faults.inject(None, r"/trash", status=503, times=None)
        _save_epochs(run, saver, 2)
        writer.wait(saver._epoch_job)
        assert writer.last_error is not None
        emulator.faults.clear()
        run.stop.request(signal.SIGTERM)
        with pytest.raises(TrainingInterrupted) as stopped:
            saver._save_and_stop(run, Position(2, 5, 1))
    finally:
        emulator.faults.clear()
        writer.close()
    said = str(stopped.value)
    assert "autosave_00000005.pt is saved and verified on" in said and "not on" not in said, said
    assert writer.verified("epoch_002.pt") and writer.not_on_drive() == []
    assert writer.safe is not None and writer.safe.name == "autosave_00000005.pt"


def _job(epoch: int, *names: str):
    from test_writer import _job as job

    made = job(2 * epoch, droppable=False, name=names[0], size=20_000)
    made.names, made.position = list(names), Position(epoch, 2 * epoch, 0)
    made.state.update(epoch=epoch, epoch_iteration=0)
    return made


def test_last_pt_written_during_a_push_is_never_safe_on_drive(emulator, folder):  # noqa: F811
    """train.save_period 2: epoch 3 is in last.pt alone, written while epoch 2's push runs."""
    from trainer.writer import BackgroundWriter

    emulator.faults.latency(30.0, path=r"^/upload/")
    writer = BackgroundWriter(folder.local_dir, folder)
    try:
        writer.submit(_job(2, "last.pt", "epoch_002.pt"))
        _until(lambda: _uploads_started(emulator), "the first push never started")
        three = _job(3, "last.pt")
        writer.submit(three)
        _until(lambda: three.written, "epoch 3 waited for the upload")
    finally:
        emulator.faults.clear()
        emulator.faults.release_holds()
    assert writer.close() is True
    assert not writer.verified("last.pt")
    assert writer.safe is not None and writer.safe.name == "epoch_002.pt"
    assert "epoch 2 iteration 4 (epoch_002.pt)" in writer.safe_text()


def test_an_autosave_whose_upload_is_under_way_is_not_pruned_here(
        emulator, drive_env, local_state, tmp_path):
    """A slow upload of autosave_00000001.pt while two newer autosaves are written: the writer
    pruned it here (the newest two stay) while its bytes were on their way; Drive then got its
    checkpoint and never its sidecar, and kept that undescribed file for good (no retention
    rule deletes a checkpoint that names no run: a checkpoint's size each time). Now it stays
    here until that push ends, its sidecar follows, and Drive's retention retires it."""
    import os

    from test_trainer22_uploads import _remote_in
    from test_writer import _job as autosave
    from trainer.drive import DriveFolder, retention_policy
    from trainer.writer import BackgroundWriter

    out = tmp_path / "run"
    out.mkdir()
    drive = DriveFolder("drive:Models/w/logs", str(out), retention_policy(3, 1, None))
    emulator.faults.latency(3.0, path=r"^/upload/", times=1)     # the first upload: slow
    writer = BackgroundWriter(str(out), drive)
    try:
        writer.submit(autosave(1))
        _until(lambda: _uploads_started(emulator), "the first push never started")
        for i in (2, 3):
            job = autosave(i)
            writer.submit(job)
            _until(lambda: job.written, f"autosave {i} was not written")
        assert {n for n in os.listdir(out) if n.endswith(".pt")} == {
            f"autosave_0000000{i}.pt" for i in (1, 2, 3)}
    finally:
        emulator.faults.clear()
        closed = writer.close()
    assert closed is True
    later = BackgroundWriter(str(out), drive)   # its next autosave prunes them here
    job = autosave(4)
    later.submit(job)
    assert later.wait(job, deadline=later._clock() + 60) and later.close() is True
    assert sorted(os.listdir(out)) == [f"autosave_0000000{i}.{x}" for i in (3, 4)
                                       for x in ("json", "pt")]
    assert sorted(_remote_in(emulator, "Models/w/logs")) == ["autosave_00000004.json",
                                                             "autosave_00000004.pt"]


def test_the_room_check_counts_the_autosaves_a_push_may_be_sending(tmp_path, synth_voc):
    """With drive.logs the two autosaves a slow push is sending stay beside the newest two:
    four beside the epoch's files (without Drive two, as before)."""
    from test_trainer23_room import _cfg
    from trainer import room

    cfg = _cfg(tmp_path, synth_voc, save_minutes=5)
    cfg.data.cache = "none"
    assert room.needed_bytes(cfg, ["last.pt", "epoch_001.pt"], 100) == 400
    cfg.drive = SimpleNamespace(logs="drive:Models/w/logs")
    assert room.needed_bytes(cfg, ["last.pt", "epoch_001.pt"], 100) == 600


def test_a_run_killed_between_an_autosaves_two_uploads_leaves_drive_no_lone_checkpoint(
        emulator, drive_env, local_state, tiny_config, tmp_path):
    """The process was killed after autosave_00000001.pt reached Drive and before its
    sidecar did. The next run here pruned that autosave (its first autosave keeps the newest
    two) before its first push, which then neither sent the sidecar nor deleted the lone
    checkpoint: Drive kept it for good. Now the run pushes the folder as it finds it as soon
    as it starts: Drive's retention retires that autosave like any older one."""
    import os
    import shutil

    from test_trainer22_uploads import _remote_in
    from test_writer import _job as autosave
    from trainer import checkpoint as ckpt
    from trainer.drive import DriveFolder, retention_policy
    from trainer.state import autosave_name

    logs = tmp_path / "logs"
    drive = DriveFolder(SPEC, str(logs), retention_policy(3, 1, None))
    run, writer, saver = _saver(tiny_config, logs, 0, drive)
    try:
        for i in (1, 2):                         # the killed process's autosaves
            state = {**autosave(i).state, "run": run.state.run}
            ckpt.save_checkpoint(state, str(logs / autosave_name(i)), saved=100.0 * i)
        cut = tmp_path / "cut"                   # what its killed push left on Drive
        cut.mkdir()
        shutil.copy(logs / "autosave_00000001.pt", cut)
        DriveFolder(SPEC, str(cut)).push()
        assert sorted(_remote_in(emulator, "Models/kl25/logs")) == ["autosave_00000001.pt"]
        saver.on_fit_start(run)
        writer.wait_pushed(1, writer._clock() + 30)   # (without a push at the start: 30 s)
        job = saver._save(run, [autosave_name(3)], Position(0, 3, 3), droppable=True)
        assert writer.wait(job, writer._clock() + 60)
    finally:
        writer.close()
    assert sorted(n for n in os.listdir(logs) if n.startswith("autosave_")) == [
        f"autosave_0000000{i}.{x}" for i in (2, 3) for x in ("json", "pt")]
    assert sorted(_remote_in(emulator, "Models/kl25/logs")) == ["autosave_00000003.json",
                                                                "autosave_00000003.pt"]
