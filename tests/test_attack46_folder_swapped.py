"""attack46: a folder of SRC swapped for a link to a folder outside SRC after the push's walk
(before its first upload). attackpush45 refused a link planted at a file's own name, but the
open followed a link on the way to it: the push sent a file outside SRC (``out/passwd``) as
``sub/passwd``, exit 0."""
from __future__ import annotations

import os

import pytest

from _cli import run
from _checkpoints import md5
from _drive_state import live_md5s
from _swaps import once_at, swapped_at

SECRET = b"root:x:0:0:a file outside SRC\n" * 10


def _refused_sending_nothing_outside(emulator, done, code, err, line):
    """The swap came, nothing with the outside file's bytes reached Drive, and the push
    ended 1 with ``line``."""
    assert done
    found = [f for f in emulator.files() if f.get("md5Checksum") == md5(SECRET)]
    assert found == [], err
    assert code == 1, err
    assert err.strip().splitlines()[-1] == line, err


@pytest.mark.timeout(60)
@pytest.mark.parametrize("method, at, changed", [
    # the push's first listing: after its walk, before any hash or upload
    ("GET", r"^/drive/v2/files", False),
    # as the upload's session opens, the file changed meanwhile: the upload sends it again
    # (or a copy of it as it is now), each time opened by its path again
    ("POST", r"^/upload/", True),
], ids=["after-the-walk", "while-its-file-is-sent"])
def test_a_folder_swapped_for_a_link_out_is_not_read_through(emulator, penv, proxy, tmp_path,
                                                             method, at, changed):
    src = tmp_path / "run"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "passwd").write_bytes(b"mine")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "passwd").write_bytes(SECRET)

    def saved_again() -> None:
        with open(src / "sub" / "passwd", "ab") as fh:
            fh.write(b" saved again")
    done = swapped_at(proxy, method, at, src / "sub", tmp_path / "sub.before", tmp_path / "out",
                      saved_again if changed else None)
    code, _, err = run("push", str(src), "drive:runs/a", "--jobs", "1")
    _refused_sending_nothing_outside(
        emulator, done, code, err,
        f"Error: {src}/sub became a link while the push ran (a folder when it began); "
        "not sent again: push again once it is a folder")


@pytest.mark.timeout(60)
def test_a_link_inside_src_pointed_outside_after_the_walk_is_not_read_through(
        emulator, penv, proxy, tmp_path):
    """A link the walk let through (to a file inside SRC) pointed at a file outside SRC
    after the walk: followed as it was let through, the push sent the outside file."""
    src = tmp_path / "run"
    src.mkdir()
    (src / "a.txt").write_bytes(b"mine")
    os.symlink("a.txt", src / "b.txt")
    (tmp_path / "passwd").write_bytes(SECRET)

    def repoint() -> None:
        os.symlink(tmp_path / "passwd", src / "b.swap")
        os.rename(src / "b.swap", src / "b.txt")
    # (the push's first listing: after its walk, before any hash or upload)
    done = once_at(proxy, "GET", r"^/drive/v2/files", repoint)
    code, _, err = run("push", str(src), "drive:runs/a", "--jobs", "1")
    _refused_sending_nothing_outside(
        emulator, done, code, err,
        f"Error: {src}/b.txt became a link out of SRC while the push ran (a link inside it "
        "when it began); not sent again: push again once it is a link inside it")
