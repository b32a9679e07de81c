"""attack51: every setting of drivestage's Drive requests is refused as the connection is made.

attackb50 moved ``DRIVESTAGE_LISTING_TIMEOUT``'s check to ``places.connect``, beside
``DRIVESTAGE_HTTP_TIMEOUT``'s: read by the first request only, a typo let a trainer's
``CheckpointSync`` train a whole run with every period's mirror push failing, ``MirrorError``
at ``on_train_end``, nothing on Drive. The five ``DRIVESTAGE_RETRY_*`` settings are read by
each request's retry loop, and the proxy variables (``https_proxy``, ``all_proxy``: a port
that is no number) at each connection: the same run, the same end (on main
``CheckpointSync(...)`` accepted each). Now ``CheckpointSync(...)``,
and any command on ``drive:``, stops at once: one line naming the setting, exit 2.
"""
from __future__ import annotations

import pytest

from drivestage.errors import UsageError

from _checkpoints import save


@pytest.mark.parametrize("name,value,why", [
    ("DRIVESTAGE_RETRY_BASE", "1s", "is not a number"),
    ("DRIVESTAGE_RETRY_CAP", "nan", "is not a number of at most 1e9"),
    ("DRIVESTAGE_RETRY_JITTER", "-1", "must not be negative"),
    ("DRIVESTAGE_RETRY_AFTER_MAX", "inf", "is not a number of at most 1e9"),
    ("DRIVESTAGE_RETRY_ATTEMPTS", "0",
     "must be at least 1 (attempts per Drive request, 8 by default)"),
    ("DRIVESTAGE_RETRY_ATTEMPTS", "2.5",   # (read as 2 on main, nothing said)
     "is not a whole number (attempts per Drive request, 8 by default)"),
    ("http_proxy", "http://proxy:notaport", None),   # (the emulator's scheme: http)
])
def test_a_bad_request_setting_stops_the_sync_before_training(
        emulator, drive_env, local_state, tmp_path, monkeypatch, name, value, why):
    from drivestage.hooks import CheckpointSync

    src = tmp_path / "run"
    save(str(src), "epoch_001", 1, 1764600000.0)
    monkeypatch.setenv(name, value)
    with pytest.raises(UsageError) as caught:
        CheckpointSync("drive:runs/a", local_dir=str(src))
    assert str(caught.value) == (f"{name}={value!r} {why}" if why else (
        f"{name} is not a proxy address drivestage can use (its port is not a number from 0 "
        "to 65535): set it as http://HOST:PORT (http://USER:PASSWORD@HOST:PORT with a login; "
        "a % code for an @ or : in them), or unset it"))
    assert emulator.find("runs/a") is None

