"""Two runs of other classes on one ``data.root`` never read each other's annotation lines
(attacknew33). A line's class numbers are its class list's; the trainer wrote every run's
lines of a split to one file, ``.drivestage-trainer/annotations/2007_train.txt``, and read
it back: a second run's write between the first's write and its read gave the first the
second's numbers, and it trained on them without a word. Each VOCdevkit and class list has
its own folder of lines now."""
from __future__ import annotations

import logging
import re

from test_trainfiles33_derived import CLASSES, _config


def test_a_run_of_other_classes_on_the_same_data_root_leaves_the_first_runs_lines(
        emulator, local_state, drive_env, synth_voc, tiny_config, caplog):
    from trainer.staging import stage_data

    emulator.add_file("VOC_datasets/VOC.zip", str(synth_voc.zip_path))
    with caplog.at_level(logging.INFO, logger="trainer"):
        first = stage_data(_config(tiny_config))
    read = re.search(r"train: this machine's annotation lines in (\S+)", caplog.text)
    assert read, caplog.text
    other = stage_data(_config(tiny_config, **{"data.classes": CLASSES[::-1]}))
    assert other.train_lines != first.train_lines   # (other class numbers)
    # What the first run reads back from its file, once the other run wrote its lines.
    with open(read.group(1), encoding="utf-8") as fh:
        assert fh.read().splitlines() == first.train_lines
