"""attack52: ``nan`` (and ``inf``) given to an option whose help shows a range.

click's ``FloatRange`` checks each bound with a comparison, and every comparison with nan is
false: ``--nms nan`` passed ``[0<=x<=1]``. ``trainer predict --nms nan`` kept every box (NMS
off: twice the detections of ``--nms 0.45`` on random weights here), ``--conf nan`` none, both
exit 0; ``prepare-voc --trainval-percent nan`` was exit 1 naming ``trainval_percent``;
``drivestage emulator --latency nan`` (or ``inf``) held every request for good,
``--idle-timeout nan`` dropped every connection (clients retried, then failed) and
``--upload-session-ttl nan`` forgot each upload session at once. Now each is a usage error,
exit 2, before anything is read or served."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)


def _usage_line(option: str, value: str, describe: str) -> str:
    return (f"Error: Invalid value for '{option}': {value} is not a finite number in the "
            f"range {describe}")


@pytest.mark.parametrize("option, value, describe", [
    ("--conf", "nan", "0<=x<=1"),
    ("--nms", "nan", "0<=x<=1"),
])
def test_trainer_predict_refuses_nan(tmp_path, option, value, describe):
    """On main 8704ac72 the value passed; the weights (not a checkpoint) then failed, exit 1."""
    from trainer.cli import cli

    (tmp_path / "w.pth").write_bytes(b"not weights")
    res = CliRunner().invoke(cli, ["predict", "--weights", str(tmp_path / "w.pth"),
                                   "--source", str(tmp_path), "--out", str(tmp_path / "out"),
                                   option, value])
    assert res.exit_code == 2, res.output
    assert res.stderr.splitlines()[-1] == _usage_line(option, value, describe)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.pth"]


@pytest.mark.parametrize("option", ["--trainval-percent", "--train-percent"])
def test_trainer_prepare_voc_refuses_nan(tmp_path, option):
    """On main 8704ac72: ``Error: trainval_percent must be between 0 and 1, got nan``, exit 1."""
    from trainer.cli import cli

    res = CliRunner().invoke(cli, ["prepare-voc", str(tmp_path), option, "nan"])
    assert res.exit_code == 2, res.output
    assert res.stderr.splitlines()[-1] == _usage_line(option, "nan", "0<=x<=1")


@pytest.mark.parametrize("option, value, describe", [
    ("--latency", "nan", "x>=0"),
    ("--latency", "inf", "x>=0"),
    ("--link", "nan", "x>0"),
    ("--idle-timeout", "nan", "x>=0"),
    ("--upload-session-ttl", "nan", "x>0"),
    ("--refusal-drain-seconds", "inf", "x>0"),
])
def test_the_emulator_refuses_a_number_that_is_not_finite(tmp_path, option, value, describe):
    """On main 8704ac72 each started an emulator that served (until this test's timeout)."""
    done = cli_server().run(["emulator", "--port", "0", "--data-dir", str(tmp_path / "d"),
                             option, value], timeout=20, text=True)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines()[-1] == _usage_line(option, value, describe)
    assert list(tmp_path.iterdir()) == []
