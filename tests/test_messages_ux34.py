"""ux34: a new Colab/Kaggle user following README.md and docs/ literally against the
emulator, making the mistakes such a user makes; each message below was unclear, wrong or
noise before (one line naming the thing and what to do is the rule)."""
from __future__ import annotations

import logging

from click.testing import CliRunner

from _messages import error_line, renders, shown


# ------------------------------------------ no word of an old weights folder that is not there

def test_a_fresh_start_with_drive_weights_says_nothing_of_an_old_weights_folder(
        emulator, local_state, drive_env, tiny_config, tmp_path, caplog):
    """`model.weights: drive:…` on a fresh data.root logged, twice a start,
    `left ./data/demo/weights as it is: [Errno 2] No such file or directory: …`: the
    look for a copy an older version pulled (there is none) read as a failure."""
    from trainer.config import load_config
    from trainer.staging import local_weights, stage_data

    emulator.add_file("Models/pre/w.pth", b"weights")
    cfg = load_config(tiny_config(**{"model.weights": "drive:Models/pre/w.pth"}))
    with caplog.at_level(logging.INFO, logger="trainer"):
        stage_data(cfg)
        local_weights(cfg.model.weights, cfg)
    said = [r.getMessage() for r in caplog.records if r.name == "trainer.derived"]
    assert said == []
    assert not (tmp_path / "data" / "weights").exists()
