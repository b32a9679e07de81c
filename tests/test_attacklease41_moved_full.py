"""attacklease41: a trainer holding its lease by a PROPERTY (Drive's storage full: room41)
whose run folder is renamed on Drive mid-run. Its next push follows the path (attackpush41):
its property leaves the old folder, and its claim, to be made anew in the path's folder, is
a claim file, which the full Drive refuses (and, since leasefull42 makes it a property then,
a Drive that refuses the property too): the push fails on storage, the trainer holds no
claim anywhere. A second trainer started at the path then found no claim, and took the
lease by a property there. Space freed, the first one's next check listed the claim FILES
alone (a file's holder reads no property), found none better, made its file, and pushed:
both held the lease and pushed into one folder. Now a trainer whose claim is to be made
anew reads the folder's properties too: the second one's live claim there stops it as taken
over, and nothing of its own reaches that folder.
The real DriveFolder and RunLease (PyDrive2 stack) against the emulator."""
from __future__ import annotations

import pytest

from _lease_pairs import save_pair
from test_fullclaim41_lease import _full, _props, _trainer


def _fill(emulator, free: int) -> None:
    emulator.quota_bytes = emulator.store.quota_bytes = \
        sum(int(f.get("fileSize", 0)) for f in emulator.files()) + free


def _in(emulator, folder_id: str) -> list[str]:
    return sorted(f["title"] for f in emulator.files() if not f["labels"]["trashed"]
                  and [p["id"] for p in f["parents"]] == [folder_id])


def test_a_property_holder_whose_folder_moved_never_pushes_beside_the_next_holder(
        drive_env, emulator, tmp_path, fast_retries, monkeypatch):
    from drivestage.errors import QuotaExceededError
    from trainer.errors import LeaseLostError
    from trainer.lease import release_all

    _full(emulator, tmp_path, monkeypatch)
    try:
        a, _ = _trainer(tmp_path, "a", 4, minutes=1)
        a.push()   # (held by a property; its room made)
        emulator.store.update(emulator.find("runs/exp")["id"], title="exp_old")
        _fill(emulator, 0)   # (and its property refused: else it goes on by one, leasefull42)
        emulator.full_refuses_property_writes = True
        save_pair(tmp_path / "a", "epoch_005.pt", 5)
        with pytest.raises(QuotaExceededError):   # (its claim there does not fit)
            a.push()
        new = emulator.find("runs/exp")["id"]
        assert _in(emulator, new) == [] and a.lease.lost is None
        emulator.full_refuses_property_writes = False
        _fill(emulator, 10)
        b, theirs = _trainer(tmp_path, "b", 6, minutes=1)   # (no claim at the path)
        assert not b.lease.pending and _props(emulator) == [b.lease.name[:-5]]
        _fill(emulator, 1_000_000)   # (space freed)
        save_pair(tmp_path / "a", "epoch_007.pt", 7)
        with pytest.raises(LeaseLostError) as lost:
            a.push()
        assert str(lost.value).startswith(
            f"pid {b.lease.holder().pid} on ") and "took the run's lease on drive:runs/exp " \
            f"over (renewed " in str(lost.value)
        b.push()
        assert b.lease.lost is None
        assert _in(emulator, new) == sorted(theirs)   # (B's pair alone; no claim file of A's)
        assert _props(emulator) == [b.lease.name[:-5]]
    finally:
        release_all()
