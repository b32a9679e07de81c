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
