"""trainlefts47 (3): ``model.weights`` that is gone (a fresh VM, a cleared /tmp) refused a
resume, which never uses it: ``Error: model.weights: file not found: …`` (exit 2) where the
run folder or ``drive.logs`` held the state to go on from. Now the early check (ux34's,
before the data is pulled) skips it when the run will resume, and the weights are loaded
for a fresh start alone; a fresh start still refuses, and where Drive cannot be read to
decide, the refusal says so."""
from __future__ import annotations

import os
import shutil

import pytest
from click.testing import CliRunner

from _once import config_like
from _one_epoch import one_epoch  # noqa: F401  (a fixture)
from trainer import checkpoint as ckpt
from trainer.cli import cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SPEC = "drive:Models/tl47w/logs"


def _with_drive(config: str, logs: str) -> str:
    """``config`` with ``drive.logs`` set (config_like sets the sections it has)."""
    import yaml

    cfg = yaml.safe_load(open(config).read())
    cfg["drive"] = {"logs": logs}
    open(config, "w").write(yaml.safe_dump(cfg))
    return config


def _gone(tmp_path) -> str:
    return str(tmp_path / "cleared" / "yolov4_tiny_weights_voc.pth")


def test_a_fresh_vm_resumes_from_drive_without_the_weights_file(
        emulator, drive_env, local_state, one_epoch, tmp_path):
    """The run's checkpoints on Drive, an empty run folder, model.weights gone: it resumes."""
    for name in ("last.pt", "last.json"):
        emulator.add_file(f"Models/tl47w/logs/{name}", (one_epoch / "logs" / name).read_bytes())
    logs = tmp_path / "logs"
    config = _with_drive(config_like(one_epoch, logs, **{
        "train.epochs": 2, "model.weights": _gone(tmp_path), "train.eval_period": 100}), SPEC)
    result = CliRunner().invoke(cli, ["train", "-c", config])
    assert result.exit_code == 0, result.output
    side = ckpt.read_sidecar(str(logs / "last.pt"))
    assert side is not None and side.epoch == 2


def test_a_run_folder_with_a_checkpoint_resumes_without_the_weights_file(one_epoch, tmp_path):
    logs = tmp_path / "logs"
    shutil.copytree(one_epoch / "logs", logs)
    config = config_like(one_epoch, logs, **{"train.epochs": 2, "model.weights": _gone(tmp_path),
                                             "train.eval_period": 100})
    result = CliRunner().invoke(cli, ["train", "-c", config])
    assert result.exit_code == 0, result.output
    assert ckpt.read_sidecar(str(logs / "last.pt")).epoch == 2


def test_a_fresh_start_still_refuses_the_missing_weights(one_epoch, tmp_path):
    logs = tmp_path / "logs"
    config = config_like(one_epoch, logs, **{"model.weights": _gone(tmp_path)})
    for args in ([], ["--resume", "none"]):
        result = CliRunner().invoke(cli, ["train", "-c", config, *args])
        assert result.exit_code == 2, result.output
        assert result.stderr.strip().splitlines()[-1] == \
            f"Error: model.weights: file not found: {_gone(tmp_path)}"
    assert not os.path.exists(logs / "last.pt")


def test_drive_that_cannot_be_read_keeps_the_refusal_and_says_so(
        emulator, drive_env, local_state, one_epoch, tmp_path, monkeypatch):
    """drive.logs set, Drive unreachable (nothing listens at the API root): the decision
    cannot be made, and the refusal says so."""
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", "http://127.0.0.1:9")   # (nothing listens there)
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "2")
    logs = tmp_path / "logs"
    config = _with_drive(config_like(one_epoch, logs, **{"model.weights": _gone(tmp_path)}), SPEC)
    result = CliRunner().invoke(cli, ["train", "-c", config])
    assert result.exit_code == 2, result.output
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"Error: model.weights: file not found: {_gone(tmp_path)} (a resume "
                           f"from {SPEC} would not need it, but whether there is one there "
                           f"could not be checked: "), line
