"""attackload37: loadfail37's rule (a file whose bytes its sidecar vouches for that does not
load here stops ``--resume auto``; never an older one) does not reach the copy of the run's
state an earlier stop kept in /tmp (grace32: auto goes on from it when it is further on).
``trainer.kept_copies._usable`` catches every Exception, LoadFailedError among them: the
furthest state is passed over with a warning, auto goes on from the run folder's older
checkpoint, and the sweep removes the copy once the run gets past it (the loss loadfail37
fixed for the run folder, slower). The copy here: a newer torch's zip format, its sidecar
vouching for it (test_loadfail37_find's), as the trainer's own save would write it."""
from __future__ import annotations

import os

import pytest

from _tempdir import own_tempdir  # noqa: F401  (an autouse fixture)
from test_grace32_kept_copies import RUN, _choose, _kept, _state
from test_loadfail37_find import _newer_torch_format
from trainer import checkpoint as ckpt
from trainer.config import load_config
from trainer.errors import LoadFailedError


def test_a_kept_copy_that_does_not_load_here_stops_auto(tiny_config, own_tempdir):
    cfg = load_config(tiny_config(**{"train.epochs": 3}))
    os.makedirs(cfg.train.out_dir)
    ckpt.save_checkpoint(_state(RUN, 0, 2, 2),
                         os.path.join(cfg.train.out_dir, "autosave_00000002.pt"), saved=1000.0)
    kept = _kept(own_tempdir, "trainer-stop-a1", RUN, 4, saved=2000.0)
    _newer_torch_format(kept)

    with pytest.raises(LoadFailedError) as stopped:
        _choose(cfg)

    assert stopped.value.path == kept
    assert os.path.isfile(kept)
