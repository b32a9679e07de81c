"""The troubleshooting page's trainfault36 messages, made to happen (tests/_messages.py):
an unreadable image met mid-epoch, and a mid-epoch resume from another training list."""
from __future__ import annotations

import pytest

from _messages import error_text, renders, shown
from test_trainfault36_bad_image import _config, _damage, _dataset, _image_of_step
from test_trainfault36_dataset_change import _drop_line, _setup, _stopped_at
from trainer.config import load_config
from trainer.engine import fit
from trainer.errors import CheckpointError, TrainingInterrupted

UNREADABLE = ("stopped by an unreadable image at …: replace that file with a readable copy "
              "before you resume")
CHANGED = ("cannot resume from … in the middle of epoch …: the training list (data.train) "
           "changed since it was saved")


@renders(UNREADABLE)
def test_an_unreadable_image_mid_epoch(tmp_path, one_torch_thread):
    synth = _dataset(tmp_path)
    _damage(_image_of_step(synth, 2))
    with pytest.raises(TrainingInterrupted) as stopped:
        fit(load_config(_config(tmp_path, synth)), resume="none")
    shown(UNREADABLE, error_text(stopped.value))


@renders(CHANGED)
def test_a_mid_epoch_resume_from_another_list(tmp_path, one_torch_thread):
    synth = _setup(tmp_path)
    config = _stopped_at(tmp_path, synth, 2)
    _drop_line(synth.train_lines_file)
    with pytest.raises(CheckpointError) as refused:
        fit(load_config(config), resume="auto")
    shown(CHANGED, error_text(refused.value))
