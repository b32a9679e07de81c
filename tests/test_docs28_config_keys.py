"""Every config key docs/config.md documents does what it says (found by docs28).

``train.log_period`` ("log a progress line every this many iterations") had been read by
nothing since the engine was split: `--set train.log_period=2` printed no line at all.
"""
from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")

_LINE = re.compile(r"^INFO trainer\.callbacks: epoch (\d+)/\d+ iteration (\d+) \((\d+) in the epoch\): "
                   r"loss \d+\.\d{4}, lr [0-9.e+-]+, \d+\.\d img/s$", re.M)
_STEP = re.compile(r"epoch (\d+)/\d+ iter (\d+)/\d+ \(iteration (\d+)\)")


def _train(config: str, *sets: str) -> str:
    """``trainer -v train`` as a user runs it, in this process (no second process: the
    defect is in what the run logs, and a child's imports were half of each test); its
    stderr read as text, as a child's with ``text=True`` (universal newlines: a bar's
    ``\r`` ends a line). Not against a Drive."""
    from click.testing import CliRunner

    from trainer.cli import cli

    args = ["-v", "train", "-c", config, *[a for s in sets for a in ("--set", s)]]
    env = {"DRIVESTAGE_API_ROOT": None}   # (CliRunner unsets it for the run)
    res = CliRunner().invoke(cli, args, env=env, catch_exceptions=False)
    assert res.exit_code == 0, res.stderr[-3000:]
    return res.stderr.replace("\r\n", "\n").replace("\r", "\n")


def test_log_period_prints_a_progress_line_every_that_many_iterations(tiny_config):
    err = _train(tiny_config(**{"train.epochs": 2, "train.freeze_epochs": 1}),
                 "train.log_period=2")
    steps = {int(m.group(3)): (int(m.group(1)), int(m.group(2)))   # every step, at debug level
             for m in _STEP.finditer(err)}
    assert sorted(steps) == list(range(1, len(steps) + 1)) and len(steps) >= 4
    logged = {int(m.group(2)): (int(m.group(1)), int(m.group(3))) for m in _LINE.finditer(err)}
    assert logged == {i: where for i, where in steps.items() if i % 2 == 0}, err[-3000:]


def test_log_period_0_the_default_prints_no_such_line(tiny_config):
    err = _train(tiny_config(**{"train.epochs": 1, "train.freeze_epochs": 0}))
    assert _STEP.search(err)
    assert not _LINE.search(err)
