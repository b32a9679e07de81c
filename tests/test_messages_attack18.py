"""docs/troubleshooting.md, "Training": the messages of a local disk that fills up during a run
(see tests/_messages.py). Nothing trains: the real save policy, background writer and
results.csv writer of a run assembled with a one-layer network write into a tmpfs of a few
hundred KiB (tests/_tmpfs.py) that another program has filled."""
from __future__ import annotations

import logging
import os
import tempfile

import pytest

from _messages import error_text, log_text, renders, shown
from _tmpfs import small_disk  # noqa: F401 (a fixture)
from trainer import checkpoint as ckpt
from trainer import distributed
from trainer.config import load_config, model_signature
from trainer.errors import SaveError
from trainer.state import Position

KiB = 1024
CLASSES = ["circle", "square", "triangle"]   # the synthetic dataset's (tests/conftest.py)


def _fill(folder) -> None:
    """Another program writes into ``folder`` until its file system is full."""
    with open(os.path.join(folder, "filler.bin"), "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * (4 * KiB))
        except OSError as exc:
            assert exc.errno == 28, exc  # ENOSPC


def _run(cfg, *, drive: bool = False):
    """The real ``Run`` of ``cfg`` (test_messages_train's): save policy, background writer
    (mirroring to ``drive.logs`` when ``drive``), a one-layer network."""
    from test_messages_train import _run as run_of

    return run_of(cfg, drive=drive, grace_s=cfg.train.grace_seconds)


@renders("could not write the checkpoint of epoch … in …:",
         "could not write … in …: [Errno 28] No space left on device",
         "it is written again after the next epoch")
def test_the_last_epochs_checkpoint_on_a_full_disk(tiny_config, small_disk, caplog, monkeypatch):
    from trainer.callbacks import CSVLogger

    disk = small_disk(512 * KiB)
    (disk / "tmp").mkdir()   # (the temporary folder on the same disk: full too)
    monkeypatch.setattr(tempfile, "tempdir", str(disk / "tmp"))
    run = _run(load_config(tiny_config(**{"train.out_dir": str(disk / "logs"), "train.epochs": 2})))
    first = ckpt.save_checkpoint({"format_version": ckpt.FORMAT_VERSION, "model": {},
                                  "optimizer": {}, "epoch": 1, "iteration": 2, "config": {},
                                  "run": run.state.run}, os.path.join(run.out_dir, "epoch_001.pt"))
    _fill(disk)
    run.state.pos = pos = Position(2, 4, 0)
    run.state.history = [{"epoch": 1}, {"epoch": 2}]
    row = {"epoch": 2, "map50": 0.5}
    with caplog.at_level(logging.WARNING, logger="trainer"), pytest.raises(SaveError) as failed:
        CSVLogger(run.out_dir).on_fit_epoch_end(run, pos, row)
        run.checkpointer.on_fit_epoch_end(run, pos, row)
        run.checkpointer.on_fit_end(run)
    assert failed.value.exit_code == 1
    text = error_text(failed.value)
    assert text == (f"Error: could not write the checkpoint of epoch 2 (last.pt, epoch_002.pt, "
                    f"best.pt) in {run.out_dir}: [Errno 28] No space left on device, nor on this "
                    f"machine ([Errno 28] No space left on device); the newest "
                    f"checkpoint there is epoch_001.pt (epoch 1, iteration 2): free some space "
                    f"and run the same command again to train on from it")
    shown("could not write the checkpoint of epoch … in …:", text)
    logged = log_text(caplog.records)
    shown("could not write … in …: [Errno 28] No space left on device", logged)
    shown("it is written again after the next epoch", logged)
    assert sorted(os.listdir(run.out_dir)) == ["epoch_001.json", "epoch_001.pt"]
    assert ckpt.load_checkpoint(first)["epoch"] == 1


@renders("it was trained on the classes")
def test_resume_with_the_classes_in_another_order(tiny_config, tmp_path):
    from click.testing import CliRunner

    from trainer.cli import cli

    cfg = load_config(tiny_config())
    path = ckpt.save_checkpoint(
        {"format_version": ckpt.FORMAT_VERSION, "model": {}, "optimizer": {}, "epoch": 1,
         "iteration": 2, "config": {}, "run": "r1", "signature": model_signature(cfg, len(CLASSES)),
         "class_names": sorted(CLASSES, reverse=True)}, str(tmp_path / "given" / "epoch_001.pt"))
    result = CliRunner().invoke(cli, ["train", "-c", tiny_config(), "--resume", path])
    assert result.exit_code == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"Error: cannot resume from {path}: it was trained on the classes "
                           f"[triangle, square, circle] and the config names [circle, square, "
                           f"triangle]")
    shown("it was trained on the classes", line)


@renders("was trained with another")
def test_resume_with_another_input_size(tiny_config, caplog):
    from trainer.resume import _warn_changed

    saved = load_config(tiny_config()).to_dict()
    now = load_config(tiny_config(**{"model.input_size": 96})).to_dict()
    with caplog.at_level(logging.WARNING, logger="trainer"):
        _warn_changed(saved, now, "logs/epoch_001.pt")
    text = log_text(caplog.records)
    assert text == ("WARNING trainer.restore: logs/epoch_001.pt was trained with another "
                    "model.input_size (64, now 96); training goes on with the config's")
    shown("was trained with another", text)


class _SlowToWrite:
    """Pickled as 0, once ``go`` is set: a save holding it keeps the writing thread busy (a
    slow disk) for as long as the test wants."""

    def __init__(self, go):
        self.go = go

    def __reduce__(self):
        assert self.go.wait(60), "never released"
        return (int, (0,))


@renders("was still to be written")
def test_a_stop_at_the_end_before_the_last_epochs_checkpoint_is_written(emulator, drive_env,
                                                                        local_state, tiny_config,
                                                                        tmp_path, monkeypatch):
    """The writer is still writing a save (a slow disk) when the last epoch's save is queued,
    and a SIGTERM comes as training ends. The grace runs out before that save is even
    written. The run said "they are complete in logs: run the same command again to upload
    them (it trains nothing more)": the process then exits, and the last epoch was in no file.
    (trainer22: an upload no longer holds the writing slot, so it takes a slow write here.)
    Then it named the newest checkpoint in the run folder, the epoch trained dropped; its
    state, still in memory, is now kept on this machine (attackt31)."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))   # (where it is kept)
    import signal
    import threading
    import time

    from trainer.errors import TrainingInterrupted
    from trainer.writer import SaveJob

    cfg = load_config(tiny_config(**{"drive.logs": "drive:Models/a18m/logs", "train.epochs": 2,
                                     "train.grace_seconds": 0.3}))
    run = _run(cfg, drive=True)
    row = {"map50": 0.5}
    run.state.pos = Position(1, 2, 0)
    run.checkpointer.on_fit_epoch_end(run, run.state.pos, {"epoch": 1, **row})
    first = run.checkpointer._epoch_job
    deadline = time.monotonic() + 30
    while not first.written:
        assert time.monotonic() < deadline, "epoch 1 was never written"
        time.sleep(0.01)
    go = threading.Event()
    slow = SaveJob({**_tiny_state(1, run.state.run), "epoch_iteration": 1, "iteration": 3,
                    "slow": _SlowToWrite(go)}, ["autosave_00000003.pt"], Position(1, 3, 1))
    run.writer.submit(slow)
    while run.writer._current is not slow:
        assert time.monotonic() < deadline, "the slow save was never taken up"
        time.sleep(0.01)
    run.state.pos = Position(2, 4, 0)
    run.checkpointer.on_fit_epoch_end(run, run.state.pos, {"epoch": 2, "map50": 0.6})
    # Drive slower than the quarter of the grace left to the kept state's send (epochkeep32).
    emulator.faults.latency(1.0, path=r"^/upload/", times=None)
    run.stop.request(signal.SIGTERM)
    try:
        with pytest.raises(TrainingInterrupted) as stopped:
            run.checkpointer.on_fit_end(run)
        assert ckpt.read_sidecar(os.path.join(run.out_dir, "last.pt")).epoch == 1   # (then)
    finally:
        emulator.faults.clear()
        go.set()
        assert run.writer.close() is True                  # it goes on here; wait for it
    assert stopped.value.exit_code == 143
    text = error_text(stopped.value)
    head = ("Error: stopped by SIGTERM while the checkpoint of epoch 2 (last.pt, epoch_002.pt, "
            "best.pt) was still to be written; its state is saved in ")
    assert text.startswith(head), text
    path = text[len(head):].split(" ", 1)[0]
    # (Drive slow: its copy sent there is not verified within the grace; lastkeep32.)
    assert text == (f"{head}{path} on this machine, not yet verified on drive:Models/a18m/logs "
                    f"within train.grace_seconds (0.3 s): --resume {path} goes on from it (copy "
                    "it off this machine while it lasts)")
    assert path.startswith(str(tmp_path)) and ckpt.read_sidecar(path).epoch == 2
    shown("was still to be written", text)


@renders("the state of epoch … is in …: fix that and run the same command again to make them")
def test_the_last_epochs_copy_cannot_be_written(tiny_config, tmp_path):
    run = _run(load_config(tiny_config(**{"train.epochs": 2})))
    os.makedirs(os.path.join(run.out_dir, "epoch_002.pt"))         # what stands in its way
    run.state.pos = pos = Position(2, 4, 0)
    with pytest.raises(SaveError) as failed:
        run.checkpointer.on_fit_epoch_end(run, pos, {"epoch": 2, "map50": 0.5})
        run.checkpointer.on_fit_end(run)
    text = error_text(failed.value)
    assert text.startswith(f"Error: could not write epoch_002.pt, best.pt (epoch 2) in "
                           f"{run.out_dir}: [Errno 21] Is a directory")
    shown("the state of epoch … is in …: fix that and run the same command again to make them",
          text)
    assert ckpt.load_checkpoint(os.path.join(run.out_dir, "last.pt"))["epoch"] == 2


@renders("and none of them can be read (")
def test_a_run_folder_whose_every_checkpoint_is_damaged(tiny_config, tmp_path):
    import hashlib

    from click.testing import CliRunner

    from drivestage import sidecar as sidecars
    from trainer.cli import cli

    path = tiny_config()
    logs = load_config(path).train.out_dir
    whole = ckpt.save_checkpoint({"format_version": ckpt.FORMAT_VERSION, "model": {},
                                  "optimizer": {}, "epoch": 3, "iteration": 6, "config": {},
                                  "run": "r1"}, os.path.join(logs, "epoch_003.pt"))
    data = open(whole, "rb").read()[:100]                     # truncated since
    with open(whole, "wb") as fh:
        fh.write(data)
    sidecars.write(whole, sidecars.Sidecar(epoch=3, iteration=6, epoch_iteration=0, run="r1",
                                           md5=hashlib.md5(data).hexdigest(), size=len(data)))
    result = CliRunner().invoke(cli, ["train", "-c", path])
    assert result.exit_code == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"Error: {logs} holds checkpoints of run r1, and none of them can be "
                           f"read (epoch_003.pt); start over with --resume none in new folders")
    shown("and none of them can be read (", line)
    assert sorted(os.listdir(logs)) == ["epoch_003.json", "epoch_003.pt"]


def _tiny_state(epoch: int, run: str = "r1") -> dict:
    return {"format_version": ckpt.FORMAT_VERSION, "model": {}, "optimizer": {}, "epoch": epoch,
            "iteration": epoch * 2, "epoch_iteration": 0, "config": {}, "run": run}


@renders("has no sidecar (a save was killed before it) and none could be written")
def test_a_killed_saves_checkpoint_on_a_full_disk(small_disk):
    from trainer.resume import choose

    disk = small_disk(512 * KiB)
    logs = disk / "logs"
    ckpt.save_checkpoint(_tiny_state(2), str(logs / "last.pt"))
    os.unlink(logs / "last.json")
    _fill(disk)
    cfg = type("Cfg", (), {"train": type("T", (), {"out_dir": str(logs)})})()
    with pytest.raises(SaveError) as failed:
        choose(cfg, "auto", distributed.env_info(), None)
    assert failed.value.exit_code == 1
    shown("has no sidecar (a save was killed before it) and none could be written",
          error_text(failed.value))


@renders("could not make … from … (")
def test_a_repair_copy_on_a_full_disk(small_disk, caplog):
    from trainer.resume import _copy_for_repair

    disk = small_disk(512 * KiB)
    logs = disk / "logs"
    last = ckpt.save_checkpoint(_tiny_state(2), str(logs / "last.pt"))
    _fill(disk)
    with caplog.at_level(logging.WARNING, logger="trainer"):
        _copy_for_repair(last, str(logs / "epoch_002.pt"))
    text = log_text(caplog.records)
    assert "No space left on device" in text and "the next resume tries again" in text
    shown("could not make … from … (", text)
    assert sorted(os.listdir(logs)) == ["last.json", "last.pt"]
