"""attacklease42: a trainer whose run folder was renamed on Drive takes its claim to the
folder the path leads to now (attackpush41) while a second trainer starts there.

The first lists the path's new folder (no claim), the second lists it too, claims, settles
and holds; the first then made its claim there with no settle of its own and held too: its
guard let its pushes through without a look for the lease's proof (sure_s, 2 min at the
default period), and both pushed into one folder. A claim made anew in a folder (moved
there) settles now as a new claimant's does: a live claim of another there after it, and
this one stands back (its claim removed) and stops as taken over.

The second trainer is started from inside the first one's listing of the new folder (its
``_claims`` wrapped on that one instance): after that listing, before its write, every time.
The real DriveFolder and RunLease (PyDrive2 stack) against the emulator."""
from __future__ import annotations

import pytest

from _lease_pairs import save_pair
from tests.test_attackpush41_lease_folder import _started


def test_a_claim_moved_into_a_folder_a_second_trainer_claims_meanwhile_stands_back(
        emulator, drive_env, local_state, tmp_path, monkeypatch):
    from trainer.errors import LeaseLostError
    from trainer.lease import release_all

    save_pair(tmp_path / "a", "epoch_001.pt", 1)
    a, lease_a = _started(emulator, tmp_path, monkeypatch, "a")
    started = []
    try:
        a.push()
        old = emulator.find("runs/exp")["id"]
        emulator.store.update(old, title="exp_old")
        listing = lease_a._claims

        def listed_then_b_starts(folder, props=True):
            claims = listing(folder, props)
            if folder.id != old and not started:
                started.append(_started(emulator, tmp_path, monkeypatch, "b"))
            return claims
        lease_a._claims = listed_then_b_starts
        save_pair(tmp_path / "a", "epoch_002.pt", 2)
        with pytest.raises(LeaseLostError, match="moved, renamed or trashed on Drive since"):
            a.push()   # (before: it went, into the folder the second trainer holds)
        [(b, lease_b)] = started
        new = emulator.find("runs/exp")["id"]
        there = sorted(f["title"] for f in emulator.files() if not f["labels"]["trashed"]
                       and [p["id"] for p in f["parents"]] == [new])
        assert there == [lease_b.name]   # (nothing of A's: its claim and copies removed)
        lease_b._sure_until = 0.0
        lease_b.guard()   # (a check: it holds)
        assert lease_b.lost is None
    finally:
        release_all()
