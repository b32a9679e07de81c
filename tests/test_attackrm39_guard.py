"""attackrm39: the guard before each removal request (pushsplit39) raising what is not a
lease's error: a Ctrl-C (KeyboardInterrupt) while the guard renews the run's lease, between
the batch request that checks the items ``push --delete`` removes and the batch request that
deletes them. It must stop the pass there, raised as it is (never taken for an item's
failure), nothing removed; the next push removes them all. The real PyDrive2 stack against
the emulator; the guard decides by the emulator's request log, never by time."""
from __future__ import annotations

import pytest

from test_removalfence39 import _live, _removed_since


def test_a_ctrl_c_in_the_guard_between_check_and_delete_batches_removes_nothing(
        emulator, drive_env, local_state, tmp_path):
    from drivestage.upload_tree import push

    src = tmp_path / "run"
    src.mkdir()
    (src / "keep.txt").write_text("kept")
    push(str(src), "drive:runs/exp", jobs=1)
    for i in range(5):
        emulator.add_file(f"runs/exp/old_{i}.txt", b"x")
    start = len(emulator.requests)

    def guard() -> None:   # (after the check batch: the next batch request would delete)
        if any(r.kind == "batch" or r.path.startswith("/batch")
               for r in emulator.requests[start:]):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        push(str(src), "drive:runs/exp", delete=True, jobs=1, guard=guard)
    assert any(r.path.startswith("/batch") for r in emulator.requests[start:])
    assert _removed_since(emulator, start) == 0
    assert len(_live(emulator, "runs/exp")) == 6

    push(str(src), "drive:runs/exp", delete=True, jobs=1)
    assert _live(emulator, "runs/exp") == ["keep.txt"]
