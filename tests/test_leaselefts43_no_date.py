"""leaselefts43: Drive's answers without a ``Date`` (a proxy that strips it), a holder whose
clock runs behind. A property claim's date is its writer's reading of Drive's clock, which,
with no ``Date`` heard, is the writer's own: an hour behind, its live claim read an hour
silent, and a trainer started beside it took the lease over at once, without watching; the
holder's guard, its lease "proved" for ``sure_s`` after each renewal, let its pushes commit
for up to that long into the folder the other one held (attacklease42, left).

Now, with no ``Date`` heard, no clock is trusted for a take-over: a claim is judged by how
long this trainer has seen it unchanged (``run_claims.silent_for``: a full stale period of
its own watch), and a holder by property proves its lease by a listing at every commit, not
by its renewal's date. The taker's period is shrunk (0.6 s); the real PyDrive2 stack
against the emulator (``send_date`` off: no ``Date``)."""
from __future__ import annotations

import logging
import time

import pytest

from drivestage import run_claims
from drivestage.drive import server_clock
from drivestage.store import RemoteEntry
from test_fullclaim41_lease import _full, _props, _trainer
from test_lease39_pending_guard import DEST


def test_no_date_heard_a_take_over_watches_and_the_holder_lists_at_each_commit(
        drive_env, emulator, store, tmp_path, fast_retries, monkeypatch, caplog):
    from trainer.drive import DriveFolder
    from trainer.errors import LeaseLostError
    from trainer.lease import RunLease, release_all

    monkeypatch.setenv("TRAINER_LEASE_SETTLE", "0")
    monkeypatch.setattr(server_clock, "_dated", True)   # (as it was, after: the next tests')
    _full(emulator, tmp_path, monkeypatch)   # (Drive full: the claims are properties)
    emulator.send_date = False
    try:
        holder, _ = _trainer(tmp_path, "run", 4, minutes=1)   # (a 1-minute lease, live)
        assert not server_clock.dated()
        lease = holder.lease
        assert lease is not None and not lease.pending
        [exp] = [f["id"] for f in emulator.files() if f["title"] == "exp"
                 and not f["labels"]["trashed"]]
        # Its writer's clock an hour behind: its claim, renewed now, dated an hour ago.
        behind = round(time.time() - 3600, 1)
        key = lease.name[:-5]
        store.set_public_property(RemoteEntry(exp, "exp", True), key, run_claims.property_value(
            run_claims.PropertyClaim(lease.generation, behind, behind, 4242, "x", False,
                                     "holder-vm", lease.stale_s), 124 - len(key)))

        taker = RunLease(DriveFolder(DEST, str(tmp_path / "taker")), period_s=0.6)
        began = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="trainer.lease"):
            taker.acquire()   # (main: at once, "its holder is gone", no watch)
        assert time.monotonic() - began >= taker.stale_s   # (its own watch: 1.8 s)
        said = [r.getMessage() for r in caplog.records]
        assert any(m.startswith("drive:runs/exp: the run's lease is held by pid 4242 on "
                                "holder-vm") and "waiting up to" in m for m in said), said
        assert _props(emulator) == [taker.name[:-5]]

        with pytest.raises(LeaseLostError, match="took the run's lease on drive:runs/exp "
                                                 "over"):
            lease.guard()   # (main: no request, its renewal "proved" it: the commit went)
        assert lease.guard_checks == 1
    finally:
        emulator.send_date = True
        release_all()
