"""trainer22: on a slow link each epoch's files are written locally at once and only the
uploads wait (walk21's left-alone item). Before, the writer's one thread wrote and uploaded in
turn, with one job waiting: epoch N's files were not written while an upload before them ran,
and the end of epoch N+1 blocked training until that upload ended (minutes for 90 MB on a
slow link). Uploads coalesce: what is superseded locally before its upload starts (an older
autosave, an older best.pt) is not sent; every epoch_NNN.pt is."""
from __future__ import annotations

import hashlib
import os
import threading

import pytest

from test_writer import _job, _remote, _until, _uploads_started
from trainer.drive import DriveFolder
from trainer.writer import BackgroundWriter

FOLDER = "Models/w/logs"


@pytest.fixture
def folder(emulator, drive_env, local_state, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    return DriveFolder(f"drive:{FOLDER}", str(out))


def _remote_in(emu, folder: str) -> dict:
    parent = emu.find(folder)
    return {f["title"]: f.get("md5Checksum") for f in emu.files()
            if parent and not f["labels"]["trashed"]
            and any(p["id"] == parent["id"] for p in f["parents"])}


def _md5(path) -> str:
    return hashlib.md5(open(path, "rb").read()).hexdigest()


def _epoch_job(epoch: int, *names: str):
    job = _job(epoch * 10, droppable=False, name=names[0], size=20_000)
    job.names = list(names)
    return job


def test_epoch_saves_are_written_at_once_while_an_upload_is_held(emulator, folder):
    emulator.faults.latency(30.0, path=r"^/upload/")          # epoch 1's upload: held
    writer = BackgroundWriter(folder.local_dir, folder)
    jobs = [_epoch_job(e, "last.pt", f"epoch_{e:03d}.pt") for e in (1, 2, 3)]
    try:
        writer.submit(jobs[0])
        _until(lambda: _uploads_started(emulator), "the first push never started")
        t = threading.Thread(target=lambda: [writer.submit(j) for j in jobs[1:]])
        t.start()
        t.join(timeout=10)
        assert not t.is_alive(), "submit waited for an upload"
        _until(lambda: all(j.written for j in jobs), "an epoch's files waited for the upload")
        assert not (set(_remote(emulator)) & {"epoch_001.pt", "epoch_002.pt"})  # still held
        assert not any(j.done.is_set() for j in jobs)          # done: written and pushed
        names = set(os.listdir(folder.local_dir))
        assert {f"epoch_00{e}.{x}" for e in (1, 2, 3) for x in ("pt", "json")} <= names
    finally:
        emulator.faults.clear()
        emulator.faults.release_holds()
    assert writer.close() is True
    remote = _remote(emulator)
    for e in (1, 2, 3):
        name = f"epoch_{e:03d}.pt"
        assert remote[name] == _md5(os.path.join(folder.local_dir, name))
        assert jobs[e - 1].done.is_set()


def test_what_is_superseded_before_its_upload_is_not_sent_but_every_epoch_file_is(
        emulator, folder):
    """While epoch 1's upload is held, epoch 2 (a new best) and three autosaves are saved. The
    next push sends epoch_002.pt and the newest best.pt (epoch 2's bytes, with its sidecar)
    and the two autosaves kept locally; the oldest autosave, pruned before its upload could
    start, never goes."""
    emulator.faults.latency(30.0, path=r"^/upload/")
    writer = BackgroundWriter(folder.local_dir, folder)
    first = _epoch_job(1, "epoch_001.pt", "best.pt")
    try:
        writer.submit(first)
        _until(lambda: _uploads_started(emulator), "the first push never started")
        later = [_epoch_job(2, "epoch_002.pt", "best.pt"), _job(31), _job(32), _job(33)]
        for job in later:
            writer.submit(job)
            _until(lambda: job.written, f"{job.name} waited for the upload")
    finally:
        emulator.faults.clear()
        emulator.faults.release_holds()
    assert writer.close() is True
    out = folder.local_dir
    remote = _remote(emulator)
    assert "autosave_00000031.pt" not in remote
    for name in ("epoch_001.pt", "epoch_002.pt", "best.pt", "autosave_00000032.pt",
                 "autosave_00000033.pt"):
        assert remote[name] == _md5(os.path.join(out, name)), name
    assert remote["best.pt"] == _md5(os.path.join(out, "epoch_002.pt"))
    assert remote["best.json"] == _md5(os.path.join(out, "best.json"))
    assert writer.verified("best.pt") and writer.verified("epoch_002.pt")


def test_the_save_policy_goes_on_through_three_epochs_while_the_first_upload_is_held(
        emulator, drive_env, local_state, tiny_config):
    """The real save policy (Checkpointer) at three epoch ends, steps between them, while
    epoch 1's upload is held: no epoch end waits, and each epoch's files are complete locally
    before the next epoch's first step."""
    from test_messages_train import FOLDER as T_FOLDER, _drive_config, _run
    from trainer.state import Position

    run = _run(_drive_config(tiny_config, **{"train.epochs": 3}), drive=True)
    emulator.faults.latency(30.0, path=r"^/upload/")
    out = run.out_dir
    try:
        for epoch in (1, 2, 3):
            pos = Position(epoch, epoch * 2, 0)
            run.state.pos = pos
            run.state.history.append({"epoch": epoch})
            t = threading.Thread(target=run.checkpointer.on_fit_epoch_end,
                                 args=(run, pos, {"epoch": epoch, "map50": 0.1 * epoch}))
            t.start()
            t.join(timeout=10)
            assert not t.is_alive(), f"the end of epoch {epoch} waited for an upload"
            job = run.checkpointer._epoch_job
            _until(lambda: job.written, f"epoch {epoch}'s files were not written")
            if epoch == 1:
                _until(lambda: _uploads_started(emulator), "the first push never started")
            # The next epoch's first step: epoch 1's upload is still held.
            run.checkpointer.on_train_batch_end(run, Position(epoch, epoch * 2 + 1, 1), {})
            assert "epoch_001.pt" not in _remote_in(emulator, T_FOLDER)
        assert {f"epoch_00{e}.pt" for e in (1, 2, 3)} <= set(os.listdir(out))
    finally:
        emulator.faults.clear()
        emulator.faults.release_holds()
    run.checkpointer.on_fit_end(run)
    remote = _remote_in(emulator, T_FOLDER)
    for name in ("epoch_001.pt", "epoch_002.pt", "epoch_003.pt", "best.pt"):
        assert remote[name] == _md5(os.path.join(out, name)), name
    assert "last.pt" not in remote


class _AtEpochStart:
    """At the first step of epoch ``epoch`` (0-based): waits (bounded) for ``name``'s sidecar
    in the run folder, records what Drive holds, then lets the held uploads go."""

    def __init__(self, emulator, folder: str, epoch: int, name: str):
        self.emulator, self.folder, self.epoch, self.name = emulator, folder, epoch, name
        self.seen: dict = {}
        self.local: bool = False

    def on_train_batch_start(self, run, pos) -> None:
        import time

        if pos.epoch != self.epoch or pos.epoch_iteration != 0:
            return
        try:
            side = os.path.join(run.out_dir, self.name.replace(".pt", ".json"))
            deadline = time.monotonic() + 20
            while not os.path.exists(side) and time.monotonic() < deadline:
                time.sleep(0.01)
            self.local = os.path.exists(side)
            self.seen = _remote_in(self.emulator, self.folder)
        finally:
            self.emulator.faults.clear()
            self.emulator.faults.release_holds()


@pytest.mark.slow
def test_a_real_run_trains_epoch_3_while_epoch_1s_upload_is_held(
        emulator, drive_env, local_state, tiny_config, one_torch_thread):
    """End to end: the held upload of epoch 1 is still held when epoch 3's first step begins,
    and epoch 2's files are complete in the run folder by then."""
    from trainer.callbacks import Callback
    from trainer.config import load_config
    from trainer.engine import fit

    folder = "Models/e2e/logs"
    cfg = load_config(tiny_config(**{
        "drive.logs": f"drive:{folder}", "train.epochs": 3, "train.freeze_epochs": 0,
        "train.eval_period": 100, "train.mosaic": False, "train.mixup": False}))
    probe = _AtEpochStart(emulator, folder, 2, "epoch_002.pt")

    def hold_uploads(run, pos) -> None:
        # From the first step on: the run's lease, claimed before it, is not held (its claim
        # is an upload too: held, it made the run start two minutes late and proved nothing).
        if pos.epoch == 0 and pos.epoch_iteration == 0:
            emulator.faults.latency(60.0, path=r"^/upload/")
        probe.on_train_batch_start(run, pos)

    fit(cfg, resume="none", callbacks=[type("Probe", (Callback,), {
        "on_train_batch_start": lambda self, run, pos: hold_uploads(run, pos)})()])
    assert probe.local, "epoch 2's files were not written while epoch 1's upload was held"
    assert "epoch_001.pt" not in probe.seen
    remote = _remote_in(emulator, folder)
    for name in ("epoch_001.pt", "epoch_002.pt", "epoch_003.pt"):
        assert remote[name] == _md5(os.path.join(cfg.train.out_dir, name)), name
