"""attacktrain40: a resume whose config changes the optimizer's settings.

The optimizer's state went back with ``optimizer.load_state_dict``, which puts back the
checkpoint's parameter groups whole: their weight decay, momentum (SGD) or betas (Adam), and
AdamW's ``decoupled_weight_decay``. So ``--set train.weight_decay=0.05`` or
``--set train.momentum=0.8`` on a resume (as README suggests ``--set train.lr=...`` after a
loss that diverged) trained on silently with the old values, not a word said; an Adam run
resumed as ``adamw`` trained on as Adam. Another kind altogether (``sgd`` to ``adam``) was
refused as "the optimizer state does not match the model ('step')" with the advice to go
back to an earlier checkpoint of the run, each as unusable.

Now the run trains with the config's settings and warns of what changed (the learning rate
stays the schedule's, as before); a checkpoint of another kind of optimizer is refused in
one line naming both kinds and the two ways on, and nothing is written.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from _messages import error_text
from trainer import checkpoint as ckpt
from trainer.callbacks import Callback
from trainer.config import load_config
from trainer.engine import fit
from trainer.errors import CheckpointError, UnusableCheckpointError
from _tiny_run import tiny_run_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _config(tmp_path: Path, epochs: int, **train) -> str:
    return tiny_run_config(tmp_path, epochs, logs=None, **train)


class _Groups(Callback):
    """The optimizer's parameter groups (less their tensors) at every step trained."""

    def __init__(self):
        self.seen: list[list[dict]] = []

    def on_train_batch_end(self, run, pos, logs):
        self.seen.append([{k: v for k, v in g.items() if k != "params"}
                          for g in run.optimizer.param_groups])


def _md5s(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.iterdir()
            if p.is_file()}


def test_a_resume_trains_with_the_configs_weight_decay_and_momentum_and_says_so(tmp_path, caplog):
    fit(load_config(_config(tmp_path, 1)), resume="none")
    groups = _Groups()
    with caplog.at_level(logging.WARNING, logger="trainer"):
        fit(load_config(_config(tmp_path, 2, weight_decay=0.05, momentum=0.8)), resume="auto",
            callbacks=[groups])

    assert groups.seen, "the resumed run trained no step"
    for step in groups.seen:
        # (norm weights, other weights, biases): only the second group decays.
        assert [g["weight_decay"] for g in step] == [0.0, 0.05, 0.0]
        assert [g["momentum"] for g in step] == [0.8, 0.8, 0.8]
        assert all(g["nesterov"] for g in step)
    saved = ckpt.load_checkpoint(str(tmp_path / "logs" / "epoch_002.pt"))["optimizer"]
    assert [g["weight_decay"] for g in saved["param_groups"]] == [0.0, 0.05, 0.0]
    warned = [r.getMessage() for r in caplog.records if "was trained with another" in r.getMessage()]
    assert warned == [
        f"{tmp_path / 'logs' / 'epoch_001.pt'} was trained with another train.momentum (0.937, "
        f"now 0.8), train.weight_decay (0.0005, now 0.05); training goes on with the config's"]


def test_an_adam_run_resumed_as_adamw_trains_as_adamw(tmp_path, caplog):
    fit(load_config(_config(tmp_path, 1, optimizer="adam")), resume="none")
    groups = _Groups()
    with caplog.at_level(logging.WARNING, logger="trainer"):
        fit(load_config(_config(tmp_path, 2, optimizer="adamw", weight_decay=0.01)),
            resume="auto", callbacks=[groups])

    assert groups.seen
    for step in groups.seen:
        assert [g["decoupled_weight_decay"] for g in step] == [True, True, True]
        assert [g["weight_decay"] for g in step] == [0.0, 0.01, 0.0]
    assert "was trained with another train.optimizer (adam, now adamw), train.weight_decay " \
           "(0.0005, now 0.01); training goes on with the config's" in caplog.text


@pytest.mark.parametrize("before,after", [("sgd", "adam"), ("adamw", "sgd")])
def test_a_resume_with_another_kind_of_optimizer_is_refused_in_one_line(tmp_path, caplog,
                                                                        before, after):
    fit(load_config(_config(tmp_path, 1, optimizer=before)), resume="none")
    logs = tmp_path / "logs"
    kept = _md5s(logs)

    with caplog.at_level(logging.WARNING, logger="trainer"), \
            pytest.raises(CheckpointError) as refused:
        fit(load_config(_config(tmp_path, 2, optimizer=after)), resume="auto")

    # A change of the config, no damaged file: not passed over as one (every older checkpoint
    # of the run was trained with the same optimizer), never advised to go back to one.
    assert not isinstance(refused.value, UnusableCheckpointError)
    assert "no state to train on" not in caplog.text
    where = logs / "epoch_001.pt"
    assert error_text(refused.value) == (
        f"Error: cannot resume from {where}: it was trained with train.optimizer {before} and "
        f"the config says {after} (an optimizer's state does not carry over to another kind). "
        f"Resume with --set train.optimizer={before}, or start a new run that fine-tunes from "
        f"it: --resume none --set model.weights={where} --set train.out_dir=<a new folder> "
        f"(and drive.logs=<a new Drive folder> where it is set)")
    assert _md5s(logs) == kept


def test_a_checkpoint_whose_config_names_no_optimizer_is_told_by_its_optimizer_state(tmp_path):
    """A checkpoint written by hand (or by a trainer before train.optimizer) whose config does
    not name its optimizer: its optimizer state says the kind (SGD's groups keep a momentum
    and no betas; Adam's their betas)."""
    fit(load_config(_config(tmp_path, 1)), resume="none")
    import torch

    path = tmp_path / "mine.pt"
    state = torch.load(tmp_path / "logs" / "epoch_001.pt", map_location="cpu", weights_only=False)
    del state["config"]["train"]["optimizer"]
    torch.save(state, path)

    with pytest.raises(CheckpointError) as refused:
        fit(load_config(_config(tmp_path, 2, optimizer="adam", out_dir=str(tmp_path / "b"))),
            resume=str(path))
    assert f"cannot resume from {path}: it was trained with train.optimizer sgd and the config " \
           f"says adam" in str(refused.value)


def test_status_says_resume_auto_would_refuse_another_kind_of_optimizer(
        tmp_path, emulator, drive_env, local_state):
    """``trainer status`` said `--resume auto` went on from the run's newest; the machine
    started for it was refused at once."""
    from click.testing import CliRunner

    from trainer.cli import cli

    config = _config(tmp_path, 1, out_dir=str(tmp_path / "there"))
    cfg = load_config(config)
    cfg.drive.logs = "drive:runs/a"
    fit(cfg, resume="none")
    fresh = tmp_path / "fresh"
    common = ["status", "-c", config, "--set", "drive.logs=drive:runs/a",
              "--set", f"train.out_dir={fresh}"]
    assert len(CliRunner().invoke(cli, common).stdout.splitlines()) == 1   # as before

    res = CliRunner().invoke(cli, [*common, "--set", "train.optimizer=adam"])

    assert res.exit_code == 0, res.output
    where = "drive:runs/a/epoch_001.pt"
    assert res.stdout.splitlines()[1:] == [
        f"--resume auto would refuse: cannot resume from {where}: it was trained with "
        f"train.optimizer sgd and the config says adam (an optimizer's state does not carry "
        f"over to another kind). Resume with --set train.optimizer=sgd, or start a new run "
        f"that fine-tunes from it: --resume none --set model.weights={where} --set "
        f"train.out_dir=<a new folder> (and drive.logs=<a new Drive folder> where it is set)"]
    # The kind it was trained with: nothing more to say.
    res = CliRunner().invoke(cli, [*common, "--set", "train.optimizer=sgd"])
    assert len(res.stdout.splitlines()) == 1
    assert not fresh.exists()


def test_the_optimizer_state_itself_says_the_kind_where_the_config_in_it_says_another(tmp_path):
    """A hand-made checkpoint: an Adam state under a config that says sgd. What loads depends
    on the state: refused as Adam's for an SGD run (it trained on with Adam's groups, whose
    first SGD step ended in ``KeyError: 'momentum'``)."""
    fit(load_config(_config(tmp_path, 1, optimizer="adam")), resume="none")
    import torch

    path = tmp_path / "mine.pt"
    state = torch.load(tmp_path / "logs" / "epoch_001.pt", map_location="cpu", weights_only=False)
    state["config"]["train"]["optimizer"] = "sgd"
    torch.save(state, path)

    with pytest.raises(CheckpointError) as refused:
        fit(load_config(_config(tmp_path, 2, out_dir=str(tmp_path / "b"))), resume=str(path))
    assert f"cannot resume from {path}: it was trained with train.optimizer adam and the " \
           f"config says sgd" in str(refused.value)
