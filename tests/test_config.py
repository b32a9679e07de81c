"""Config: YAML onto typed dataclasses, typed overrides, misspelt keys named with a suggestion."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from trainer.cli import cli
from trainer.config import Config, describe_keys, dump_yaml, load_config, valid_keys
from trainer.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))

FIXED_KEYS = {
    "data.classes", "data.voc_root", "data.train", "data.val", "data.drive_zip", "model.input_size",
    "model.weights", "train.epochs", "train.freeze_epochs", "train.batch_size",
    "train.freeze_batch_size", "train.lr", "train.optimizer", "train.save_period",
    "train.eval_period", "train.out_dir", "drive.logs", "drive.keep_last", "drive.keep_best",
    "drive.max_bytes",
}


def test_the_issue_key_names_exist_and_every_key_has_a_description():
    assert FIXED_KEYS <= set(valid_keys())
    helps = describe_keys()
    assert set(helps) == set(valid_keys())
    assert all(h and "\n" not in h for h in helps.values())


def test_voc_yaml_reproduces_the_colab_recipe():
    cfg = load_config(str(ROOT / "configs" / "voc.yaml"))
    t = cfg.train
    assert (cfg.model.input_size, t.epochs, t.freeze_epochs) == (416, 100, 50)
    assert (t.freeze_batch_size, t.batch_size) == (32, 16)
    assert (t.optimizer, t.lr, t.min_lr_ratio, t.lr_schedule) == ("sgd", 0.01, 0.01, "cos")
    assert (t.momentum, t.weight_decay) == (0.937, 5e-4)
    assert (t.mosaic_prob, t.mixup_prob, t.special_aug_ratio) == (0.5, 0.5, 0.7)
    assert (t.save_period, t.eval_period) == (4, 10)
    assert 0 < t.save_minutes <= 10 and t.grace_seconds < 30   # a disconnect costs minutes, not epochs
    assert cfg.data.drive_zip == "drive:VOC_datasets/VOC07+12+test.zip"
    assert len(cfg.data.classes) == 20
    assert cfg.drive.logs.startswith("drive:") and (cfg.drive.keep_last, cfg.drive.keep_best) == (3, 1)


def test_demo_yaml_is_small_enough_for_a_cpu():
    cfg = load_config(str(ROOT / "configs" / "demo.yaml"))
    assert 160 <= cfg.model.input_size <= 224
    assert cfg.train.epochs <= 30


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_key_in_the_shipped_configs_carries_a_comment(path):
    section = None
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith(" "):
            section = line.split(":")[0]
            continue
        assert "#" in line, f"{path.name}:{number}: key without a comment: {line.strip()}"
        key = line.strip().split(":")[0]
        assert f"{section}.{key}" in valid_keys(), f"{path.name}:{number}: unknown key {key}"


def _write(tmp_path, text: str) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return str(path)


def test_misspelt_key_is_named_with_the_nearest_valid_key(tmp_path):
    path = _write(tmp_path, "train:\n  epoch: 10\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"unknown config key 'train.epoch' in {path}; did you mean 'train.epochs'?"


def test_misspelt_section_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config section 'trian'.*did you mean 'train'\?"):
        load_config(_write(tmp_path, "trian:\n  epochs: 10\n"))


def test_misspelt_override_is_named():
    with pytest.raises(ConfigError, match=r"'model.input_sise' \(--set\); did you mean 'model.input_size'\?"):
        load_config(None, ["model.input_sise=320"])


def test_overrides_are_typed():
    cfg = load_config(None, ["train.epochs=7", "train.freeze_epochs=2", "train.lr=1e-3",
                             "train.ema=false", "data.classes=[a, b]", "drive.logs=drive:M/logs",
                             "drive.max_bytes=2GB", "model.weights=null"])
    assert cfg.train.epochs == 7 and isinstance(cfg.train.epochs, int)
    assert cfg.train.lr == 0.001 and isinstance(cfg.train.lr, float)
    assert cfg.train.ema is False
    assert cfg.data.classes == ["a", "b"]
    assert cfg.drive.logs == "drive:M/logs"
    assert cfg.drive.max_bytes == 2_000_000_000
    assert cfg.model.weights is None


@pytest.mark.parametrize("override, message", [
    ("train.epochs=abc", "config key 'train.epochs' expects int, got 'abc'"),
    ("train.epochs=2.5", "config key 'train.epochs' expects int, got 2.5"),
    ("train.ema=maybe", "config key 'train.ema' expects bool, got 'maybe'"),
    ("train.optimizer=rmsprop", "config key 'train.optimizer' must be one of sgd, adam, adamw, got 'rmsprop'"),
    ("model.input_size=100", "model.input_size must be a multiple of 32 from 32 to 4096 "
                             "(YOLOv4-tiny's coarsest head has stride 32), got 100: use 96 or 128"),
    ("train.freeze_epochs=500", "train.freeze_epochs must be between 0 and train.epochs (100), got 500"),
    ("drive.max_bytes=lots", "drive.max_bytes: size 'lots' is not understood"),
    ("train.epochs", "override 'train.epochs' must look like key=value"),
    ("train.save_minutes=-1", "train.save_minutes must be >= 0 (0 = off), got -1.0"),
    ("train.grace_seconds=0", "train.grace_seconds must be > 0, got 0.0"),
])
def test_bad_values_are_refused_naming_the_key(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert str(err.value).startswith(message)


def test_dump_yaml_round_trips_and_comments_every_key(tmp_path):
    cfg = load_config(None, ["train.epochs=3", "train.freeze_epochs=1", "data.classes=[x]"])
    text = dump_yaml(cfg)
    assert all("  # " in line for line in text.splitlines() if line.startswith("  "))
    assert load_config(_write(tmp_path, text)) == cfg


def test_cli_bad_config_exits_2_naming_the_key(tmp_path):
    path = _write(tmp_path, "train:\n  epochs: 10\n  batch_sise: 4\n")
    res = CliRunner().invoke(cli, ["train", "--config", path])
    assert res.exit_code == 2
    assert f"Error: unknown config key 'train.batch_sise' in {path}; did you mean 'train.batch_size'?" in res.output


@pytest.mark.parametrize("value, shown", [(".nan", "nan"), (".inf", "inf"), ("-.inf", "-inf"),
                                          ("nan", "'nan'"), ("1e999", "'1e999'")])
def test_a_non_finite_float_is_one_line_and_exit_2(tmp_path, value, shown):
    path = _write(tmp_path, "train:\n  epochs: 1\n")
    res = CliRunner().invoke(cli, ["train", "--config", path, "--set", f"train.lr={value}"])
    assert res.exit_code == 2
    assert res.output == f"Error: config key 'train.lr' expects a finite number, got {shown}\n"
    assert res.exception is None or isinstance(res.exception, SystemExit)


def test_cli_missing_config_file_exits_2(tmp_path):
    res = CliRunner().invoke(cli, ["train", "--config", str(tmp_path / "nope.yaml")])
    assert res.exit_code == 2
    assert re.search(r"Error: config file not found: .*nope\.yaml", res.output)


def test_defaults_are_a_valid_config():
    assert isinstance(load_config(None), Config)
