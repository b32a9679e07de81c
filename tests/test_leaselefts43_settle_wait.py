"""leaselefts43: the smallest-token claimant of a property race waits for its rivals to stand
back for ``settle_s`` and two requests (12 s at the default 1-minute lease), not 30 s: a
rival it read wrote its claim before that read, so it reads and removes its claim within
``settle_s`` and two requests; past that it held, and this trainer is refused sooner. A
rival slower than that makes both stand back (refused, the safe side), never both hold
(trainer.lease_settle's text). In-process, no Drive."""
from __future__ import annotations

import pytest


def test_the_smallest_token_waits_settle_and_two_requests(tmp_path, monkeypatch):
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease
    from trainer.lease_settle import wait_bound

    for minutes, settle, bound in [
            (1.0, None, 12.0),    # the default lease: 2 s settle and two requests of 5 s
            (1.0, "0", 10.0),     # a listing that shows a create at once (the emulator)
            (60.0, "30", 30.0),   # at most 30 s, as before
            (0.01, None, 1.8)]:   # never past the lease's stale_s (here 1.8 s)
        if settle is None:
            monkeypatch.delenv("TRAINER_LEASE_SETTLE", raising=False)
        else:
            monkeypatch.setenv("TRAINER_LEASE_SETTLE", settle)
        lease = RunLease(DriveFolder(str(tmp_path / "logs"), str(tmp_path / "run")),
                         60.0 * minutes)
        assert wait_bound(lease) == pytest.approx(bound), (minutes, settle)
