"""attacktrain35: a config that gives a key twice in one mapping. YAML (PyYAML) keeps the later
one whole, without a word: a ``train:`` section added at the end of the file to change the
epochs (``train: {epochs: 3}``) dropped every key of the first one (``out_dir``, ``lr``,
``batch_size``, ``device`` back to their defaults: the run's checkpoints in ``logs/``, not the
folder the file names), and ``epochs: 2`` then ``epochs: 50`` in one section trained 50. Keys
must be unique in a YAML mapping: such a file is refused in one line naming both places,
exit 2, before anything is staged."""
from __future__ import annotations

import glob
import os

import pytest
from click.testing import CliRunner

from trainer.cli import cli
from trainer.config import load_config
from trainer.errors import ConfigError


def test_a_second_section_is_refused_naming_both(tiny_config, tmp_path):
    path = tiny_config()
    with open(path, "a") as f:
        f.write("train: {epochs: 3}\n")
    lines = open(path).read().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("train:")) + 1
    r = CliRunner().invoke(cli, ["train", "-c", path])
    assert r.exit_code == 2, (r.output, r.exception)
    assert r.stderr.strip().splitlines()[-1] == (
        f"Error: config {path} is not valid YAML: line {len(lines)}, column 1: the key 'train' "
        f"is given twice in one mapping (first at line {first}), and YAML would keep only the "
        f"later one; fix the file there")
    assert not (tmp_path / "data").exists() and not (tmp_path / "logs").exists()


def test_a_key_twice_in_a_section_is_refused(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("train:\n  epochs: 2\n  lr: 0.01\n  epochs: 50\n")
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    assert str(caught.value) == (
        f"config {path} is not valid YAML: line 4, column 3: the key 'epochs' is given twice in "
        f"one mapping (first at line 2), and YAML would keep only the later one; fix the file "
        f"there")


def test_merge_keys_and_the_same_key_in_other_mappings_still_load(tmp_path):
    path = tmp_path / "merged.yaml"
    # (A key given beside a merge replaces the merged one: YAML's rule, not a key twice.)
    path.write_text("train:\n  <<: {epochs: 2, freeze_epochs: 0, lr: 0.02}\n  epochs: 5\n"
                    "drive: {keep_last: 2, keep_best: 1}\nmodel: {input_size: 64}\n")
    cfg = load_config(str(path))
    assert (cfg.train.epochs, cfg.train.lr, cfg.drive.keep_last) == (5, 0.02, 2)


def test_the_shipped_configs_have_no_key_twice():
    root = os.path.join(os.path.dirname(__file__), "..", "configs")
    paths = sorted(glob.glob(os.path.join(root, "*.yaml")))
    assert paths
    for path in paths:
        load_config(path)
