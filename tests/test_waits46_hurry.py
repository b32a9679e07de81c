"""``emulator.faults.hurry()``: every answer waiting out its latency now goes on at once, and
the rules stay (a later request waits again). Tests that stop a command while a latency
holds its request (tests/_sigpush42.py's ``settled``) waited the latency out before the
rerun: 2 s of each of eight tests, for nothing the tests looked at."""
from __future__ import annotations

import threading

from _drive_clients import drive_service


def test_hurry_ends_the_latency_under_way_and_keeps_the_rule(emulator):
    emulator.faults.latency(30.0, method="GET", path=r"/about", times=1)
    emulator.faults.latency(0.5, method="GET", path=r"/about")
    emulator.clear_requests()
    done: list[dict] = []
    asker = threading.Thread(
        target=lambda: done.append(drive_service(emulator.url).about().get().execute()))
    asker.start()
    try:
        # Counted once the wait took the event hurry() sets (a stand-in's own event, set
        # before the real wait began, let hurry() come first: the 30 s waited out).
        came, _ = emulator.faults.wait_latencies(lambda waiting: waiting >= 1, 10)
        assert came, "the request never waited out its latency"
        emulator.faults.hurry()
        asker.join(8)   # (its latency had 30 s to go)
        assert not asker.is_alive(), "the answer waited out its latency, hurried"
    finally:
        emulator.faults.release_holds()   # (the test ends either way)
        asker.join(30)
        emulator.faults.serving()
    assert len(done) == 1 and "user" in done[0], done
    # The other rule stays: the next request waits out its 0.5 s (the server's own timing).
    drive_service(emulator.url).about().get().execute()
    assert len(emulator.requests) == 2 and emulator.requests[1].duration >= 0.5
    assert [r["seconds"] for r in emulator.faults.describe()["rules"]] == [0.5]
