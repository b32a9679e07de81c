"""attackfence37: what a push's fence removes when its guard refuses (drivestage.push_fence's
``Fence.undo``): only the copies this push made. A "new copy" the upload answers with can be a
file an earlier push made: Drive's listing lags, so the push plans a create of a file already
there, and the store answers with the copy this process made a moment ago
(``ids.Creates._made_before``) or with the file a create of an earlier push made under the id
recorded for it (a 409). That copy is vouched for by the sidecar its own push sent: removed,
the verified pair on Drive named bytes that were gone. The real PyDrive2 stack against the
emulator; the lag by count of list answers, never by time."""
from __future__ import annotations

import os

import pytest

from _lease_pairs import on_drive
from tests import _checkpoints

DEST = "drive:runs/exp"


class Refused(Exception):
    pass


def test_a_refused_push_keeps_the_pair_an_earlier_push_made_that_the_listing_hides(
        drive_env, emulator, tmp_path):
    from drivestage.upload_tree import push

    local = tmp_path / "logs"
    _checkpoints.save(str(local), "epoch_001", 1, 1000.0)
    # Drive's listing lags: the pair the first push makes is not listed to the next pushes.
    emulator.faults.lag_listing(created=1000, titles=r"^epoch_001\.(pt|json)$")
    push(str(local), DEST, jobs=1)
    pair = on_drive(emulator)
    assert sorted(pair) == ["epoch_001.json", "epoch_001.pt"]
    calls: list[int] = []

    def guard() -> None:   # refuses once a copy was "made" (the fence's check after it)
        calls.append(1)
        if len(calls) >= 3:
            raise Refused("the lease is another trainer's now")

    with pytest.raises(Refused):
        push(str(local), DEST, jobs=1, guard=guard)
    # The pair the first push verified is not this push's to remove.
    assert on_drive(emulator) == pair


class _Lease:
    """The run's lease as a send sees it (``check`` at its start, ``guard`` at each commit
    point: trainer.lease.RunLease's), lost at the guard's ``lost_at``-th call."""

    def __init__(self, lost_at: int) -> None:
        self.calls, self.lost_at = 0, lost_at

    def check(self) -> None:
        pass

    def guard(self) -> None:
        self.calls += 1
        if self.calls >= self.lost_at:
            raise Refused("the lease is another trainer's now")


def test_a_refused_lone_send_keeps_the_pair_a_push_made_that_the_listing_hides(
        drive_env, emulator, tmp_path):
    """``DriveFolder.send_alone`` (a stop's save) of the pair the run's push made a moment
    before, its listing not showing it yet: the store answers with the push's copy; the lease
    found lost at the check after that upload, the send removed it (its 'own')."""
    from trainer.drive import DriveFolder

    local = tmp_path / "logs"
    _checkpoints.save(str(local), "epoch_001", 1, 1000.0)
    emulator.faults.lag_listing(created=1000, titles=r"^epoch_001\.(pt|json)$")
    folder = DriveFolder(DEST, str(local))
    folder.push()
    pair = on_drive(emulator)
    assert sorted(pair) == ["epoch_001.json", "epoch_001.pt"]
    folder.lease = _Lease(lost_at=2)   # (1: before the checkpoint's upload; 2: after it)
    with pytest.raises(Refused):
        folder.send_alone([str(local / "epoch_001.pt"), str(local / "epoch_001.json")])
    assert folder.lease.calls == 2
    assert on_drive(emulator) == pair


@pytest.mark.parametrize("refused_at", [2, 3, 4])
def test_a_refused_push_into_a_directory_leaves_the_old_pair_as_readers_see_it(
        local_state, tmp_path, refused_at):
    """A directory store (a NAS, a mount) holds one file of a name: the new copy takes the
    name, the old one kept aside under a held name until the new pair is verified. The guard
    refusing before the upload, after the new copy or before its sidecar: the store lists the
    old pair under its names, and the next push (the lease held again) leaves the new pair
    alone in the folder, nothing held left."""
    from drivestage.localfs import file_md5
    from drivestage.remote import open_store
    from drivestage.upload_tree import push

    local, dest = tmp_path / "logs", tmp_path / "nas" / "exp"
    os_dest = str(dest)
    (tmp_path / "nas").mkdir()
    _checkpoints.save(str(local), "epoch_001", 1, 1000.0)
    push(str(local), os_dest, jobs=1)
    old = {n: file_md5(str(dest / n)) for n in ("epoch_001.pt", "epoch_001.json")}
    _checkpoints.save(str(local), "epoch_001", 1, 2000.0)
    new = {n: file_md5(str(local / n)) for n in old}
    calls: list[int] = []

    def guard() -> None:
        calls.append(1)
        if len(calls) >= refused_at:
            raise Refused("no more")

    with pytest.raises(Refused):
        push(str(local), os_dest, jobs=1, guard=guard)
    store, path = open_store(os_dest)
    listed = {e.name: e.md5 for e in store.list(store.resolve(path)) if not e.is_dir}
    assert listed == old
    push(str(local), os_dest, jobs=1)
    assert sorted(os.listdir(dest)) == ["epoch_001.json", "epoch_001.pt"]
    assert {n: file_md5(str(dest / n)) for n in new} == new
