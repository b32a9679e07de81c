"""attackt31: a resume whose checkpoint was trained on other data classes.

The refusal's advice ("start a new run that fine-tunes from it: --resume none --set
model.weights=…", "Use --resume none with model.weights=… to fine-tune from it") was refused
in turn when followed: the run folder (and drive.logs) already holds that run's checkpoints,
which a new run there would mix with ("… already holds checkpoints of run …"). The advice now
names the new folders the new run needs, and followed, it trains."""
from __future__ import annotations

import os
import re
import shlex

import pytest

from trainer.config import load_config
from trainer.engine import fit
from trainer.errors import CheckpointError


def test_a_resume_refused_for_other_classes_advises_a_fine_tune_that_starts(
        tiny_config, synth_voc, one_torch_thread, tmp_path):
    names = synth_voc.classes_file.read_text().split()
    base = {"train.epochs": 1, "train.freeze_epochs": 0, "data.max_val_images": 2}
    fit(load_config(tiny_config(**base)), resume="none")
    saved = os.path.join(str(tmp_path / "logs"), "epoch_001.pt")
    advice = f"--resume none --set model.weights={saved} --set train.out_dir=<a new folder>"

    for other in ([*names, "extra"], names[::-1]):   # (another count: the shape; the order)
        config = tiny_config(**base, **{"data.classes": other})
        with pytest.raises(CheckpointError) as refused:
            fit(load_config(config), resume="auto")
        text = str(refused.value)
        assert text.startswith(f"cannot resume from {saved}: "), text
        assert text.endswith(f"{advice} (and drive.logs=<a new Drive folder> where it is set)"), \
            text

    # Followed (a new folder given): the new run starts from those weights and trains.
    args = shlex.split(re.sub(r"<a new folder>", str(tmp_path / "tuned"), advice))
    sets = dict(a.split("=", 1) for a in args[3::2])
    cfg = load_config(config)
    cfg.model.weights, cfg.train.out_dir = sets["model.weights"], sets["train.out_dir"]
    result = fit(cfg, resume=args[1])
    assert result.resumed_from is None and os.path.isfile(tmp_path / "tuned" / "epoch_001.pt")
