"""trashrace34: two pushes trashing one path of a local DEST at once both found the trash's
name free, and the second's ``rename`` replaced the first's file (attacknew34). A name taken
after it was found free is passed by now, for the next numbered one; the other process's
file stays. (``_free`` made to answer as it would have a moment before the other process
put its file there: the interleaving, not a success, is what is injected.)"""
from __future__ import annotations

import os

from drivestage import local_trash


def _racing(monkeypatch):
    real, calls = local_trash._free, []

    def answer(fd, name):
        calls.append(name)
        return name if len(calls) == 1 else real(fd, name)

    monkeypatch.setattr(local_trash, "_free", answer)


def _put(trash, full, name):
    fd = os.open(trash, os.O_RDONLY)
    try:
        return local_trash._put(str(full), fd, name)
    finally:
        os.close(fd)


def test_a_file_never_replaces_what_another_push_trashed(tmp_path, monkeypatch):
    trash = tmp_path / "trash"
    trash.mkdir()
    (trash / "a.pt").write_bytes(b"first push's")
    src = tmp_path / "a.pt"
    src.write_bytes(b"second push's")
    _racing(monkeypatch)

    assert _put(trash, src, "a.pt") == "a.pt.~1~"

    assert (trash / "a.pt").read_bytes() == b"first push's"
    assert (trash / "a.pt.~1~").read_bytes() == b"second push's"
    assert not src.exists()


def test_a_folder_never_replaces_a_folder_another_push_trashed(tmp_path, monkeypatch):
    trash = tmp_path / "trash"
    (trash / "sub").mkdir(parents=True)
    (trash / "sub" / "x.txt").write_text("first push's\n")
    src = tmp_path / "sub"
    src.mkdir()
    (src / "x.txt").write_text("second push's\n")
    _racing(monkeypatch)

    assert _put(trash, src, "sub") == "sub.~1~"

    assert (trash / "sub" / "x.txt").read_text() == "first push's\n"
    assert (trash / "sub.~1~" / "x.txt").read_text() == "second push's\n"
