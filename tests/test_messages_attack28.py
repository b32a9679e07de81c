"""A checkpoint whose bookkeeping lies (attack28): a real trained checkpoint, its tensors
intact, with a position, a history or an epoch meter that this trainer never writes (a
damaged file, another program's, one edited by hand), and a sidecar vouching for it.

``--resume PATH`` stopped in a traceback far from the file (the sampler's ``start must be
>= 0, got -50`` for a meter's ``samples`` of -50, ``'int' object is not iterable`` for a
history of a number, ``'>' not supported between instances of 'str' and 'int'`` for a format
version as a string); now one line naming the file and the field, exit 1, before a step is
trained; ``--resume auto`` passes over it as over any unreadable checkpoint."""
from __future__ import annotations

import hashlib
import os

import pytest
import torch

from _messages import renders, shown
from test_messages_train import trainer
from test_trainer22_hostile import _config, _hostile, trained  # noqa: F401 (a fixture)

HEADING = "which no checkpoint of this trainer holds (a damaged file, or another program's)"

#: What a checkpoint's bookkeeping is changed to, and the ``field = value`` its refusal names.
LIES = [
    ({"epoch": 0, "epoch_iteration": 1, "epoch_meter": {"samples": -50, "steps": 1}},
     "epoch_meter.samples = -50"),
    ({"epoch": 0, "epoch_iteration": 1, "epoch_meter": {"samples": "many"}},
     "epoch_meter.samples = 'many'"),
    ({"epoch": 0, "epoch_iteration": 1, "epoch_meter": {"samples": 3, "bogus": 1}},
     "epoch_meter.'bogus'"),
    ({"epoch_meter": [1, 2]}, "epoch_meter = [1, 2]"),
    ({"history": 5}, "history = 5"),
    ({"history": [1, 2]}, "history = [1, 2]"),
    ({"format_version": "2"}, "format_version = '2'"),
    ({"iteration": -5}, "iteration = -5"),
    ({"epoch_iteration": -4}, "epoch_iteration = -4"),
    ({"best_map50": "high"}, "best_map50 = 'high'"),
]


def _md5s(folder) -> dict:
    return {n: hashlib.md5(open(os.path.join(folder, n), "rb").read()).hexdigest()
            for n in sorted(os.listdir(folder))}


@renders(HEADING)
@pytest.mark.parametrize("lie,field", LIES, ids=[f for _, f in LIES])
def test_resume_from_a_checkpoint_whose_bookkeeping_lies(tiny_config, tmp_path, trained, lie,
                                                         field):
    logs = tmp_path / "logs"
    _hostile(trained, logs, lambda state: state.update(lie))
    path = logs / "epoch_001.pt"
    before = _md5s(logs)
    code, line = trainer("train", "-c", tiny_config(**{"train.out_dir": str(logs)}),
                         "--resume", str(path))
    assert (code, line) == (1, f"Error: {path} holds {field}, {HEADING}: resume from another")
    assert _md5s(logs) == before   # nothing trained, nothing rewritten
    shown(HEADING, line)


def test_resume_auto_passes_over_a_lying_checkpoint_to_the_one_before(tiny_config, tmp_path,
                                                                     trained):
    """The newest checkpoint lies (a meter's samples of -50 in the middle of epoch 2): the
    run goes on from the sound one before it (epoch 1) instead of stopping in a traceback."""
    from trainer import checkpoint as ckpt
    from trainer.engine import fit

    logs = tmp_path / "logs"
    _hostile(trained, logs, lambda state: None)   # epoch_001.pt, sound
    state = torch.load(trained, weights_only=True)
    state.update(epoch=1, iteration=3, epoch_iteration=1,
                 epoch_meter={"samples": -50, "steps": 1})
    ckpt.save_checkpoint(state, str(logs / "autosave_00000003.pt"))
    fit(_config(tiny_config, logs), resume="auto")
    assert ckpt.read_sidecar(str(logs / "epoch_002.pt")).epoch == 2
