"""trashed40: the lines a push and a pull print for a folder in Drive's trash
(docs/troubleshooting.md). The trashing lands at a chosen request through a proxy in front
of the emulator (tests/test_trashed40_push.py)."""
from __future__ import annotations

import pytest

from _cli import run
from _messages import error_line, renders, shown
from test_trashed40_push import _files, _in_trash, _trash_at_first_upload, _uploads


@renders("is in Drive's trash: restore it or choose another folder")
def test_a_folder_given_by_id_trashed_mid_push_ends_it_with_one_line(
        emulator, penv, proxy, tmp_path):
    """DEST named by id has no path that leads elsewhere: exit 1, one line naming the folder
    and the trash, and nothing sent after the answer that said so. It said "pushing again
    into the folder the path leads to now", then "restore it first"."""
    emulator.add_file("runs/a/old.txt", b"old")
    folder_id = emulator.find("runs/a")["id"]
    src, _ = _files(tmp_path)
    _trash_at_first_upload(proxy, emulator, folder_id)
    code, out, err = run("push", str(src), f"drive:id:{folder_id}", "--jobs", "1")
    assert code == 1, err
    line = error_line(err)
    shown("is in Drive's trash: restore it or choose another folder", line)
    assert line == (f"Error: drive:id:{folder_id} is in Drive's trash: restore it or choose "
                    "another folder (the files this push sent there are in the trash with it)")
    assert "pushing again" not in err, err
    assert _uploads(proxy) == 2   # (the one that landed, the one whose answer said so)
    assert _in_trash(emulator) == ["f0.txt", "f1.txt", "old.txt"]


@renders("is in the trash; restore it first")
@pytest.mark.parametrize("trashed, said", [
    ("runs/a", "drive:runs/a is in the trash; restore it first (the path "
               "drive:runs/a/f.txt goes through it)"),
    ("runs/a/f.txt", "drive:runs/a/f.txt is in the trash; restore it first")])
def test_a_pull_by_path_into_the_trash_says_so(emulator, penv, tmp_path,
                                              trashed, said):
    """A path leads nowhere through the trash (listings leave trashed items out): the line
    said "not found (no item named 'a' in drive:runs; names are case-sensitive)", and a
    user who had trashed the folder by mistake looked for a typo. One listing more, only
    for a pull that failed so; no byte from the trash."""
    emulator.add_file("runs/a/f.txt", b"hello")
    emulator.store.set_trashed(emulator.find(trashed)["id"], True)
    code, out, err = run("pull", "drive:runs/a/f.txt", str(tmp_path / "out"))
    assert code == 1, err
    line = error_line(err)
    shown("is in the trash; restore it first", line)
    assert line == f"Error: {said}", err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.txt"))
