"""fence37: drivestage's push ``guard`` (drivestage.push_fence), without the trainer: a
caller's check called at each point the push commits, whose error stops the push there.
What it must leave, the guard raising at each of its calls in turn while a changed
checkpoint pair replaces the pair on Drive (one upload thread: the calls in order): before
room is made for the uploads or before the checkpoint's upload, nothing sent; after it (the new copy verified) or before its
sidecar, the new copy removed (it was the push's own: no sidecar vouched for it) and the old
pair as it was; before the old copy's removal, the new pair vouched for and the old copy
kept (nothing is removed once the guard raised). Every time the guard's own error, and the
guard not called again once it raised. The real PyDrive2 stack against the emulator."""
from __future__ import annotations

import pytest

from _lease_pairs import on_drive
from tests import _checkpoints

DEST = "drive:runs/exp"


class Refused(Exception):
    pass


@pytest.mark.parametrize("refused_at", [1, 2, 3, 4, 5])
def test_a_guard_that_refuses_stops_the_push_and_leaves_a_verified_pair(
        drive_env, emulator, tmp_path, refused_at):
    from drivestage.upload_tree import push

    local = tmp_path / "logs"
    old = _checkpoints.save(str(local), "epoch_001", 1, 1000.0)
    push(str(local), DEST, jobs=1)
    new = _checkpoints.save(str(local), "epoch_001", 1, 2000.0)   # the same epoch, saved again
    calls: list[int] = []

    def guard() -> None:
        calls.append(1)
        if len(calls) == refused_at:
            raise Refused("no more")

    with pytest.raises(Refused):
        push(str(local), DEST, jobs=1, guard=guard)
    assert len(calls) == refused_at   # never called again once it raised
    ckpt, side = "epoch_001.pt", "epoch_001.json"
    # (1: before room is made for the uploads; 2: before the checkpoint's upload; 3: after
    # it; 4: before the sidecar's; 5: before the old copy's removal)
    if refused_at < 5:
        assert on_drive(emulator) == old
    else:   # before the old copy goes: the sidecar vouches for the new one, the old stays
        assert on_drive(emulator) == {ckpt: sorted(old[ckpt] + new[ckpt]), side: new[side]}


def test_a_guard_that_passes_changes_nothing(drive_env, emulator, tmp_path):
    from drivestage.upload_tree import push

    local = tmp_path / "logs"
    _checkpoints.save(str(local), "epoch_001", 1, 1000.0)
    push(str(local), DEST, jobs=1)
    new = _checkpoints.save(str(local), "epoch_001", 1, 2000.0)
    calls: list[int] = []
    result = push(str(local), DEST, jobs=1, guard=lambda: calls.append(1))
    assert sorted(result.uploaded) == ["epoch_001.json", "epoch_001.pt"]
    assert on_drive(emulator) == new
    assert len(calls) == 5
