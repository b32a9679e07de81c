"""trainatk47: ``drive.lease_minutes`` took any value in [0, 60]; a tiny one (1e-300) renewed
the run's lease without a pause between renewals (the renewal thread waits one period):
request after request to Drive for as long as the run lasted, about 60 a second more than
the run's own here (498 requests in a 2-epoch tiny run, 83 with the default), until Drive's
rate limits refused them, the run's pushes with them. Now the least is 0.01 (a renewal each
0.6 s at most); 0 still turns the lease off."""
from __future__ import annotations

import pytest

from _tiny_run import tiny_run_config
from trainer.config import load_config
from trainer.errors import ConfigError


@pytest.mark.parametrize("value", ["1e-300", "0.001", "-1", "61"])
def test_a_lease_renewed_more_often_than_every_0_6_s_is_refused(tmp_path, value):
    path = tiny_run_config(tmp_path, epochs=1)
    with pytest.raises(ConfigError) as refused:
        load_config(path, [f"drive.lease_minutes={value}"])
    assert str(refused.value) == (
        f"drive.lease_minutes must be 0 (no lease) or from 0.01 to 60 (each renewal is a "
        f"request to Drive), got {float(value)!r}")


@pytest.mark.parametrize("value", ["0", "0.01", "60"])
def test_the_bounds_and_no_lease_are_taken(tmp_path, value):
    assert load_config(tiny_run_config(tmp_path, epochs=1),
                       [f"drive.lease_minutes={value}"]).drive.lease_minutes == float(value)
