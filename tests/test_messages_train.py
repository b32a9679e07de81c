"""docs/troubleshooting.md, "Training": each message made to happen (see tests/_messages.py);
the data side (the loss, the image cache) is in test_messages_train_data.py.

Nothing here trains. A command that fails before its first iteration (a config error, a
resume refused, weights for other classes) runs in this process; the messages of a run that
stops or whose mirror fails come from the real save policy (``Checkpointer``), background
writer and Drive (the emulator) around a run assembled with a one-layer network: the stop
save, the upload and the checks are the same whatever the size of the state.
"""
from __future__ import annotations

import hashlib
import logging
import os
import signal
import tempfile

import pytest
import torch
from click.testing import CliRunner

from _messages import error_text, log_text, renders, shown
from drivestage import sidecar as sidecars
from drivestage.errors import MirrorError
from trainer import checkpoint as ckpt
from trainer import distributed
from trainer.cli import cli
from trainer.config import load_config, model_signature
from trainer.errors import NonFiniteLossError, TrainingInterrupted
from trainer.state import Position, TrainState

FOLDER = "Models/t/logs"
CLASSES = ["circle", "square", "triangle"]   # the synthetic dataset's (tests/conftest.py)


@pytest.fixture
def drive(emulator, drive_env, local_state):
    """The emulator, with drivestage's state and retry timings kept inside the test."""
    return emulator


@pytest.fixture
def full_drive(emulator_factory, monkeypatch, local_state):
    """A Drive whose storage quota (1 KiB) no checkpoint fits in."""
    emu = emulator_factory(quota_bytes=1024)
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emu.url)
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
    return emu


def trainer(*args: str) -> tuple[int, str]:
    """``trainer ARGS`` in this process: its exit code and its ``Error:`` line (one line, the
    last of its stderr)."""
    result = CliRunner().invoke(cli, list(args))
    lines = result.stderr.splitlines()
    assert lines and lines[-1].startswith("Error: "), result.stderr
    assert sum(line.startswith("Error: ") for line in lines) == 1, result.stderr
    return result.exit_code, lines[-1]


def _state(run: str, epoch: int, iteration: int, epoch_iteration: int = 0, **extra) -> dict:
    """A full checkpoint's required keys (what loading and resuming check)."""
    return {"format_version": ckpt.FORMAT_VERSION, "model": {}, "optimizer": {}, "epoch": epoch,
            "iteration": iteration, "epoch_iteration": epoch_iteration, "config": {}, "run": run,
            **extra}


def _save(folder, name: str, state: dict) -> str:
    """``folder/name`` and its sidecar, written by the trainer's own save."""
    return ckpt.save_checkpoint(state, os.path.join(str(folder), name))


def _upload(emu, path: str) -> None:
    """A checkpoint and its sidecar into the emulator's ``FOLDER``."""
    for p in (path, ckpt.sidecar_path(path)):
        emu.add_file(f"{FOLDER}/{os.path.basename(p)}", p)


def _truncated(folder, name: str, run: str, epoch: int) -> str:
    """A checkpoint cut short, with a sidecar that vouches for the bytes it has (a broken
    tool, or damage on Drive: the md5 matches, the file does not load)."""
    whole = _save(folder, f".whole-{name}", _state(run, epoch, epoch * 2))
    data = open(whole, "rb").read()
    data = data[:len(data) // 2]
    ckpt.remove_checkpoint(whole)
    path = os.path.join(str(folder), name)
    with open(path, "wb") as f:
        f.write(data)
    sidecars.write(path, sidecars.Sidecar(epoch=epoch, iteration=epoch * 2, epoch_iteration=0, run=run,
                                          md5=hashlib.md5(data).hexdigest(), size=len(data)))
    return path


def _remote(emu) -> dict:
    """{name: md5} of the live files in ``FOLDER``."""
    parent = emu.find(FOLDER)
    if parent is None:
        return {}
    return {f["title"]: f.get("md5Checksum") for f in emu.files()
            if not f["labels"]["trashed"] and any(p["id"] == parent["id"] for p in f.get("parents", []))}


def _md5(path) -> str:
    return hashlib.md5(open(path, "rb").read()).hexdigest()


# --------------------------------------------------------------------------- a run, not trained

def _run(cfg, *, drive: bool, grace_s: float = 60.0):
    """The real ``Run`` of ``cfg`` with its save policy, background writer (mirroring to
    ``drive.logs`` when ``drive``) and stop flag; the network is one layer."""
    from trainer.drive import DriveFolder
    from trainer.engine import Run
    from trainer.optim import LRSchedule
    from trainer.saving import Checkpointer
    from trainer.stopping import StopFlag
    from trainer.writer import BackgroundWriter

    out = cfg.train.out_dir
    os.makedirs(out, exist_ok=True)
    folder = DriveFolder(cfg.drive.logs, out) if drive else None
    writer = BackgroundWriter(out, folder)
    stop = StopFlag(grace_s)
    info = distributed.env_info()
    model = torch.nn.Linear(2, 1)
    return Run(cfg, info, torch.device("cpu"), model, None, torch.optim.SGD(model.parameters(), lr=0.01),
               None, torch.amp.GradScaler("cpu", enabled=False), LRSchedule(cfg), list(CLASSES),
               model_signature(cfg, len(CLASSES)), TrainState(), stop,
               Checkpointer(cfg, info, writer, stop), writer)


def _drive_config(tiny_config, **overrides):
    return load_config(tiny_config(**{"drive.logs": f"drive:{FOLDER}", **overrides}))


def _stop_at_iteration_3(run) -> TrainingInterrupted:
    """SIGTERM arrived; the save policy sees the end of iteration 3 (epoch 1)."""
    run.stop.request(signal.SIGTERM)
    run.state.pos = pos = Position(0, 3, 3)          # as the loop does after every step
    with pytest.raises(TrainingInterrupted) as stopped:
        run.checkpointer.on_train_batch_end(run, pos, {})
    return stopped.value


@renders("stopped by …: … is saved and verified on")
def test_a_stop_save_that_reaches_drive(drive, tiny_config):
    run = _run(_drive_config(tiny_config), drive=True)
    try:
        stopped = _stop_at_iteration_3(run)
    finally:
        assert run.writer.close() is True
    assert stopped.exit_code == 143
    saved = os.path.join(run.out_dir, "autosave_00000003.pt")
    assert _remote(drive)["autosave_00000003.pt"] == _md5(saved)
    shown("stopped by …: … is saved and verified on", error_text(stopped))


@renders("is saved in … but did not reach")
def test_a_stop_save_that_drive_refuses(full_drive, tiny_config):
    run = _run(_drive_config(tiny_config), drive=True)
    try:
        stopped = _stop_at_iteration_3(run)
    finally:
        assert run.writer.close(push=False) is True
    assert stopped.exit_code == 143
    assert ckpt.load_checkpoint(os.path.join(run.out_dir, "autosave_00000003.pt"))["iteration"] == 3
    assert "autosave_00000003.pt" not in _remote(full_drive)
    text = error_text(stopped)
    assert "Not enough Drive storage" in text        # the reason Drive gave
    shown("is saved in … but did not reach", text)


@renders("could not be written (")
def test_a_stop_save_that_cannot_be_written(tiny_config, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))   # (where its state is kept)
    run = _run(load_config(tiny_config()), drive=False)
    os.makedirs(os.path.join(run.out_dir, "autosave_00000003.pt"))   # what stands in its way
    try:
        stopped = _stop_at_iteration_3(run)
    finally:
        assert run.writer.close() is True
    assert stopped.exit_code == 143
    shown("could not be written (", error_text(stopped))
    kept = [os.path.join(f, "autosave_00000003.pt") for f in tmp_path.glob("trainer-rescued-*")]
    assert len(kept) == 1 and f"its state is saved in {kept[0]} on this machine" in str(stopped)


@renders("while the last checkpoints were uploaded",
         "the Drive mirror could not finish within train.grace_seconds")
def test_a_stop_during_the_final_upload(drive, tiny_config, caplog):
    run = _run(_drive_config(tiny_config), drive=True, grace_s=0.2)
    last = _save(run.out_dir, "epoch_002.pt", _state(run.state.run, 2, 4))
    drive.faults.latency(1.0, path=r"^/upload/", times=1)    # Drive slower than the grace period
    run.stop.request(signal.SIGTERM)
    try:
        with caplog.at_level(logging.ERROR, logger="trainer"), pytest.raises(TrainingInterrupted) as stopped:
            run.checkpointer.on_fit_end(run)
    finally:
        assert run.writer.close() is True                   # the upload goes on; wait for it here
    assert stopped.value.exit_code == 143
    assert ckpt.load_checkpoint(last)["epoch"] == 2        # complete in train.out_dir
    shown("while the last checkpoints were uploaded", error_text(stopped.value))
    shown("the Drive mirror could not finish within train.grace_seconds", log_text(caplog.records))


@renders("mirror of … to … failed:")
def test_the_last_mirror_run_of_a_finished_training_fails(full_drive, tiny_config):
    run = _run(_drive_config(tiny_config), drive=True)
    _save(run.out_dir, "epoch_002.pt", _state(run.state.run, 2, 4))
    with pytest.raises(MirrorError) as failed:
        run.checkpointer.on_fit_end(run)
    assert failed.value.exit_code == 1
    assert "Not enough Drive storage" in str(failed.value)
    shown("mirror of … to … failed:", error_text(failed.value))


@renders("the Drive mirror could not finish:")
def test_a_run_that_stops_on_an_error_with_a_failing_mirror(full_drive, tiny_config, caplog):
    run = _run(_drive_config(tiny_config), drive=True)
    _save(run.out_dir, "epoch_001.pt", _state(run.state.run, 1, 2))
    crash = NonFiniteLossError("the loss became nan")
    with caplog.at_level(logging.ERROR, logger="trainer"):
        run.checkpointer.on_interrupt(run, crash)
    assert "epoch_001.pt" not in _remote(full_drive)
    shown("the Drive mirror could not finish:", log_text(caplog.records))


@renders("Drive has not accepted a checkpoint for")
def test_drive_refusing_every_checkpoint_for_two_save_intervals(full_drive, tmp_path, caplog):
    from trainer.drive import DriveFolder
    from trainer.writer import BackgroundWriter, SaveJob

    out = str(tmp_path / "run")
    os.makedirs(out)
    now = [0.0]
    writer = BackgroundWriter(out, DriveFolder(f"drive:{FOLDER}", out), interval_s=600,
                              clock=lambda: now[0])
    now[0] = 1300.0                                          # 21.7 min later: more than two intervals
    job = SaveJob(_state("r1", 0, 7, 7), ["autosave_00000007.pt"], Position(0, 7, 7), droppable=True)
    with caplog.at_level(logging.WARNING, logger="trainer"):
        writer.submit(job)
        assert job.done.wait(30) and job.written
        assert writer.close(push=False) is True
    text = log_text(caplog.records)
    assert "minutes: Not enough Drive storage" in text and ".. " not in text   # the reason, one sentence
    shown("Drive has not accepted a checkpoint for", text)


# --------------------------------------------------------------------------- drivestage's Mirror

@renders("failed (will try again)", "mirror of … to … failed:")
def test_a_background_mirror_run_fails(full_drive, tmp_path, caplog):
    from drivestage.mirror import Mirror

    src = tmp_path / "run"
    _save(src, "epoch_001.pt", _state("r1", 1, 2))
    mirror = Mirror(str(src), f"drive:{FOLDER}")
    try:
        with caplog.at_level(logging.ERROR, logger="drivestage"), pytest.raises(MirrorError) as failed:
            mirror.flush()
    finally:
        mirror.stop(flush=False)
    shown("failed (will try again)", log_text(caplog.records))
    shown("mirror of … to … failed:", error_text(failed.value))


@renders("did not finish within")
def test_a_mirror_flush_that_runs_out_of_time(drive, tmp_path):
    from drivestage.mirror import Mirror

    src = tmp_path / "run"
    _save(src, "epoch_001.pt", _state("r1", 1, 2))
    drive.faults.latency(1.0, path=r"^/upload/", times=1)
    mirror = Mirror(str(src), f"drive:{FOLDER}")
    try:
        with pytest.raises(MirrorError) as late:
            mirror.flush(timeout=0.1)
    finally:
        mirror.stop()                                        # the run goes on; wait for it here
    assert _remote(drive)["epoch_001.pt"] == _md5(src / "epoch_001.pt")
    shown("did not finish within", error_text(late.value))


# --------------------------------------------------------------------------- where a run starts

def _choose(cfg):
    """Where ``trainer train --resume auto`` starts, decided by the trainer's own resume."""
    from trainer import resume
    from trainer.drive import DriveFolder

    return resume.choose(cfg, "auto", distributed.env_info(), DriveFolder(cfg.drive.logs, cfg.train.out_dir))


@renders("already holds checkpoints of")
def test_a_new_run_or_another_runs_checkpoint_in_a_folder_of_one_run(tiny_config, tmp_path):
    path = tiny_config()
    logs = tmp_path / "logs"
    _save(logs, "epoch_001.pt", _state("20260101-000000-aaaa", 1, 2))
    before = sorted(os.listdir(logs))
    code, line = trainer("train", "-c", path, "--resume", "none")
    assert code == 1 and "starting run " in line
    shown("already holds checkpoints of", line)
    other = _save(tmp_path / "other", "epoch_003.pt", _state("20260202-000000-bbbb", 3, 6))
    code, line = trainer("train", "-c", path, "--resume", other)
    assert code == 1 and "continuing run 20260202-000000-bbbb there would mix" in line
    shown("already holds checkpoints of", line)
    assert sorted(os.listdir(logs)) == before


@renders("is shared with you read-only")
@pytest.mark.parametrize("logs", ["drive:Runs", "drive:Runs/me/logs"])
def test_drive_logs_in_a_folder_shared_read_only(drive, tiny_config, tmp_path, logs):
    teacher = "teacher@school.edu"
    folder = drive.add_folder("Runs", owner=teacher, shared_with_me="reader")
    drive.add_shortcut("Runs", folder)
    path = tiny_config(**{"drive.logs": logs})
    drive.clear_requests()
    code, line = trainer("train", "-c", path)
    assert code == 1
    shown("is shared with you read-only", line)
    assert line.startswith("Error: drive:Runs is shared with you read-only"), line
    # Before the first iteration: nothing trained or saved, nothing tried on Drive.
    assert not [r.kind for r in drive.requests if r.kind in (
        "files.insert", "files.update", "media.upload")]
    assert not any(n.endswith(".pt") for n in os.listdir(tmp_path / "logs"))


@renders("resuming would mix the two runs on Drive")
def test_a_local_run_whose_drive_folder_holds_another_run(drive, tiny_config, tmp_path):
    path = tiny_config(**{"drive.logs": f"drive:{FOLDER}"})
    _save(tmp_path / "logs", "epoch_001.pt", _state("20260101-000000-aaaa", 1, 2))
    _upload(drive, _save(tmp_path / "elsewhere", "epoch_004.pt", _state("20260202-000000-bbbb", 4, 8)))
    code, line = trainer("train", "-c", path, "--resume", "auto")
    assert code == 1
    shown("resuming would mix the two runs on Drive", line)


@renders("is behind … continuing from Drive")
def test_a_local_folder_behind_drive(drive, tiny_config, tmp_path, caplog):
    cfg = _drive_config(tiny_config)
    _save(tmp_path / "logs", "epoch_002.pt", _state("r1", 2, 4))
    for epoch in (2, 3):   # another machine continued the run from Drive to epoch 3
        _upload(drive, _save(tmp_path / "other-machine", f"epoch_{epoch:03d}.pt", _state("r1", epoch, 2 * epoch)))
    with caplog.at_level(logging.WARNING, logger="trainer"):
        start = _choose(cfg)
    assert start.path == str(tmp_path / "logs" / "epoch_003.pt")
    shown("is behind … continuing from Drive", log_text(caplog.records))


@renders("the newest verified checkpoint on Drive, …, cannot be used")
def test_a_damaged_newest_checkpoint_on_drive(drive, tiny_config, tmp_path, caplog):
    cfg = _drive_config(tiny_config)
    made = tmp_path / "made"
    _upload(drive, _save(made, "epoch_001.pt", _state("r1", 1, 2)))
    _upload(drive, _truncated(made, "epoch_002.pt", "r1", 2))
    with caplog.at_level(logging.WARNING, logger="trainer"):
        start = _choose(cfg)
    assert start.path == str(tmp_path / "logs" / "epoch_001.pt")        # the next older one
    assert "epoch_002.pt" in _remote(drive)                                # left on Drive
    shown("the newest verified checkpoint on Drive, …, cannot be used", log_text(caplog.records))


def _epoch_2_pushed_again_meanwhile(drive, tmp_path, cut: bool):
    """Epochs 1 and 2 of run r1 on Drive, and a proxy mutation with which another machine
    pushes epoch 2 again (other bytes: the checkpoint, then its sidecar in place) while an
    answer passes; ``cut``: that answer breaks off halfway. Returns (the new epoch 2, it)."""
    from _proxy import pushed_meanwhile
    from drivestage.drive import connect

    made = tmp_path / "made"
    _upload(drive, _save(made, "epoch_001.pt", _state("r1", 1, 2)))
    _upload(drive, _save(made, "epoch_002.pt", _state("r1", 2, 4, pad=b"a" * 4096)))
    again = _save(tmp_path / "other-machine", "epoch_002.pt", _state("r1", 2, 4, pad=b"b" * 4096))
    store = connect(api_root=drive.url, token="test-token")
    return again, pushed_meanwhile(store, FOLDER, lambda: (again, ckpt.sidecar_path(again)),
                                   cut=cut)


def _resumed_through(drive, tiny_config, monkeypatch, pattern: str, mutate):
    """Where a resume starts with ``mutate`` at the first request matching ``pattern``."""
    from _proxy import Proxy

    with Proxy(drive.url) as proxy:
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
        proxy.on("GET", pattern, mutate, times=1)
        return _choose(_drive_config(tiny_config))


@renders("changed on Drive while it was fetched")
def test_the_newest_checkpoint_replaced_on_drive_while_a_resume_fetches_it(
        drive, tiny_config, tmp_path, caplog, monkeypatch):
    """Another machine pushes a new version of the newest checkpoint (and its sidecar) while
    this resume downloads it (the rest of the download comes from the new version): the
    resume lists the folder again and takes the new version, instead of failing ("changed on
    Drive while downloading") or going back an epoch."""
    again, mutate = _epoch_2_pushed_again_meanwhile(drive, tmp_path, cut=True)
    pt = drive.find(f"{FOLDER}/epoch_002.pt")["id"]
    with caplog.at_level(logging.WARNING, logger="trainer"):
        start = _resumed_through(drive, tiny_config, monkeypatch, rf"/files/{pt}\?.*alt=media",
                                 mutate)
    assert start.path == str(tmp_path / "logs" / "epoch_002.pt")
    with open(start.path, "rb") as fh, open(again, "rb") as want:
        assert fh.read() == want.read()
    shown("changed on Drive while it was fetched", log_text(caplog.records))


def test_the_newest_checkpoint_replaced_on_drive_between_the_listing_and_its_sidecar(
        drive, tiny_config, tmp_path, monkeypatch):
    """The new version lands after the resume listed the folder and before it read the
    sidecar (updated in place: the new md5, which no listed copy has): the resume lists
    again and takes the new version, instead of taking epoch 1 as the newest verified."""
    again, mutate = _epoch_2_pushed_again_meanwhile(drive, tmp_path, cut=False)
    logs = drive.find(FOLDER)["id"]
    start = _resumed_through(drive, tiny_config, monkeypatch, rf"/files\?.*{logs}", mutate)
    assert start.path == str(tmp_path / "logs" / "epoch_002.pt")
    with open(start.path, "rb") as fh, open(again, "rb") as want:
        assert fh.read() == want.read()


@renders("no checkpoint of … can be read")
def test_no_checkpoint_of_the_run_on_drive_loads(drive, tiny_config, tmp_path):
    path = tiny_config(**{"drive.logs": f"drive:{FOLDER}"})
    _upload(drive, _truncated(tmp_path / "made", "epoch_002.pt", "20260101-000000-aaaa", 2))
    code, line = trainer("train", "-c", path, "--resume", "auto")
    assert code == 1
    shown("no checkpoint of … can be read", line)


@renders("is not a full trainer checkpoint (weights only?)")
def test_resume_given_weights(tiny_config, tmp_path):
    weights = tmp_path / "yolov4_tiny_weights_voc.pth"
    torch.save(torch.nn.Linear(2, 1).state_dict(), weights)              # a state dict, as the port's
    code, line = trainer("train", "-c", tiny_config(), "--resume", str(weights))
    assert code == 1
    shown("is not a full trainer checkpoint (weights only?)", line)


@renders("cannot be read (")
def test_resume_given_a_truncated_checkpoint(tiny_config, tmp_path):
    path = _save(tmp_path / "mount", "epoch_005.pt", _state("r1", 5, 10))
    with open(path, "r+b") as f:                      # a Drive mount that lost the connection
        f.truncate(os.path.getsize(path) // 2)
    os.unlink(ckpt.sidecar_path(path))
    code, line = trainer("train", "-c", tiny_config(), "--resume", path)
    assert code == 1
    shown("cannot be read (", line)


@renders("the config changes the model's shape")
def test_resume_with_another_class_count(tiny_config, tmp_path):
    cfg = load_config(tiny_config())
    path = _save(tmp_path / "given", "epoch_001.pt",
                 _state("r1", 1, 2, signature=model_signature(cfg, len(CLASSES) + 1)))
    code, line = trainer("train", "-c", tiny_config(), "--resume", path)
    assert code == 1
    shown("the config changes the model's shape", line)


@renders("the model does not match")
def test_resume_of_a_checkpoint_whose_layers_differ(tiny_config, tmp_path):
    cfg = load_config(tiny_config())
    # The signature agrees with the config; the layers are another network's.
    path = _save(tmp_path / "given", "epoch_001.pt",
                 _state("r1", 1, 2, signature=model_signature(cfg, len(CLASSES)),
                        model=torch.nn.Linear(2, 1).state_dict()))
    code, line = trainer("train", "-c", tiny_config(), "--resume", path)
    assert code == 1
    shown("the model does not match", line)


# --------------------------------------------------------------------------- trainer status

@renders("no verified checkpoint on")
def test_status_of_an_empty_drive_folder(drive, tiny_config):
    drive.add_folder(FOLDER)   # (a folder that is not there is named so: test_walk20.py)
    code, line = trainer("status", "-c", tiny_config(**{"drive.logs": f"drive:{FOLDER}"}))
    assert code == 1
    shown("no verified checkpoint on", line)


@renders("drive.logs is not set in")
def test_status_without_drive_logs(tiny_config):
    code, line = trainer("status", "-c", tiny_config())
    assert code == 2
    shown("drive.logs is not set in", line)


# --------------------------------------------------------------------------- config and device

@renders("unknown config key")
def test_a_misspelt_key(tiny_config):
    code, line = trainer("train", "-c", tiny_config(), "--set", "train.epoch=3")
    assert code == 2 and "did you mean 'train.epochs'" in line
    shown("unknown config key", line)


@renders("expects a finite number")
def test_a_float_key_given_nan(tiny_config):
    code, line = trainer("train", "-c", tiny_config(), "--set", "train.lr=.nan")
    assert code == 2
    shown("expects a finite number", line)


@renders("CUDA is not available here")
def test_cuda_asked_for_where_there_is_none(tiny_config, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)   # a runtime without a GPU
    code, line = trainer("train", "-c", tiny_config(), "--set", "train.device=cuda")
    assert code == 2
    shown("CUDA is not available here", line)


@renders("was trained on … classes … but the config names")
def test_eval_of_weights_trained_on_other_classes(tiny_config, tmp_path):
    weights = tmp_path / "best.pt"
    torch.save({"model": {"yolo_headP5.1.weight": torch.zeros(24, 256, 1, 1)},
                "class_names": ["cat", "dog", "bird"]}, weights)
    code, line = trainer("eval", "-c", tiny_config(), "-w", str(weights))
    assert code == 1
    shown("was trained on … classes … but the config names", line)


# --------------------------------------------------------------------------- export

@renders("ONNX export needs the onnx package, which [train] leaves out")
def test_export_onnx_without_the_extra(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)    # as if the [export] extra were not installed
    weights = tmp_path / "w.pth"
    torch.save(torch.nn.Linear(2, 1).state_dict(), weights)
    code, line = trainer("export-onnx", "--weights", str(weights), "--out", str(tmp_path / "m.onnx"))
    assert code == 1
    assert not (tmp_path / "m.onnx").exists()
    shown("ONNX export needs the onnx package, which [train] leaves out", line)


@renders("could not record on … that the run goes on from …")
def test_a_run_sent_back_whose_record_drive_refuses(drive, tmp_path, monkeypatch):
    """--resume logs/epoch_001.pt, the run's newest being epoch 2: the re-dated sidecar of
    epoch 1 must reach Drive before training; Drive refuses every write. The run fails
    before its first iteration, saying so; Drive is unchanged, the local record stays."""
    from _proxy import Proxy, Reply
    from trainer.resume import _decide, record_branch
    from trainer.writer import BackgroundWriter
    from trainer.drive import DriveFolder, newest_of_current_run
    import types

    logs = tmp_path / "logs"
    for epoch in (1, 2):
        _upload(drive, ckpt.save_checkpoint(_state("r1", epoch, epoch * 4),
                                            str(logs / f"epoch_{epoch:03d}.pt")))
    before = _remote(drive)
    cfg = types.SimpleNamespace(train=types.SimpleNamespace(out_dir=str(logs)))
    with Proxy(drive.url) as proxy:
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            proxy.on(method, r".", lambda *a: Reply(403, {"Content-Type": "application/json"},
                     [b'{"error": {"code": 403, "message": "The user does not have '
                      b'sufficient permissions for this file.", "errors": [{"reason": '
                      b'"insufficientFilePermissions"}]}}']), forward=False)
        start = _decide(cfg, str(logs / "epoch_001.pt"), DriveFolder(f"drive:{FOLDER}", str(logs)))
        writer = BackgroundWriter(str(logs), DriveFolder(f"drive:{FOLDER}", str(logs)))
        try:
            with pytest.raises(MirrorError) as failed:
                record_branch(str(logs), start, "r1", writer)
        finally:
            writer.close(push=False)
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", drive.url)
    text = error_text(failed.value)
    shown("could not record on … that the run goes on from …", text)
    assert "nothing was trained" in text and "epoch_002.pt" in text and "\n" not in text
    assert _remote(drive) == before
    found = newest_of_current_run(DriveFolder(f"drive:{FOLDER}", "unused").checkpoints())
    assert found.name == "epoch_002.pt"
    assert os.path.basename(_decide(cfg, "auto", None).path) == "epoch_001.pt"
