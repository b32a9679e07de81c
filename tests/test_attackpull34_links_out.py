"""attackpull34: a local folder pulled whose links lead outside it, or nowhere.

A pull of a local folder (a Kaggle input, a mount, a folder of the user's) copies what is
inside it: a link to a file or folder inside is copied as that file or folder, and a link
leading outside the folder or nowhere is left out. It was left out without a word (a debug
line): ``train -> /mnt/shared/train`` was missing from DEST, the summary only counted fewer
files, and the pull exited 0. It is said once now, as a push says the links it skips.
"""
from __future__ import annotations

import os

import pytest

import _cli
from _archives import tree

WARNING = "WARNING drivestage.local_tree: "


@pytest.fixture
def src(tmp_path):
    """A folder with a file, a link to it, a link to a folder elsewhere and a dangling link."""
    outside = tmp_path / "shared" / "train"
    outside.mkdir(parents=True)
    (outside / "x.jpg").write_bytes(b"jpg")
    src = tmp_path / "input" / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"a")
    os.symlink("a.txt", src / "in.txt")
    os.symlink(outside, src / "train")
    os.symlink("gone.txt", src / "sub" / "dangling")
    return src


def _said(err: str) -> list[str]:
    return [line for line in err.splitlines() if "lead outside" in line]


def test_a_local_folder_pull_says_the_links_it_left_out(local_state, tmp_path, src):
    dest = tmp_path / "dest"

    code, out, err = _cli.run("pull", str(src), str(dest))

    assert code == 0, err
    assert _said(err) == [
        f"{WARNING}skipped 2 links of {src} that lead outside it or nowhere (sub/dangling, "
        "train): a pull copies what is inside the folder; copy what they lead to into it, "
        "or pull that on its own"]
    assert tree(dest / "src") == {"a.txt": b"a", "in.txt": b"a"}
    code, out, err = _cli.run("pull", str(src), str(dest), "--exclude", "train",
                              "--exclude", "sub/*")
    assert code == 0 and _said(err) == [], err


def test_a_loop_of_links_in_a_local_folder_pulled_is_said_not_fatal(local_state, tmp_path):
    """Two links leading to each other (ELOOP): the pull failed whole with `Too many levels
    of symbolic links`; they lead nowhere, and are said as such (a push skips them too)."""
    src = tmp_path / "input" / "src"
    src.mkdir(parents=True)
    (src / "a.txt").write_bytes(b"a")
    os.symlink("y", src / "x")
    os.symlink("x", src / "y")

    code, out, err = _cli.run("pull", str(src), str(tmp_path / "dest"))

    assert code == 0, err
    assert _said(err) == [f"{WARNING}skipped 2 links of {src} that lead outside it or nowhere "
                          "(x, y): a pull copies what is inside the folder; copy what they lead "
                          "to into it, or pull that on its own"]
    assert tree(tmp_path / "dest" / "src") == {"a.txt": b"a"}
