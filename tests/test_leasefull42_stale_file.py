"""leasefull42: the usual reconnect on a FULL Drive. An earlier trainer's claim FILE is left in
the run folder (its runtime gone: renewed no more), and Drive is full of checkpoints. room41's
property claim was written only where no claim file at all was listed (a file's holder read
no property), so the new trainer stayed not taken, every push stopped at its first removal,
and the user had to free space by hand. Now a claim file that is stale is no one's: the new
trainer takes the lease over by a property (which a full Drive takes), without writing or
replacing a file, removes the stale file, and its push makes its room. The earlier trainer,
were it only asleep, finds its lease unproved when it wakes, reads the folder's properties
(its stale file removed, or left where Drive refused the removal) and pushes nothing more.
The real DriveFolder and RunLease (PyDrive2 stack) against the emulator."""
from __future__ import annotations

import logging

import pytest

from _lease_pairs import on_drive
from test_fullclaim41_lease import _full, _props, _trainer
from test_lease39_pending_guard import _claims

#: 0.6 s renewals: stale at 1.8 s (both trainers: each judges by its own period; the
#: least drive.lease_minutes takes, trainatk47).
MINUTES = 0.01


def _asleep(tmp_path, emulator):
    """An earlier trainer that held the lease by a claim FILE (Drive had room then), its
    renewals stopped (its runtime gone, or asleep): (its folder, its claim file's id)."""
    old, _ = _trainer(tmp_path, "old", 3, minutes=MINUTES)
    old.lease._done.set()
    old.lease._thread.join(5)
    [left] = _claims(emulator)
    return old, left


@pytest.mark.parametrize("removal", ["removed", "refused"])
def test_a_stale_claim_file_on_a_full_drive_is_taken_over_by_a_property(
        drive_env, emulator, tmp_path, fast_retries, monkeypatch, caplog, removal):
    from trainer.errors import LeaseLostError
    from trainer.lease import release_all

    used, _ = _full(emulator, tmp_path, monkeypatch, free=100_000)
    old, left = _asleep(tmp_path, emulator)
    emulator.quota_bytes = emulator.store.quota_bytes = \
        sum(int(f.get("fileSize", 0)) for f in emulator.files()) + 100   # (no file fits)
    [claim_id] = [f["id"] for f in emulator.files() if f["title"] == left]
    if removal == "refused":   # (a Contributor's delete: the stale file stays)
        for method, path in (("DELETE", claim_id), ("POST", f"{claim_id}/trash")):
            emulator.faults.inject(method=method, path=path, status=403,
                                   reason="insufficientFilePermissions", times=None)
    try:
        with caplog.at_level(logging.WARNING, logger="trainer.lease"):
            run, ours = _trainer(tmp_path, "run", 4, minutes=MINUTES)
        assert not run.lease.pending and run.lease.generation == 2
        assert _props(emulator) == [run.lease.name[:-5]]
        assert _claims(emulator) == ([] if removal == "removed" else [left])
        [took] = [r.getMessage() for r in caplog.records
                  if "took the run's lease over" in r.getMessage()]
        assert took.startswith("drive:runs/exp: took the run's lease over from pid ")
        assert took.endswith("(its holder is gone)")
        run.push()   # (its room made within the lease: the earlier pairs removed)
        assert on_drive(emulator) == {n: [m] for n, m in ours.items()}
        # The earlier trainer wakes: unproved, it reads the properties, and stops.
        with pytest.raises(LeaseLostError) as lost:
            old.push()
        assert "took the run's lease on drive:runs/exp over" in str(lost.value)
        assert on_drive(emulator) == {n: [m] for n, m in ours.items()}
        assert not run.lease.lost
    finally:
        emulator.faults.clear()
        release_all()
    assert used > 0
