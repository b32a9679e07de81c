"""skewlefts44: a ``Retry-After`` given as an HTTP date, from a Drive (or a proxy) whose
``Date`` runs three hours off this machine's clock. The date is the server's clock: read
against this machine's, a wait of 5 s came out as three hours (capped at
``DRIVESTAGE_RETRY_AFTER_MAX``: two minutes a retry) where the clock was ahead, or none where
behind. Now it is read against the same answer's ``Date`` (else Drive's clock as last heard,
:mod:`drivestage.drive.server_clock`): the wait the server meant. The real PyDrive2 stack
against the emulator (``date_offset``); the waits recorded, not slept."""
from __future__ import annotations

import email.utils
import logging
import time

import pytest

from drivestage.drive import retry, server_clock

AHEAD = 3 * 3600.0


@pytest.fixture
def waits(emulator, monkeypatch):
    """The retry waits, recorded (not slept); the clock heard as it was, after."""
    for name in ("_dated", "_behind", "_warned"):
        monkeypatch.setattr(server_clock, name, getattr(server_clock, name))
    recorded: list[float] = []
    monkeypatch.setattr(retry, "_sleep", recorded.append)
    yield recorded
    emulator.date_offset = 0.0
    emulator.send_date = True


@pytest.mark.parametrize("status, sign", [(429, 1), (503, -1)], ids=["429-ahead", "503-behind"])
def test_a_retry_after_date_is_read_by_drives_clock_not_this_machines(
        emulator, store, fast_retries, waits, caplog, monkeypatch, status, sign):
    """The wait is the 5 s the server meant (main: the cap, for a Date ahead; 0 s for one
    behind), by the answer's own ``Date``; and by Drive's clock as last heard where the
    answer carries none (a proxy that strips it after the first). A longer one is still
    capped by ``DRIVESTAGE_RETRY_AFTER_MAX``."""
    monkeypatch.setenv("DRIVESTAGE_RETRY_AFTER_MAX", "30")
    emulator.date_offset = sign * AHEAD
    folder = store.make_folders("exp")
    assert server_clock.skew() is not None

    def retry_after_in(seconds: float) -> dict[str, str]:
        drive_now = time.time() + emulator.date_offset
        return {"Retry-After": email.utils.formatdate(drive_now + seconds, usegmt=True)}

    with caplog.at_level(logging.WARNING, logger="drivestage.drive.retry"):
        emulator.faults.inject("GET", r"/files", status=status, headers=retry_after_in(5))
        assert store.list(folder) == []
        emulator.send_date = False   # (its Date: Drive's clock as heard before)
        emulator.faults.inject("GET", r"/files", status=status, headers=retry_after_in(5))
        assert store.list(folder) == []
        emulator.faults.inject("GET", r"/files", status=status, headers=retry_after_in(3600))
        assert store.list(folder) == []
    assert len(waits) == 3 and all(3.5 <= w <= 6.0 for w in waits[:2]), waits
    assert waits[2] == 30.0   # (an hour asked: the cap, as ever)
    said = [r.getMessage() for r in caplog.records if "server asked for" in r.getMessage()]
    assert len(said) == 3, said
    assert server_clock.drive_clock("Wed, 21 Oct 2015 07:28:00 GMT") == 1445412480.0
