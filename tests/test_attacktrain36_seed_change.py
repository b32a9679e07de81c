"""attacktrain36: train.seed changed between a save in the middle of an epoch and its resume.
The epoch's order is drawn from (train.seed, epoch) over the list (trainer.data.sampler): the
resume skipped the checkpoint's count of samples in another order, so the rest of that epoch
trained some samples twice and left others out, as a changed training list did (trainfault36
refuses that); the seed was only warned of as a watched key. Refused the same way now, unless
data.allow_change; at an epoch's end (the next order is drawn afresh) the warning stays."""
from __future__ import annotations

import logging
import os

import pytest

from _messages import error_text
from test_trainfault36_dataset_change import _config, _setup, _stopped_at
from trainer.config import load_config
from trainer.engine import fit
from trainer.errors import CheckpointError


def _with_seed(tmp_path, synth, seed: int, **more):
    return load_config(_config(tmp_path, synth.train_lines_file, synth.val_lines_file,
                               synth.classes_file, **{"train.seed": seed, **more}))


def test_a_mid_epoch_resume_with_another_seed_is_refused(tmp_path, one_torch_thread):
    synth = _setup(tmp_path)
    _stopped_at(tmp_path, synth, 2)   # (train.seed 11, the default)

    with pytest.raises(CheckpointError) as refused:
        fit(_with_seed(tmp_path, synth, 12), resume="auto")

    saved = tmp_path / "logs" / "autosave_00000002.pt"
    assert error_text(refused.value) == (
        f"Error: cannot resume from {saved} in the middle of epoch 1: train.seed changed since "
        f"it was saved (11 then, 12 now), and the rest of that epoch would be drawn in another "
        f"order (samples trained twice, others left out); put train.seed back as it was, or "
        f"resume with --set data.allow_change=true to go on with the new order")
    assert refused.value.exit_code == 1


def test_data_allow_change_goes_on_with_the_new_seeds_order(tmp_path, one_torch_thread, caplog):
    synth = _setup(tmp_path)
    _stopped_at(tmp_path, synth, 2)
    cfg = _with_seed(tmp_path, synth, 12)
    cfg.data.allow_change = True

    with caplog.at_level(logging.WARNING, logger="trainer"):
        result = fit(cfg, resume="auto")

    assert os.path.basename(result.resumed_from) == "autosave_00000002.pt"
    saved = tmp_path / "logs" / "autosave_00000002.pt"
    assert f"{saved} was saved in the middle of epoch 1 with train.seed 11: data.allow_change " \
        f"is set, so the rest of that epoch is drawn in the order of train.seed 12" in \
        [r.getMessage() for r in caplog.records]


def test_another_seed_at_an_epochs_end_is_a_warning(tmp_path, one_torch_thread, caplog):
    synth = _setup(tmp_path)
    fit(_with_seed(tmp_path, synth, 11, **{"train.epochs": 1}), resume="none")

    with caplog.at_level(logging.WARNING, logger="trainer"):
        result = fit(_with_seed(tmp_path, synth, 12), resume="auto")

    assert result.epochs_run == 1
    assert any("train.seed (11, now 12)" in r.getMessage() for r in caplog.records)
