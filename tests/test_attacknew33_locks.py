"""A Ctrl-C at each step of a push's tree lock (drivestage.locks._flock): what it leaves
noted about the lock, besides the lock itself (attacknew33)."""
from __future__ import annotations

import os
import sys

import pytest

from drivestage import locks
from test_interrupt_locks import _each_ctrl_c

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock")


def _who_files(folder) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.endswith(".who"))


def test_a_ctrl_c_at_any_point_of_a_tree_lock_leaves_no_holder_noted(tmp_path, monkeypatch):
    """A Ctrl-C right after the lock's count went up (before the block that counts it down),
    or inside the holder file's write, or in the block's end between the count and the
    file's removal: this process stayed counted as a holder of a lock it had let go (the next
    push that waited for another process's said "in this process", and wrote no holder file
    of its own), or its holder file stayed, naming a live notebook as the holder of whatever
    push another process then waited for."""
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state"))
    lineage = [("p|runs/exp1", "drive:runs/exp1"), ("p|runs", "drive:runs")]

    def work() -> None:
        with locks.tree_lock(lineage):
            pass

    work()
    folder = tmp_path / "state" / "locks"
    left = []
    landed = 0
    for point in _each_ctrl_c(work, only_under=os.path.dirname(locks.__file__)):
        landed += 1
        if any(locks._HELD.values()) or locks._WHO or _who_files(folder):
            left.append(f"{point}: counted {sorted(locks._HELD.values())}, "
                        f"holder files {_who_files(folder)}")
            locks._HELD.clear()
            locks._WHO.clear()
            for name in _who_files(folder):
                os.unlink(folder / name)
    assert landed > 100
    assert left == []
