"""Full-state checkpoints: atomic writes, sidecars, verified loading, newest-first search, RNG."""
from __future__ import annotations

import hashlib
import json
import os
import time
import random

import numpy as np
import pytest
import torch

from trainer import checkpoint as ckpt
from trainer.errors import CheckpointError


def _state(epoch: int, *, run: str = "20260101-000000-abcd", epoch_iteration: int = 0, **extra) -> dict:
    model = torch.nn.Conv2d(3, 4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(1, 3, 5, 5)).sum().backward()
    opt.step()
    return {"format_version": ckpt.FORMAT_VERSION, "model": model.state_dict(),
            "optimizer": opt.state_dict(), "epoch": epoch, "iteration": epoch * 10 + epoch_iteration,
            "epoch_iteration": epoch_iteration, "run": run,
            "config": {"train": {"epochs": 5}}, "rng": [ckpt.capture_rng()], **extra}


def test_save_then_load_round_trips_every_tensor_and_writes_the_sidecar(tmp_path):
    state = _state(4)
    before = time.time()
    path = ckpt.save_checkpoint(state, str(tmp_path / "epoch_004.pt"), metrics={"map50": 0.5, "val_loss": 1.25})
    after = time.time()
    back = ckpt.load_checkpoint(path)
    for k, v in state["model"].items():
        assert torch.equal(back["model"][k], v)
    assert back["optimizer"]["state"][0]["momentum_buffer"].equal(state["optimizer"]["state"][0]["momentum_buffer"])
    side = json.loads((tmp_path / "epoch_004.json").read_text())
    data = (tmp_path / "epoch_004.pt").read_bytes()
    saved = side.pop("saved")                 # when the file was complete
    assert before <= saved <= after and os.path.getmtime(path) <= saved
    assert side == {"format": 3, "epoch": 4, "iteration": 40, "epoch_iteration": 0,
                    "metrics": {"map50": 0.5, "val_loss": 1.25}, "run": "20260101-000000-abcd",
                    "md5": hashlib.md5(data).hexdigest(), "size": len(data)}
    # Only the two final files remain: no temporary file is left behind.
    assert sorted(os.listdir(tmp_path)) == ["epoch_004.json", "epoch_004.pt"]
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_a_failed_write_leaves_the_previous_checkpoint_intact(tmp_path):
    path = str(tmp_path / "last.pt")
    ckpt.save_checkpoint(_state(1), path)
    before = open(path, "rb").read()
    bad = _state(2, unpicklable=lambda: None)
    with pytest.raises(Exception):
        ckpt.save_checkpoint(bad, path)
    assert open(path, "rb").read() == before
    assert json.loads((tmp_path / "last.json").read_text())["epoch"] == 1
    assert sorted(os.listdir(tmp_path)) == ["last.json", "last.pt"]


def test_an_incomplete_state_is_refused_before_writing(tmp_path):
    with pytest.raises(CheckpointError, match=r"missing \['optimizer'"):
        ckpt.save_checkpoint({"format_version": 2, "model": {}, "epoch": 1, "iteration": 1, "config": {}},
                             str(tmp_path / "x.pt"))
    assert os.listdir(tmp_path) == []


def test_truncated_checkpoint_raises_a_clear_error(tmp_path):
    path = ckpt.save_checkpoint(_state(1), str(tmp_path / "last.pt"))
    data = open(path, "rb").read()
    with open(path, "wb") as fh:
        fh.write(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"last\.pt cannot be read .*truncated or not a trainer checkpoint"):
        ckpt.load_checkpoint(path)


def test_weights_only_file_is_not_resumable(tmp_path):
    path = str(tmp_path / "w.pth")
    torch.save(torch.nn.Linear(2, 2).state_dict(), path)
    with pytest.raises(CheckpointError, match="not a full trainer checkpoint .*use it as model.weights"):
        ckpt.load_checkpoint(path)


def test_find_latest_prefers_the_most_progress_then_the_epoch_name(tmp_path):
    d = str(tmp_path)
    # In the order a run saves them (best.pt at epoch 3: a copy, saved then; a checkpoint of
    # less progress saved after a further one is a run sent back on purpose, see
    # test_attack18_train.py).
    ckpt.save_checkpoint(_state(2), os.path.join(d, "epoch_002.pt"))
    ckpt.save_checkpoint(_state(3), os.path.join(d, "best.pt"))
    ckpt.save_checkpoint(_state(4), os.path.join(d, "epoch_004.pt"))
    ckpt.save_checkpoint(_state(4), os.path.join(d, "last.pt"))
    found = ckpt.list_checkpoints(d)
    assert sorted(c.described.name for c in found) == ["best.pt", "epoch_002.pt", "epoch_004.pt", "last.pt"]
    assert os.path.basename(ckpt.find_latest(d)) == "epoch_004.pt"   # same progress as last.pt
    # An autosave in the middle of epoch 5 is further on than both.
    ckpt.save_checkpoint(_state(4, epoch_iteration=3), os.path.join(d, "autosave_00000043.pt"))
    assert os.path.basename(ckpt.find_latest(d)) == "autosave_00000043.pt"


def test_find_latest_picks_the_run_written_last(tmp_path):
    # trainer 0.1.0 could leave two runs in one folder: the one written last is the current one,
    # even though the other one went further.
    d = str(tmp_path)
    ckpt.save_checkpoint(_state(50, run="old"), os.path.join(d, "epoch_050.pt"))
    old = time.time() - 3600
    os.utime(os.path.join(d, "epoch_050.pt"), (old, old))
    ckpt.save_checkpoint(_state(2, run="new"), os.path.join(d, "epoch_002.pt"))
    found, run = ckpt.current_run([c.described for c in ckpt.list_checkpoints(d)])
    assert found and run == "new"
    assert os.path.basename(ckpt.find_latest(d, run=run, any_run=False)) == "epoch_002.pt"


def test_find_latest_skips_a_damaged_newest_checkpoint(tmp_path, caplog):
    d = str(tmp_path)
    ckpt.save_checkpoint(_state(2), os.path.join(d, "epoch_002.pt"))
    last = ckpt.save_checkpoint(_state(3), os.path.join(d, "last.pt"))
    with open(last, "r+b") as fh:
        fh.truncate(100)
    assert os.path.basename(ckpt.find_latest(d)) == "epoch_002.pt"
    assert "skipping" in caplog.text and "last.pt" in caplog.text


def test_find_latest_in_an_empty_folder_is_none(tmp_path):
    assert ckpt.find_latest(str(tmp_path)) is None
    assert ckpt.find_latest(str(tmp_path / "missing")) is None


def test_copy_checkpoint_copies_file_and_sidecar(tmp_path):
    src = ckpt.save_checkpoint(_state(5), str(tmp_path / "last.pt"), metrics={"map50": 0.3})
    dst = ckpt.copy_checkpoint(src, str(tmp_path / "best.pt"))
    assert open(dst, "rb").read() == open(src, "rb").read()
    assert ckpt.read_sidecar(dst).metrics == {"map50": 0.3}
    assert ckpt.read_sidecar(dst) == ckpt.read_sidecar(src)


def test_rng_states_survive_a_save_and_load(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.randn()  # leave a cached gaussian in numpy's state
    state = _state(1)
    state["rng"] = [ckpt.capture_rng()]
    expected = (random.random(), np.random.rand(), np.random.randn(), torch.rand(3))
    path = ckpt.save_checkpoint(state, str(tmp_path / "last.pt"))
    random.seed(99)
    np.random.seed(99)
    torch.manual_seed(99)
    ckpt.restore_rng(ckpt.load_checkpoint(path)["rng"][0])
    got = (random.random(), np.random.rand(), np.random.randn(), torch.rand(3))
    assert got[:3] == expected[:3] and torch.equal(got[3], expected[3])


def test_signature_mismatch_is_refused_with_both_values():
    with pytest.raises(CheckpointError) as err:
        ckpt.check_signature({"num_classes": 20, "phi": 0}, {"num_classes": 3, "phi": 0}, "logs/last.pt")
    assert "num_classes: checkpoint 20, config 3" in str(err.value)
    assert "--resume none" in str(err.value)
    ckpt.check_signature({"num_classes": 3, "phi": 0}, {"num_classes": 3, "phi": 0}, "x")


def test_a_format_1_checkpoint_still_loads(tmp_path):
    state = _state(3)
    del state["iteration"], state["epoch_iteration"], state["run"]
    state.update(format_version=1, global_step=30)
    path = str(tmp_path / "old.pt")
    torch.save(state, path)
    assert ckpt.position_of(ckpt.load_checkpoint(path)) == (3, 30, 0)


def test_the_state_copied_to_cpu_does_not_follow_the_live_tensors():
    model = torch.nn.Linear(2, 2)
    copy = ckpt.to_cpu({"model": model.state_dict(), "nested": [(model.weight,)]})
    with torch.no_grad():
        model.weight.add_(1)
    assert not torch.equal(copy["model"]["weight"], model.weight)
    assert not torch.equal(copy["nested"][0][0], model.weight)
