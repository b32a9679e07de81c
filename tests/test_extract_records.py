"""What an extraction wrote is recorded, and removing an old version's members removes only
files (and links) that are still exactly what that extraction wrote."""
from __future__ import annotations

import os
import tarfile

import pytest

from drivestage.extract import ExtractResult, MemberRecord, extract, remove_members
from tests.test_extract import make_tar, make_zip, snapshot


@pytest.fixture
def dest(tmp_path):
    d = tmp_path / "dest"
    d.mkdir()
    (d / "mine.txt").write_bytes(b"the user's")
    return d


def old_version(tmp_path, dest) -> ExtractResult:
    archive = make_tar(tmp_path / "v1.tar", [("VOC", None), ("VOC/sub", None),
                                             ("VOC/sub/old.txt", b"old"), ("VOC/kept.txt", b"kept"),
                                             ("VOC/latest", tarfile.SYMTYPE, "kept.txt"),
                                             ("VOC/hard.txt", tarfile.LNKTYPE, "VOC/kept.txt")])
    return extract(archive, dest)


def test_the_result_records_what_was_written(tmp_path, dest):
    result = old_version(tmp_path, dest)
    assert result.paths == ["VOC", "VOC/sub", "VOC/sub/old.txt", "VOC/kept.txt", "VOC/latest",
                            "VOC/hard.txt"]
    by_path = {r.path: r for r in result.members}
    for rel, rec in by_path.items():
        st = os.lstat(dest / rel)
        assert rec.mtime_ns == st.st_mtime_ns and rec.ino == st.st_ino
    assert (by_path["VOC/kept.txt"].kind, by_path["VOC/kept.txt"].size) == ("file", 4)
    assert by_path["VOC/hard.txt"].kind == "file" and by_path["VOC/hard.txt"].size == 4
    assert (by_path["VOC/latest"].kind, by_path["VOC/latest"].target) == ("symlink", "kept.txt")
    assert by_path["VOC"].kind == "dir"
    # JSON round trip, for stamps.
    assert [MemberRecord.from_json(r.to_json()) for r in result.members] == result.members


def test_removing_an_old_version_removes_exactly_its_untouched_members(tmp_path, dest):
    old = old_version(tmp_path, dest)
    (dest / "VOC/user.txt").write_bytes(b"added by the user")
    assert remove_members(dest, old.members, keep={"VOC", "VOC/kept.txt"}) == 4
    assert snapshot(dest) == {"mine.txt": b"the user's", "VOC": None,
                              "VOC/kept.txt": b"kept", "VOC/user.txt": b"added by the user"}


def test_a_file_the_user_replaced_is_never_removed(tmp_path, dest):
    old = old_version(tmp_path, dest)
    os.unlink(dest / "VOC/sub/old.txt")
    (dest / "VOC/sub/old.txt").write_bytes(b"new")   # same size, another file
    st = os.stat(dest / "VOC/kept.txt")
    os.unlink(dest / "VOC/kept.txt")                 # same size and mtime, another file
    (dest / "VOC/kept.txt").write_bytes(b"mine")
    os.utime(dest / "VOC/kept.txt", ns=(st.st_atime_ns, st.st_mtime_ns))
    os.unlink(dest / "VOC/latest")
    os.symlink("sub", dest / "VOC/latest")           # a link of the user's
    with open(dest / "VOC/hard.txt", "ab") as f:     # edited in place
        f.write(b"!")
    assert remove_members(dest, old.members, keep=set()) == 0
    assert snapshot(dest / "VOC") == {"sub": None, "sub/old.txt": b"new", "kept.txt": b"mine",
                                      "latest": "->sub", "hard.txt": b"kept!"}


def test_a_recorded_file_that_became_a_folder_keeps_its_contents(tmp_path, dest):
    old = old_version(tmp_path, dest)
    os.unlink(dest / "VOC/sub/old.txt")
    (dest / "VOC/sub/old.txt").mkdir()
    (dest / "VOC/sub/old.txt/inner.txt").write_bytes(b"inner")
    remove_members(dest, old.members, keep=set())
    assert (dest / "VOC/sub/old.txt/inner.txt").read_bytes() == b"inner"


def test_removal_never_goes_through_a_link_or_outside(tmp_path, dest):
    old = old_version(tmp_path, dest)
    moved = tmp_path / "elsewhere"
    os.rename(dest / "VOC", moved)                   # the user moved the folder out ...
    os.symlink(moved, dest / "VOC")                  # ... and linked it back
    assert remove_members(dest, old.members, keep=set()) == 0
    assert (moved / "sub/old.txt").read_bytes() == b"old"
    forged = [MemberRecord(path=p, kind="file", size=10, mtime_ns=0, ino=0)
              for p in ("../mine.txt", "/etc/passwd", "mine.txt")]
    assert remove_members(dest, forged, keep=set()) == 0
    assert (dest / "mine.txt").read_bytes() == b"the user's"


def test_plain_path_lists_never_go_through_links_nor_empty_folders(tmp_path, dest):
    """The old signature (a stamp's list of paths) still works, without following links."""
    (dest / "theirs").mkdir()
    (dest / "theirs/x.txt").write_bytes(b"the user's x")
    os.symlink("theirs", dest / "data")
    (dest / "full").mkdir()
    (dest / "full/y.txt").write_bytes(b"y")
    assert remove_members(dest, ["data/x.txt", "full", "../outside.txt"], keep=set()) == 0
    assert (dest / "theirs/x.txt").read_bytes() == b"the user's x"
    assert (dest / "full/y.txt").read_bytes() == b"y"


def test_extract_archive_is_the_paths_of_extract(tmp_path, dest):
    from drivestage.extract import extract_archive

    archive = make_zip(tmp_path / "a.zip", [("a/b.txt", b"b", None), ("c.txt", b"c", None)])
    assert extract_archive(archive, dest) == ["a/b.txt", "c.txt"]
    assert extract(archive, dest).paths == ["a/b.txt", "c.txt"]
