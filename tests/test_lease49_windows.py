"""lease49: the windows of the run's lease where a trainer's path to Drive does not honour
``If-Match`` and another's does (lease48 left them: notes/s48/lease48.md). a reaches Drive
through a proxy (tests/_proxy.py) that refuses every conditional write of the folder, or
drops the ``If-Match`` header; b goes direct, its compare-and-swap working. Whatever the
order of their requests, the two never both hold once either's acquire has returned and the
arbiter could tell (docs/guarantees.md, "The run's lease"); the one window left is stated
there and pinned here. Every wait is on the emulator's count of held answers."""
from __future__ import annotations

import json
import logging
import re

import pytest

from _lease_race import Held, arbiter, claims_on_drive, lease, patches
from trainer.errors import LeaseHeldError, LeaseLostError

IGNORED = "(If-Match ignored)"
#: A claim's write in place: its resumable upload's first request (a create is a POST).
REWRITE = r"/upload/drive/v2/files/[^/?]+\?"


def _refusing(proxy, folder: str) -> None:
    """Every patch of the folder answered 412 by the proxy (attackint47's proxy)."""
    from _proxy import Reply

    refused = json.dumps({"error": {"code": 412, "message": "Precondition Failed", "errors": [
        {"domain": "global", "reason": "conditionNotMet", "message": "Precondition Failed",
         "locationType": "header", "location": "If-Match"}]}}).encode()
    proxy.on("PATCH", rf"/files/{folder}\?", lambda *_: Reply(
        412, {"Content-Type": "application/json", "Content-Length": str(len(refused))},
        [refused]), forward=False)


def _pair(monkeypatch, proxy, emulator, tmp_path):
    """a through ``proxy``, b direct."""
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
    a = lease(tmp_path, "a")
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emulator.url)
    return a, lease(tmp_path, "b")


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "trainer.lease" and r.levelno == logging.WARNING]


def test_a_direct_trainer_checking_while_the_other_rewrites_its_claim_is_not_held_twice(
        drive_env, emulator, proxy, monkeypatch, tmp_path):
    """lease48's rewrite window: a (its conditional writes all refused by a proxy) falls
    back to the listing and writes its claim again, ``arbiter: false``; until that write
    lands the claim says ``arbiter: true``. b (direct) took the arbiter meanwhile, its
    listing blind to a's claim, then checked with the listing caught up: a's claim (first)
    said it obeys the arbiter, which names b, so b dropped it. Before lease49 a then held
    by the listing and b by the arbiter: both held (until b's next check). Now a reads the
    arbiter once its claim says ``arbiter: false``: it names b's live claim, and a stands
    back; b holds."""
    emulator.add_folder("runs/exp")
    folder = emulator.find("runs/exp")["id"]
    _refusing(proxy, folder)
    emulator.faults.lag_listing(created=20, titles="^trainer-lease-")
    a, b = _pair(monkeypatch, proxy, emulator, tmp_path)
    with Held(emulator, folder, a, "PUT", REWRITE) as race:   # (a's claim written again)
        try:
            b.acquire()
            assert arbiter(emulator) == f"1 {b.token} {b._mine.id}"
            emulator.faults.clear()   # (the listing shows both claims now; a's first)
            assert json.loads(emulator.read_bytes(a._mine.id))["arbiter"] is True
            b.check()   # (a's claim says it obeys the arbiter, which names b: dropped)
            out = race.go()
            assert isinstance(out, LeaseHeldError), out
            assert f"holds its lease" in str(out)
            b._written_at -= b.period_s   # (b's renewal due: its swap lands, held)
            b.check()
            assert claims_on_drive(emulator) == [b.name]
            assert arbiter(emulator) == f"1 {b.token} {b._mine.id}"
        finally:
            b.release()
    # The window lease48 left, in a's requests (the proxy sees a's only): from its claim's
    # create to the write that said ``arbiter: false``.
    sent = [(m, p) for m, p in proxy.requests]
    made = sent.index(next(r for r in sent if r[0] == "POST" and "/upload/" in r[1]))
    again = sent.index(next(r for r in sent if r[0] == "PUT" and re.search(REWRITE, r[1])))
    print(f"window: {again - made} requests of a's", [f"{m} {p[:60]}" for m, p in
                                                     sent[made:again + 1]])
