"""attackb50: a bad ``DRIVESTAGE_LISTING_TIMEOUT`` (pull50's bound on one listing) was read
at the first listing only.

``DRIVESTAGE_HTTP_TIMEOUT`` is read as the connection is made, so a typo in it stops a
trainer's ``CheckpointSync`` before its first epoch. The listing bound was read by each
listing, in the mirror's push: the whole run trained, every period's mirror failed on it,
and ``on_train_end`` raised at the end, hours later, nothing of the run on Drive. Now it is
refused when the connection is made, as the HTTP timeout is.
"""
from __future__ import annotations

import pytest

from drivestage.errors import UsageError

from _checkpoints import save


def test_a_bad_listing_timeout_stops_the_sync_before_training(
        emulator, drive_env, local_state, tmp_path, monkeypatch):
    from drivestage.hooks import CheckpointSync

    src = tmp_path / "run"
    save(str(src), "epoch_001", 1, 1764600000.0)
    monkeypatch.setenv("DRIVESTAGE_LISTING_TIMEOUT", "10m")
    with pytest.raises(UsageError) as caught:
        CheckpointSync("drive:runs/a", local_dir=str(src))
    assert str(caught.value) == (
        "DRIVESTAGE_LISTING_TIMEOUT='10m' is not a number of seconds above 0 and below 1e9 "
        "(how long one listing may take; 3600 by default)")
    assert emulator.find("runs/a") is None
