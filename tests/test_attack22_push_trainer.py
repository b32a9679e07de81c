"""attack22push: the trainer's writer and stop against a grace no wait can take."""
from __future__ import annotations

import pytest

from drivestage.interrupts import Flag
from trainer.config import ConfigError, load_config


def test_a_wait_past_timeout_max_is_a_traceback():
    """Why the bound: every wait of the stop (Flag, Monitor) overflows past it."""
    with pytest.raises(OverflowError):
        Flag().wait(1e10)


@pytest.mark.parametrize("value", ["1e10", "1e300"])
def test_a_grace_no_wait_can_take_is_refused_naming_the_key(value):
    with pytest.raises(ConfigError) as err:
        load_config(None, [f"train.grace_seconds={value}"])
    assert str(err.value) == (f"train.grace_seconds must be at most 2592000 (30 days), got "
                              f"{float(value):g}")


def test_a_long_grace_is_taken():
    assert load_config(None, ["train.grace_seconds=86400"]).train.grace_seconds == 86400
