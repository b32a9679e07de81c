"""ux35: config values a new user mistypes, refused at load in one line naming the key and
what it takes, exit 2: a NUL byte in a string (YAML's "\\0": each path key ended in
`ValueError: embedded null byte`, a traceback), `data.workers: 10000` (taken; the loader
died starting them), `model.input_size: 100000` or `4160` (taken)."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from trainer.cli import cli


def _train(*args: str):
    return CliRunner().invoke(cli, ["train", *args])


@pytest.mark.parametrize("key", ["data.root", "train.out_dir", "drive.logs", "data.classes",
                                 "model.weights", "data.drive_zip", "data.voc_root"])
def test_a_nul_byte_in_a_yaml_value_is_one_line_exit_2(key, tiny_config, tmp_path):
    section, name = key.split(".")
    path = tmp_path / "nul.yaml"
    path.write_text(f'{section}:\n  {name}: "{tmp_path}/a\\0b"\n')
    res = _train("-c", str(path))
    assert res.exit_code == 2, res.stderr
    at = len(str(tmp_path)) + 3
    assert res.stderr == (f"Error: config key '{key}' in {path} holds a NUL byte (\\0, character "
                          f"{at}): no path or name can; remove it\n")


def test_a_nul_byte_through_set_and_in_a_class_name_is_refused(tiny_config):
    res = _train("-c", tiny_config(), "--set", 'train.out_dir="logs\\0"')
    assert res.exit_code == 2, res.stderr
    assert res.stderr == ("Error: config key 'train.out_dir' (--set) holds a NUL byte (\\0, "
                          "character 5): no path or name can; remove it\n")
    res = _train("-c", tiny_config(), "--set", 'data.classes=[cat, "d\\0g"]')
    assert res.exit_code == 2, res.stderr
    assert "config key 'data.classes' (--set) holds a NUL byte" in res.stderr


@pytest.mark.parametrize("size, tail", [
    (0, ""), (31, ""), (100000, ""), (4160, ""), (-32, ""), (430, ": use 416 or 448")])
def test_an_input_size_off_the_network_s_range_names_it(size, tail, tiny_config):
    res = _train("-c", tiny_config(**{"model.input_size": size}))
    assert res.exit_code == 2, res.stderr
    assert res.stderr == ("Error: model.input_size must be a multiple of 32 from 32 to 4096 "
                          f"(YOLOv4-tiny's coarsest head has stride 32), got {size}{tail}\n")


def test_the_bounds_of_input_size_are_taken():
    from trainer.config import load_config

    assert load_config(None, ["model.input_size=32"]).model.input_size == 32
    assert load_config(None, ["model.input_size=4096"]).model.input_size == 4096


def test_predict_refuses_an_input_size_past_the_range(tmp_path):
    (tmp_path / "w.pt").write_bytes(b"w")
    res = CliRunner().invoke(cli, ["predict", "--weights", str(tmp_path / "w.pt"),
                                   "--input-size", "100000", str(tmp_path)])
    assert res.exit_code == 2
    assert "'--input-size': 100000 is not in the range 32<=x<=4096." in res.stderr


def test_data_workers_past_64_is_refused(tiny_config):
    res = _train("-c", tiny_config(**{"data.workers": 10000}))
    assert res.exit_code == 2, res.stderr
    assert res.stderr == ("Error: data.workers must be from 0 to 64 (loader processes; 0 = load "
                          "in the main process), got 10000\n")
    from trainer.config import load_config

    assert load_config(None, ["data.workers=64"]).data.workers == 64


def test_a_nul_byte_in_an_argument_is_one_line_exit_2(tmp_path):
    """A program running the commands in its own process (a notebook's `cli.main([...])`)
    may pass one (a shell cannot): `ValueError: embedded null byte`, a traceback."""
    from drivestage.cli import cli as drivestage_cli

    res = CliRunner().invoke(drivestage_cli, ["pull", "drive:data", f"{tmp_path}/o\0x"])
    assert res.exit_code == 2
    assert res.stderr == (f"Error: the argument '{tmp_path}/o\\x00x' holds a NUL byte (\\0): "
                          "no path or name can; remove it\n")
    assert list(tmp_path.iterdir()) == []
    res = CliRunner().invoke(cli, ["train", "-c", f"{tmp_path}/c\0.yaml"])
    assert res.exit_code == 2
    assert res.stderr == (f"Error: the argument '{tmp_path}/c\\x00.yaml' holds a NUL byte "
                          "(\\0): no path or name can; remove it\n")


# ----------------------------------- a config written as a new user writes one (tabs, Windows)

def _refusal(tmp_path, text: str) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    res = _train("-c", str(path))
    assert res.exit_code == 2, res.stderr
    return res.stderr.replace(str(path), "c.yaml")


def test_a_tab_in_the_config_is_named_as_a_tab(tmp_path):
    assert _refusal(tmp_path, "data:\n\troot: ./data\n") == (
        "Error: config c.yaml is not valid YAML: line 2, column 1: found character '\\t' that "
        "cannot start any token (while scanning for the next token); YAML takes no tab there "
        "(it indents with spaces): replace it with spaces; fix the file there\n")


def test_a_windows_path_in_double_quotes_says_how_to_quote_it(tmp_path):
    said = _refusal(tmp_path, 'data:\n  root: "C:\\Users\\me\\data"\n')
    assert said.startswith("Error: config c.yaml is not valid YAML: line 2, column 14: ")
    assert said.endswith("; in double quotes \\ starts an escape: write a path in 'single "
                         "quotes'; fix the file there\n")


def test_a_windows_path_is_refused_before_a_folder_of_its_name_is_made(tmp_path, monkeypatch):
    """`root: C:\\Users\\me\\data` was a relative path on Linux: a folder of that name in the
    working folder, the data never found there."""
    monkeypatch.chdir(tmp_path)
    assert _refusal(tmp_path, "train:\n  out_dir: C:\\Users\\me\\logs\n") == (
        "Error: config key 'train.out_dir' in c.yaml is a Windows path (C:\\Users\\me\\logs), "
        "and this machine's paths are written /content/data or ./data: give one of this "
        "machine's\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


def test_a_lone_tilde_for_a_path_says_yaml_read_no_value(tmp_path):
    assert _refusal(tmp_path, "data:\n  root: ~\n") == (
        "Error: config key 'data.root' in c.yaml has no value (YAML reads an empty value, null "
        "and a lone ~ as none); give a path, e.g. ./data (~/data: in the home folder)\n")
    from trainer.config import load_config

    assert load_config(None, ["data.voc_root=~"]).data.voc_root is None   # (optional: none)
