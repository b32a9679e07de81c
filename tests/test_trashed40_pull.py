"""trashed40: ``pull drive:X`` where X is in Drive's trash, or inside a trashed folder. Drive
serves a trashed file's bytes to its owner like any other's, and a file inside a trashed
folder is itself trashed (``labels.trashed``, not explicitly). A pull must never stage those
bytes as if they were live: a path into the trash leads nowhere (every listing asks
``trashed=false``), and an id is read first and refused with one line naming the trash.
Refused rather than pulled with a warning: a run resumed from a checkpoint the user threw
away, or data they trashed as wrong, is worse than an error that says "restore it first",
which takes one click in Drive's trash."""
from __future__ import annotations

import pytest

from _cli import run

pytestmark = pytest.mark.usefixtures("local_state")   # (drivestage's state in tmp_path)


@pytest.mark.parametrize("target, trashed", [("runs/a/f.txt", "runs/a/f.txt"),
                                             ("runs/a/f.txt", "runs"),
                                             ("runs/a", "runs/a")])
def test_a_pull_by_id_of_an_item_in_the_trash_is_refused(emulator, drive_env, tmp_path, target,
                                                         trashed):
    emulator.add_file("runs/a/f.txt", b"hello")
    item = emulator.find(target)["id"]
    emulator.store.set_trashed(emulator.find(trashed)["id"], True)
    emulator.clear_requests()
    code, out, err = run("pull", f"drive:id:{item}", str(tmp_path / "out"))
    assert code == 1, err
    assert err.strip().splitlines()[-1] == \
        f"Error: drive:id:{item} is in the trash; restore it first"
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.txt"))
    assert not [r for r in emulator.requests if r.query.get("alt") == "media"]   # no byte


def test_a_path_not_found_and_not_in_the_trash_says_not_found(emulator, drive_env, tmp_path):
    emulator.add_file("runs/a/f.txt", b"hello")
    emulator.add_file("runs/b/g.txt", b"other")
    emulator.store.set_trashed(emulator.find("runs/b")["id"], True)
    code, out, err = run("pull", "drive:runs/c/f.txt", str(tmp_path / "out"))
    assert code == 1, err
    assert err.strip().splitlines()[-1].startswith(
        "Error: drive:runs/c not found (no item named 'c' in drive:runs"), err
