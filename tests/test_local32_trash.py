"""local32: ``push SRC /local/DEST --delete`` said ``(to the Drive trash)`` of a directory
store, whose deletions go to ``DEST/.trash`` (attackds32)."""
from __future__ import annotations

import os

from _cli import run


def test_a_local_dest_names_its_own_trash(local_state, tmp_path):
    src, dest = tmp_path / "logs", tmp_path / "nas" / "logs"
    src.mkdir()
    (src / "a.txt").write_text("a\n")
    dest.mkdir(parents=True)
    (dest / "old.txt").write_text("old\n")

    code, _, err = run("push", str(src), str(dest), "--delete")

    assert code == 0, err
    trash = tmp_path / "nas" / ".trash"   # (the store's root is DEST's parent)
    assert f"--delete: removing 1 item from {dest} that are not in SRC (to {trash})" in err, err
    assert (trash / "logs" / "old.txt").read_text() == "old\n"
    assert sorted(os.listdir(dest)) == ["a.txt"]
