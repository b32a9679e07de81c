"""attacktrain34: config values the checks let through, which failed later in a traceback or
under another name.

* ``train.seed: -1`` started the run (the dataset staged, the model built) and ended at the
  first batch in a DataLoader worker's traceback (numpy's ``SeedSequence``: "expected
  non-negative integer"); a seed past 2**64 - 1 in ``torch.manual_seed``'s ("Overflow when
  unpacking long long").
* ``data.max_val_images: -3`` took the last three validation lines off (a slice), and with
  few of them said "the dataset has no annotation lines; check the annotation file".
* ``train.out_dir: ''`` was ``os.makedirs('')``'s traceback (`No such file or directory:
  ''`).

Each is refused in one line naming the key, exit 2, before anything is staged."""
from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from trainer.cli import cli
from trainer.config import load_config
from trainer.errors import ConfigError


@pytest.mark.parametrize("key, value, line", [
    ("train.seed", -1, "train.seed must be between 0 and 2**64 - 1, got -1"),
    ("train.seed", 2**64, f"train.seed must be between 0 and 2**64 - 1, got {2**64}"),
    ("data.max_val_images", -3, "data.max_val_images must be >= 0 (0 = all), got -3"),
    ("train.out_dir", "", "train.out_dir must name a folder, got ''"),
])
def test_a_value_that_failed_later_is_refused_with_its_key(tiny_config, key, value, line):
    path = tiny_config(**{key: value})
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == line


def test_the_cli_refuses_a_negative_seed_in_one_line_before_staging(tiny_config, tmp_path):
    path = tiny_config(**{"train.seed": -1, "data.workers": 1})
    r = CliRunner().invoke(cli, ["train", "-c", path])
    assert r.exit_code == 2, (r.output, r.exception)
    assert r.stderr.strip().splitlines()[-1] == (
        "Error: train.seed must be between 0 and 2**64 - 1, got -1")
    assert "Traceback" not in r.output
    assert not (tmp_path / "data").exists() and not (tmp_path / "logs").exists()
    # (The bounds themselves train: 0 and 2**64 - 1 are seeds torch and numpy take.)
    for seed in (0, 2**64 - 1):
        assert load_config(tiny_config(**{"train.seed": seed})).train.seed == seed
    assert yaml.safe_load(open(path))["train"]["seed"] == -1
