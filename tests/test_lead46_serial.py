"""pool.Serial (an upload's hash thread, HashingMedia) and a Ctrl-C that lands in its submit
between the thread's making and its start: the job was queued with no thread to run it, and
the drain() the upload's close runs on that very Ctrl-C waited for it for good (CI, stop 56's
first run: a push ran on past its Ctrl-C, 2 in 72 runs of test_conn35_ctrl_c_sweep's
sent-in-pieces test beside load)."""
from __future__ import annotations

import threading

import pytest

from drivestage import pool


def _drained_within(serial: pool.Serial, seconds: float) -> bool:
    """Whether ``serial.drain()`` returns (or raises) within ``seconds``, run in a thread of
    its own (a hang fails the test instead of holding it)."""
    done = threading.Event()

    def drain() -> None:
        try:
            serial.drain()
        finally:
            done.set()
    threading.Thread(target=drain, daemon=True).start()
    return done.wait(seconds)


def test_a_ctrl_c_as_the_thread_starts_leaves_no_job_without_a_thread(monkeypatch):
    real = pool.BackgroundThread
    pressed = []

    class CutAtStart(real):
        def start(self):
            if not pressed:
                pressed.append(1)
                raise KeyboardInterrupt   # (made, not started: where the Ctrl-C landed)
            return super().start()
    monkeypatch.setattr(pool, "BackgroundThread", CutAtStart)
    serial = pool.Serial("test-serial")
    ran: list[int] = []
    with pytest.raises(KeyboardInterrupt):
        serial.submit(lambda: ran.append(1))
    assert _drained_within(serial, 5), "drain() waited for a job no thread runs"
    # The next job gets a thread, and runs.
    serial.submit(lambda: ran.append(2))
    assert _drained_within(serial, 5)
    serial.close()
    assert ran == [2]
