"""attacktrain36: a stop before the first step of a *resumed* run (the image the resumed
batch reads is damaged; a DataLoader worker killed at once) said "before the first step:
nothing was trained, nothing is saved", the words of a new run: read as the progress lost
(and a new run started over it), while the checkpoint resumed from holds the run's state and
--resume auto goes on from it. The line names it now; a new run's line is as before."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from test_trainfault36_bad_image import _config, _damage, _dataset, _image_of_step
from trainer.callbacks import Callback
from trainer.config import load_config
from trainer.engine import fit
from trainer.errors import TrainingInterrupted


class _StopAt(Callback):
    """A SIGTERM's stop asked after ``iteration`` (its save: autosave_<iteration>.pt)."""

    def __init__(self, iteration: int) -> None:
        self.iteration = iteration

    def on_train_batch_end(self, run, pos, logs) -> None:
        if pos.iteration == self.iteration:
            run.stop.request(signal.SIGTERM)


def test_a_resumed_runs_stop_before_its_first_step_names_the_checkpoint_it_holds(
        tmp_path, one_torch_thread):
    synth = _dataset(tmp_path)
    with pytest.raises(TrainingInterrupted):
        fit(load_config(_config(tmp_path, synth)), resume="none", callbacks=[_StopAt(2)])
    bad = _image_of_step(synth, 3)
    good = _damage(bad)

    with pytest.raises(TrainingInterrupted) as stopped:
        fit(load_config(_config(tmp_path, synth)), resume="auto")

    assert str(stopped.value).startswith(
        f"stopped by an unreadable image before the first step since its resume from "
        f"autosave_00000002.pt at epoch 1, iteration 2: nothing was trained since, and "
        f"autosave_00000002.pt holds the run's state still (cannot read image {bad}: "), \
        str(stopped.value)
    assert stopped.value.exit_code == 1
    logs = tmp_path / "logs"
    assert sorted(n for n in os.listdir(logs) if n.endswith(".pt")) == ["autosave_00000002.pt"]
    Path(bad).write_bytes(good)
    result = fit(load_config(_config(tmp_path, synth)), resume="auto")
    assert os.path.basename(result.resumed_from) == "autosave_00000002.pt"
