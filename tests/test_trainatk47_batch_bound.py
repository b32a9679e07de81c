"""trainatk47: ``train.batch_size`` (and ``freeze_batch_size``) of 1e308 was taken (an integral
float is an int: 10**308); the run staged the data, built the model, and ended at its first
batch in torch's traceback (``ValueError: Stop argument for islice() must be None or an
integer: 0 <= x <= sys.maxsize``). Now refused as the config is read, in one line."""
from __future__ import annotations

import pytest

from _tiny_run import tiny_run_config
from trainer.config import load_config
from trainer.errors import ConfigError


@pytest.mark.parametrize("key", ["batch_size", "freeze_batch_size"])
def test_a_batch_no_loader_can_take_is_refused_as_the_config_is_read(tmp_path, key):
    path = tiny_run_config(tmp_path, epochs=1, logs=None)
    with pytest.raises(ConfigError) as refused:
        load_config(path, [f"train.{key}=1e308"])
    text = str(refused.value)
    assert text.startswith(f"train.{key} must be from 1 to 2147483647, got 1000000000"), text
    assert len(text) < 120, text   # (the value cut short, not its 309 digits)
    assert getattr(load_config(path, [f"train.{key}=2147483647"]).train, key) == 2**31 - 1
