"""A rerun of `pull -x` that must download the archive again (deleted to save room after its
extraction, as the old Colab recipe did with its zip; or changed by hand) while the members
of that very version are in place: they are not written again, whether the extraction
follows the download (a zip) or runs once it is done (a zip it cannot follow)."""
from __future__ import annotations

import json
import os

import pytest

from _archives import a_fixed_zip as a_zip, tree
from _cli import run

DATA = {"ds/a.txt": b"alpha", "ds/sub/b.txt": b"beta", "ds/c.txt": b"gamma"}


def _with_link(members: dict[str, bytes]) -> bytes:
    """A zip with a symlink member too: not one extracted while it downloads."""
    return a_zip(members, {"ds/to_a": "a.txt"})


def _inodes(root) -> dict[str, int]:
    """Every file and link under ``root`` but drivestage's own, by inode (never followed)."""
    out = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".drivestage"]
        for name in files:
            path = os.path.join(folder, name)
            out[os.path.relpath(path, root)] = os.lstat(path).st_ino
    return out


@pytest.mark.parametrize("make", [a_zip, _with_link], ids=["followed", "after"])
@pytest.mark.parametrize("removed", [[], ["ds/a.txt"]], ids=["archive", "archive+member"])
def test_a_redownload_writes_only_the_members_not_in_place(emulator, drive_env, tmp_path,
                                                            make, removed):
    blob = make(DATA)
    emulator.add_file("d/set.zip", blob)
    dest = tmp_path / "data"
    code, out, err = run("pull", "drive:d/set.zip", str(dest), "-x")
    assert code == 0, err
    staged = tree(dest)
    os.unlink(dest / "set.zip")
    for rel in removed:
        os.unlink(dest / rel)
    before = {rel: ino for rel, ino in _inodes(dest).items()}
    code, out, err = run("pull", "drive:d/set.zip", str(dest), "-x", "--json")
    assert code == 0, err
    said = json.loads(out)
    assert said["action"] == "download"
    kept = len(DATA) - len(removed) + (make is _with_link)
    assert said["members_kept"] == kept      # was 0: every member written again
    assert {rel: ino for rel, ino in _inodes(dest).items() if rel in before} == before
    assert tree(dest) == staged
    code, out, err = run("pull", "drive:d/set.zip", str(dest), "-x", "--json")
    assert json.loads(out)["action"] == "cached"
