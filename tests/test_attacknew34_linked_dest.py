"""attacknew34: a local DEST that is itself a link leading out of its folder (``~/backup ->
/mnt/disk/backup``, a NAS mounted elsewhere) was refused by every command, exit 2: the store is
rooted at DEST's folder, and the link led "outside the store root". A pull into such a link
follows it (the user's choice, tests/test_attack15_tree.py); a push, its ``--delete`` and a
pull from it follow it now too, and the trash lies in the folder the link leads to."""
from __future__ import annotations

import os

from _cli import run


def test_push_delete_and_pull_through_a_dest_that_is_a_link(local_state, tmp_path):
    src, real, home = tmp_path / "src", tmp_path / "disk" / "backup", tmp_path / "home"
    src.mkdir()
    (src / "a.txt").write_text("a\n")
    real.mkdir(parents=True)
    (real / "old.txt").write_text("old\n")
    home.mkdir()
    os.symlink(real, home / "backup")

    code, _, err = run("push", str(src), str(home / "backup"), "--delete")

    assert code == 0, err
    assert (real / "a.txt").read_text() == "a\n"
    assert (real / ".drivestage-trash" / "old.txt").read_text() == "old\n"
    assert sorted(os.listdir(home)) == ["backup"]   # nothing beside the link

    code, _, err = run("pull", str(home / "backup"), str(tmp_path / "copy"))
    assert code == 0, err
    assert (tmp_path / "copy" / "backup" / "a.txt").read_text() == "a\n"
