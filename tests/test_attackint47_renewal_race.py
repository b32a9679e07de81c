"""attackint47: a stale take-over racing the holder's renewal (trainer.lease_cas, lease47).

A holder silent past its lease (a machine asleep) wakes and renews while another trainer
takes its stale lease over. lease47's renewal swapped the arbiter first and wrote its claim
file after: the taker, reading the arbiter between the two, found it naming the holder's
claim, read that claim by id still stale (its renewal not written yet) and swapped the
arbiter over. The holder's claim file then landed, and the holder took that for the proof
of its lease for ``sure_s``: two trainers pushing into one run folder until its next
renewal. The taker may not remove the holder's claim here (a Contributor of a shared
folder: Drive refuses it; elsewhere its removal comes a request after its swap, and the
holder's write may land first). The real PyDrive2 stack against the emulator; every wait
is on the emulator's count of held answers."""
from __future__ import annotations

import threading
import time

from trainer.errors import LeaseLostError

DEST = "drive:runs/exp"
#: Renewals every 0.5 s: a claim is stale after 1.5 s.
PERIOD = 0.5


def _lease(tmp_path, name: str):
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    return RunLease(DriveFolder(DEST, str(tmp_path / name)), period_s=PERIOD)


def test_a_take_over_racing_the_holders_renewal_leaves_one_holder(drive_env, emulator, tmp_path):
    import pytest

    h = _lease(tmp_path, "h")
    h.acquire()   # (not started: the test makes its renewal)
    folder = emulator.find("runs/exp")["id"]
    mine = h._mine.id
    emulator.store.update(mine, modified=time.time() - 3600)   # (asleep an hour)
    for method, path in (("DELETE", rf"/files/{mine}(\?|$)"), ("POST", rf"/files/{mine}/trash")):
        emulator.faults.inject(method, path, status=403, reason="insufficientFilePermissions",
                               times=None)
    # h wakes: its renewal's swap of the arbiter is answered late (done, the answer held).
    emulator.faults.latency(60, "PATCH", rf"/files/{folder}\?", times=1)
    emulator.clear_requests()
    h._written_at -= h.period_s   # (its renewal due)
    out: dict = {}

    def renew() -> None:
        try:
            h.check()
            out["h"] = "renewed"
        except BaseException as exc:   # (said below)
            out["h"] = exc
    t = threading.Thread(target=renew)
    t.start()
    taker = _lease(tmp_path, "t")
    try:
        came, _ = emulator.faults.wait_latencies(lambda n: n >= 1, timeout=30)
        assert came, "h never renewed"
        taker.acquire()   # (h's claim stale as read, or watched stale: taken over)
        emulator.faults.hurry()
        t.join(30)
        assert not t.is_alive()
        # Exactly one holds: the taker. h either learnt it at once, or its renewal's proof
        # is spent (written before the take-over's watch), and its next commit finds it.
        with pytest.raises(LeaseLostError, match="took the run's lease on drive:runs/exp over"):
            h.guard()
        # (What made it hold: h wrote its renewal after the taker's swap, taken as proof.)
        claim = [i for i, r in enumerate(emulator.requests) if mine in r.path
                 and r.method in ("PUT", "POST", "PATCH") and "/upload/" in r.path]
        swaps = [i for i, r in enumerate(emulator.requests) if r.method == "PATCH"
                 and f"/files/{folder}" in r.path and r.status == 200]
        assert out["h"] != "renewed" or max(claim) < max(swaps), (claim, swaps)
        taker.check()
        assert h.lost is not None
    finally:
        emulator.faults.hurry()
        t.join(30)
        taker.release()
        h.release()
