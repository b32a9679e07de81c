"""trainres48 (2): a run folder holding only a killed save's checkpoint (its sidecar never
written) and ``model.weights`` gone (a fresh VM). The resume describes such a file from its
contents once it loads whole (``describe_killed_saves``) and goes on from it; the early check
of the weights (before the data is pulled) saw only described checkpoints and refused the
resume: ``Error: model.weights: file not found: …`` (exit 2). Now the check asks the same
question as the resume (reading only; the sidecar is written by the resume, as before), so a
whole checkpoint resumes; one cut short is no state to go on from (the resume would start a
new run), and the refusal says so."""
from __future__ import annotations

import hashlib
import os
import shutil

import pytest
from click.testing import CliRunner

from _once import config_like
from _one_epoch import one_epoch  # noqa: F401  (a fixture)
from trainer import checkpoint as ckpt
from trainer.cli import cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _killed(one_epoch, tmp_path):
    """A run folder of the one-epoch run's ``last.pt`` alone, without its sidecar, and a
    config whose model.weights is gone."""
    logs = tmp_path / "logs"
    logs.mkdir()
    shutil.copyfile(one_epoch / "logs" / "last.pt", logs / "last.pt")
    gone = str(tmp_path / "cleared" / "yolov4_tiny_weights_voc.pth")
    config = config_like(one_epoch, logs, **{"train.epochs": 2, "model.weights": gone,
                                             "train.eval_period": 100})
    return logs, config, gone


def test_a_killed_saves_whole_checkpoint_resumes_without_the_weights_file(one_epoch, tmp_path):
    logs, config, _ = _killed(one_epoch, tmp_path)
    result = CliRunner().invoke(cli, ["train", "-c", config])
    assert result.exit_code == 0, result.output
    assert (f"WARNING trainer.checkpoint: {logs / 'last.pt'} had no sidecar (a save was killed "
            "between the two); described from its contents (epoch 1)") in result.output.splitlines()
    assert ckpt.read_sidecar(str(logs / "last.pt")).epoch == 2
    # The config as trained (but the weights, the epochs, eval_period): no watched key warned
    # of (trainres48's augmentation keys compare equal as read back: test_trainres48_augment).
    assert "was trained with another" not in result.output


def test_a_killed_save_cut_short_is_refused_early_and_said(one_epoch, tmp_path):
    logs, config, gone = _killed(one_epoch, tmp_path)
    cut = (logs / "last.pt").read_bytes()[:-4096]
    (logs / "last.pt").write_bytes(cut)
    result = CliRunner().invoke(cli, ["train", "-c", config])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: model.weights: file not found: {gone} (--resume auto would start a new run: "
        f"{logs / 'last.pt'} has no sidecar and does not load as a checkpoint, so it is no "
        "state to go on from)")
    # Nothing written: no sidecar vouches for the cut file, its bytes as they were.
    assert sorted(os.listdir(logs)) == ["last.pt"]
    assert hashlib.md5((logs / "last.pt").read_bytes()).hexdigest() == hashlib.md5(cut).hexdigest()
