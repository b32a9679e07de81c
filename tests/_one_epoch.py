"""The finished one-epoch run the trainer's resume tests start from (tests/test_resume.py's
``ONE``, the same shared run): trained once a session by :func:`_once.shared_run`. A module
takes the fixture by importing it (``from _one_epoch import one_epoch  # noqa: F401``)."""
from __future__ import annotations

import pytest

from _once import shared_run

#: The run's settings over the tiny config: one epoch, nothing frozen.
ONE = {"train.epochs": 1, "train.freeze_epochs": 0}


@pytest.fixture(scope="module")
def one_epoch(synth_voc, tmp_path_factory):
    """A finished run of one epoch (test_resume.py's, shared): its folder (copy it first)."""
    return shared_run(synth_voc, tmp_path_factory, "tiny-one-epoch", ONE)[0]
