"""attack22push: ``mirror --grace`` / ``--every`` take only a finite number of seconds.

--grace nan passed click's FloatRange(min=0, min_open=True) (nan fails every comparison):
the grace's watchdog then waited nan seconds, which returns at once, and the program exited 1
("--grace (nan s) ran out") at the first SIGTERM, before its final push. --grace inf or 1e300
killed the watchdog thread with an OverflowError traceback (threading.TIMEOUT_MAX). --every nan
passed ``every <= 0`` and the mirror pushed without a pause, for good."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from drivestage.cli import cli
from drivestage.errors import UsageError
from drivestage.mirror import Mirror


@pytest.mark.parametrize("option,value", [
    ("--grace", "nan"), ("--grace", "inf"), ("--grace", "1e300"), ("--grace", "0"),
    ("--grace", "-1"), ("--grace", "-inf"), ("--every", "nan"), ("--every", "inf"),
    ("--every", "1e300"),
])
def test_mirror_seconds_that_are_no_wait_are_a_usage_error(tmp_path, option, value):
    args = ["mirror", str(tmp_path), "drive:Models/logs", "--every", "60", option, value]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}': {value} is not a number of seconds > 0 and at " \
           "most 2592000 (30 days)" in result.output


@pytest.mark.parametrize("every", [float("nan"), float("inf"), 1e300])
def test_a_mirror_with_no_real_period_is_refused(tmp_path, every):
    with pytest.raises(UsageError, match="give a period in seconds > 0"):
        Mirror(str(tmp_path), "drive:Models/logs", every=every)


@pytest.mark.parametrize("name", ["DRIVESTAGE_RETRY_CAP", "DRIVESTAGE_RETRY_AFTER_MAX",
                                  "DRIVESTAGE_RETRY_BASE"])
@pytest.mark.parametrize("raw", ["nan", "inf", "1e300"])
def test_a_retry_wait_that_is_no_number_of_seconds_is_a_usage_error(monkeypatch, name, raw):
    from drivestage.drive.retry import Policy

    monkeypatch.setenv(name, raw)
    with pytest.raises(UsageError) as err:
        Policy.from_env()
    assert str(err.value) == f"{name}={raw!r} is not a number of at most 1e9"
