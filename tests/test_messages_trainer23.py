"""trainer23's messages (docs/troubleshooting.md), each made to happen by the real code."""
from __future__ import annotations

import logging

import pytest

from _messages import renders
from test_trainer22_hostile import _nan_model, _small_run
from test_trainer23_fallback import _choose, _save, _warnings


@renders("is no state to train on (…); it is kept as it is, and --resume auto tries the next "
         "older checkpoint",
         "--resume auto found no state to train on in the … newest checkpoints of")
def test_the_fallback_messages(tiny_config, tmp_path, caplog):
    """The warning as logged, and the refusal as the CLI prints it."""
    from _messages import error_text, shown
    from trainer.errors import CheckpointError

    logs = tmp_path / "logs"
    run = _small_run(tiny_config, logs)
    _save(run, logs, "epoch_001.pt", 1, 1000.0)
    _save(run, logs, "epoch_002.pt", 2, 2000.0, _nan_model)
    with caplog.at_level(logging.WARNING):
        _choose(logs, "auto", run)
    shown("is no state to train on (…); it is kept as it is, and --resume auto tries the next "
          "older checkpoint", _warnings(caplog)[0])
    for epoch in (3, 4, 5):
        _save(run, logs, f"epoch_{epoch:03d}.pt", epoch, 2000.0 + epoch, _nan_model)
    with pytest.raises(CheckpointError) as refused:
        _choose(logs, "auto", run)
    line = error_text(refused.value)       # as the CLI prints it
    assert "epoch_005.pt (its model weights hold NaN" in line and "epoch_001" not in line
    shown("--resume auto found no state to train on in the … newest checkpoints of", line)
