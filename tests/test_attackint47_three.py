"""attackint47: three trainers take a stale claim over at once, their listings blind to one
another's claims, two of them having read the folder's etag before the third wrote: exactly
one holds (trainer.lease_cas.take; a pin: passes on 556f8e4f too)."""
from __future__ import annotations

import threading

from test_lease47_cas import _arbiter, _claims_on_drive, _lease, _patches, _stale_old_claim

from trainer.errors import LeaseHeldError


def test_three_trainers_taking_a_stale_claim_over_at_once_one_holds(drive_env, emulator,
                                                                    tmp_path):
    _stale_old_claim(emulator)
    folder = emulator.find("runs/exp")["id"]
    a, b, c = (_lease(tmp_path, n) for n in "abc")
    emulator.faults.lag_listing(created=30, titles="^trainer-lease-")
    emulator.faults.latency(60, "GET", rf"/files/{folder}\?.*fields=etag", times=2)
    out: dict = {}

    def take(lease, key: str) -> None:
        try:
            lease.acquire()
            out[key] = "held"
        except BaseException as exc:   # (said below)
            out[key] = exc
    threads = [threading.Thread(target=take, args=(x, k)) for x, k in ((a, "a"), (b, "b"))]
    for t in threads:
        t.start()
    try:
        came, _ = emulator.faults.wait_latencies(lambda n: n >= 2, timeout=30)
        assert came, "a and b never read the folder"
        c.acquire()
        emulator.faults.hurry()
        for t in threads:
            t.join(30)
            assert not t.is_alive()
        for k in "ab":
            assert isinstance(out[k], LeaseHeldError) and "holds its lease" in str(out[k]), out
        # Each one's probe (lease48; before its claim since lease49: refused), then c's swap,
        # a's and b's swaps.
        assert [s for _, s in _patches(emulator, folder)] == [412, 412, 412, 200, 412, 412]
        assert _arbiter(emulator) == f"2 {c.token} {c._mine.id}"
        assert _claims_on_drive(emulator) == [c.name]
    finally:
        emulator.faults.hurry()
        for t in threads:
            t.join(30)
        c.release()
        for x, k in ((a, "a"), (b, "b")):
            if out.get(k) == "held":
                x.release()
