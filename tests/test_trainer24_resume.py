"""trainer24: ``--resume auto`` and checkpoints of another model layout; bad files kept aside.

A checkpoint whose model weights do not fit the network although its config (the model
signature: class count, anchors, attention) is the run's is a damaged or foreign file (another
trainer's, another fork's layer names): before, ``--resume auto`` took it for a change of
config and refused to start, however often it was run again, as NaN did before trainer23. Now
it is passed over like the other unusable states, with a warning naming what differs. A real
config change (another signature) is still refused naming what changed: every checkpoint of
the run is so, and falling back would only hide that.

Real checkpoint files of a real (small) model, written by the trainer's own save."""
from __future__ import annotations

import logging
import os
from types import SimpleNamespace

import pytest
import torch

from test_trainer22_hostile import _md5s, _small_run
from test_trainer23_fallback import _save, _warnings
from trainer import distributed


def _choose(logs, run, signature=None):
    from trainer.resume import choose
    from trainer.resume_checks import vetter

    cfg = SimpleNamespace(train=SimpleNamespace(out_dir=str(logs)))
    vet = vetter(run.bare_model, run.ema, run.optimizer,
                 signature=run.signature if signature is None else signature)
    return choose(cfg, "auto", distributed.env_info(), None, vet=vet)


def _another_layout(state) -> None:
    """The model's first conv of another width, the rest as saved (a foreign file)."""
    state["model"]["0.weight"] = torch.zeros(5, 3, 3, 3)


def test_a_checkpoint_of_another_layout_with_the_runs_config_is_passed_over(
        tiny_config, tmp_path, caplog):
    """epoch_002.pt (and last.pt) carry the run's signature but weights of another layout:
    one warning names it and what differs; the start is epoch_001.pt; nothing changed."""
    logs = tmp_path / "logs"
    run = _small_run(tiny_config, logs)
    _save(run, logs, "epoch_001.pt", 1, 1000.0)
    _save(run, logs, "epoch_002.pt", 2, 2000.0, _another_layout, copies=["last.pt"])
    before = _md5s(logs)
    with caplog.at_level(logging.WARNING):
        start = _choose(logs, run)
    assert start.path == str(logs / "epoch_001.pt")
    assert _warnings(caplog) == [
        f"{logs / 'epoch_002.pt'} is no state to train on (its model weights do not fit the "
        f"network of this config (1 tensors of another shape, e.g. 0.weight): a damaged file, "
        f"or another trainer's); it is kept as it is, and --resume auto tries the next older "
        f"checkpoint"]
    assert _md5s(logs) == before


def test_a_real_config_change_is_still_refused_naming_it(tiny_config, tmp_path, caplog):
    """The config gives another class count (another signature, another layout): no
    checkpoint is passed over; restore refuses the newest naming the change."""
    from trainer.errors import CheckpointError
    from trainer.resume import restore

    logs = tmp_path / "logs"
    run = _small_run(tiny_config, logs)
    _save(run, logs, "epoch_001.pt", 1, 1000.0)
    path = _save(run, logs, "epoch_002.pt", 2, 2000.0)
    other = _small_run(tiny_config, tmp_path / "other")
    other.model[0] = torch.nn.Conv2d(3, 5, 3)
    other.signature = dict(other.signature, num_classes=other.signature["num_classes"] + 1)
    with caplog.at_level(logging.WARNING):
        start = _choose(logs, other)
    assert start.path == path and not _warnings(caplog)
    with pytest.raises(CheckpointError, match="the config changes the model's shape"):
        restore(other, start)


# ------------------------------------------------- a bad file passed over is kept, not overwritten

def test_a_bad_file_passed_over_is_moved_aside_before_the_runs_save_of_its_name(
        tiny_config, tmp_path, caplog):
    """epoch_002.pt (NaN) is passed over; the run goes on from epoch_001.pt and saves epoch 2
    again. Before, that save replaced the bad file: the evidence of what went wrong was gone.
    Now, at the run's first save, it is moved aside with its sidecar under names no resume,
    describe or mirror takes (``epoch_002.pt.bad-<time>``), and a warning says where; the
    bytes are the user's, unchanged. Nothing moves before the run saves (the decision writes
    nothing)."""
    from test_trainer22_hostile import _nan_model
    from trainer.saving import Checkpointer
    from trainer.state import Position
    from trainer.writer import BackgroundWriter

    logs = tmp_path / "logs"
    run = _small_run(tiny_config, logs)
    _save(run, logs, "epoch_001.pt", 1, 1000.0)
    _save(run, logs, "epoch_002.pt", 2, 2000.0, _nan_model, copies=["last.pt"])
    bad = _md5s(logs)
    start = _choose(logs, run)
    assert start.path == str(logs / "epoch_001.pt")
    assert start.passed_over == ((str(logs / "epoch_002.pt"), bad["epoch_002.pt"]),)
    assert _md5s(logs) == bad

    writer = BackgroundWriter(str(logs))
    saver = Checkpointer(run.cfg, run.info, writer, run.stop, passed_over=start.passed_over)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        saver.on_fit_epoch_end(run, Position(2, 4, 0), {})
    writer.close()
    aside = sorted(n for n in os.listdir(logs) if ".bad-" in n)
    assert [n.split(".bad-")[0] for n in aside] == ["epoch_002.json", "epoch_002.pt"], aside
    stamp = aside[1].split(".bad-")[1]
    assert aside[0] == f"epoch_002.json.bad-{stamp}"
    assert _md5(logs / aside[1]) == bad["epoch_002.pt"]
    assert _md5(logs / aside[0]) == bad["epoch_002.json"]
    assert _md5s(logs)["epoch_002.pt"] != bad["epoch_002.pt"]     # the run's own save
    assert _warnings(caplog) == [
        f"{logs / 'epoch_002.pt'}, passed over at the start as no state to train on, is moved "
        f"aside to {logs / aside[1]} (its sidecar to {aside[0]}) at this run's first save, "
        f"where no save of the run replaces it: kept for a look, on this machine only (never "
        f"mirrored)"]
    from trainer import checkpoint as ckpt

    assert all(".bad-" not in c.path for c in ckpt.list_checkpoints(str(logs)))
    assert not ckpt.describe_killed_saves(str(logs))


def test_a_bad_file_already_replaced_is_left_alone(tiny_config, tmp_path, caplog):
    """The file passed over was replaced meanwhile (other bytes under its name): it is not
    the user's bad file, and stays where it is; nothing is said."""
    from test_trainer22_hostile import _nan_model
    from trainer.saving import Checkpointer
    from trainer.state import Position
    from trainer.writer import BackgroundWriter

    logs = tmp_path / "logs"
    run = _small_run(tiny_config, logs)
    _save(run, logs, "epoch_001.pt", 1, 1000.0)
    _save(run, logs, "epoch_002.pt", 2, 2000.0, _nan_model)
    start = _choose(logs, run)
    _save(run, logs, "epoch_002.pt", 2, 2100.0)      # replaced by another good save
    writer = BackgroundWriter(str(logs))
    saver = Checkpointer(run.cfg, run.info, writer, run.stop, passed_over=start.passed_over)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        saver.on_fit_epoch_end(run, Position(1, 2, 0), {})
    writer.close()
    assert not [n for n in os.listdir(logs) if ".bad-" in n] and not _warnings(caplog)


def _md5(path) -> str:
    import hashlib

    return hashlib.md5(open(path, "rb").read()).hexdigest()


def test_a_file_moved_aside_is_not_mirrored(emulator, drive_env, local_state, tiny_config,
                                           tmp_path):
    """The run's mirror (trainer.drive.DriveFolder.push) leaves the files moved aside here."""
    from trainer.drive import DriveFolder

    logs = tmp_path / "logs"
    run = _small_run(tiny_config, logs)
    _save(run, logs, "epoch_001.pt", 1, 1000.0)
    (logs / "epoch_002.pt.bad-20261204-185800").write_bytes(b"x" * 100)
    (logs / "epoch_002.json.bad-20261204-185800").write_bytes(b"{}")
    DriveFolder("drive:Models/t24m/logs", str(logs)).push()
    names = {f["title"] for f in emulator.files() if not f["labels"]["trashed"]}
    assert {"epoch_001.pt", "epoch_001.json"} <= names and not [n for n in names if ".bad-" in n]
