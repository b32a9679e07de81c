"""One size rule: KB/MB/GB/TB decimal, KiB/MiB/GiB/TiB and bare K/M/G/T binary, everywhere."""
from __future__ import annotations

import pytest

from drivestage.errors import PolicyError
from drivestage.sizes import format_size, parse_size


@pytest.mark.parametrize("text,value", [
    ("0", 0), ("1024", 1024), (4096, 4096), ("7B", 7),
    ("5KB", 5 * 10**3), ("5MB", 5 * 10**6), ("5GB", 5 * 10**9), ("5TB", 5 * 10**12),
    ("5KiB", 5 * 2**10), ("5MiB", 5 * 2**20), ("5GiB", 5 * 2**30), ("5TiB", 5 * 2**40),
    ("5K", 5 * 2**10), ("500M", 500 * 2**20), ("2G", 2 * 2**30), ("1T", 2**40),
    ("10k", 10240), ("1.5GiB", int(1.5 * 2**30)), ("2.5 gb", int(2.5e9)), (" 3 mib ", 3 * 2**20),
])
def test_the_rule(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["lots", "5XB", "", "1e9", "-5GB", "5 G B", True])
def test_bad_sizes_name_the_value_and_the_units(text):
    with pytest.raises(PolicyError) as info:
        parse_size(text)
    assert repr(text) in str(info.value)
    if not isinstance(text, bool):
        assert "10GB (decimal)" in str(info.value) and "10GiB, 10G (binary)" in str(info.value)


def test_format_size():
    assert [format_size(n) for n in (None, 0, 1023, 1536, 5 * 2**30, 3 * 2**40)] == \
        ["?", "0 B", "1023 B", "1.5 KiB", "5.0 GiB", "3.0 TiB"]


@pytest.mark.parametrize("text", ["5GB", "5GiB", "5G", "750MB", "1.5TB", "123456"])
def test_pull_reserve_push_max_bytes_and_trainer_max_bytes_agree(text, tmp_path):
    """The three places users type a size read it the same way."""
    from drivestage.cli import cli
    from drivestage.cli.push import _policy

    reserve = next(p for p in cli.commands["pull"].params if p.name == "reserve")
    pulled = reserve.type.convert(text, reserve, None)
    pushed = _policy({"max_bytes": text}).max_bytes

    from trainer.config import load_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"drive:\n  max_bytes: '{text}'\n")
    trained = load_config(str(cfg)).drive.max_bytes
    assert pulled == pushed == trained == parse_size(text)


def test_the_rule_is_in_the_help_of_every_size_option():
    from click.testing import CliRunner

    from drivestage.cli import cli

    for command, option in (("pull", "--reserve"), ("push", "--max-bytes"),
                            ("mirror", "--max-bytes"), ("prune", "--max-bytes")):
        out = CliRunner().invoke(cli, [command, "--help"], terminal_width=200).output
        # The option's own entry, in the options list (the command's text may name it too).
        line = " ".join(out.split("Options:", 1)[1].split(option, 1)[1].split("--", 1)[0].split())
        assert "KB/MB/GB are powers of 1000; KiB/MiB/GiB and K/M/G powers of 1024" in line, \
            (command, line)
