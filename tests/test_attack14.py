"""Attack 14 on the extraction's per-member shortcuts: what the differential runs (old
checks against the new, on random and crafted member lists, DEST trees and stamps) turned
up around them."""
from __future__ import annotations

import io
import os
import subprocess
import tarfile
import zipfile

import pytest

from drivestage.errors import ArchiveError
from drivestage.extract import TEMP_PREFIX, extract_archive
from drivestage.extract.tempdir import OWNER_LOCK

# Deeper than Python's recursion limit (1000): one-letter folders keep the path (3,001
# bytes) under PATH_MAX, so every file system takes it.
DEEP = "/".join(["d"] * 1500)


@pytest.fixture
def deep_tmp(tmp_path):
    """tmp_path, emptied after the test: pytest's own clean-up of old runs (shutil.rmtree)
    fails on a tree 1,500 folders deep, for every later pytest run on the machine."""
    yield tmp_path
    subprocess.run(["rm", "-rf", "--", *[str(p) for p in tmp_path.iterdir()]], check=True)


def _temp_folders(dest) -> list[str]:
    return [n for n in os.listdir(dest) if n.startswith(TEMP_PREFIX)] if dest.exists() else []


def _zip(path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> str:
    with zipfile.ZipFile(path, "w", method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return str(path)


def test_a_deep_archive_with_a_corrupt_member_is_refused_in_one_line(deep_tmp):
    # A member 1,500 folders deep whose bytes fail their CRC: the refusal must be one line,
    # and no temporary folder stay. rmtree recursed once per folder: a RecursionError
    # instead of the message, the folder left in DEST (now refused before anything is
    # written: past DEPTH_MAX).
    archive = _zip(deep_tmp / "deep.zip", {DEEP + "/f.txt": b"hello" * 1000},
                   zipfile.ZIP_STORED)
    raw = bytearray(open(archive, "rb").read())
    raw[raw.index(b"hello")] ^= 1
    with open(archive, "wb") as f:
        f.write(bytes(raw))
    dest = deep_tmp / "dest"
    with pytest.raises(ArchiveError, match=r"member 'd/d/.*'\.\.\. of deep\.zip lies 1500 folders "
                                           r"deep; drivestage extracts members at most 256"):
        extract_archive(archive, dest)
    assert _temp_folders(dest) == []
    assert extract_archive(_zip(deep_tmp / "ok.zip", {"x.txt": b"x"}), dest) == ["x.txt"]
    assert sorted(os.listdir(dest)) == [".drivestage", "x.txt"]


@pytest.mark.parametrize("fmt", ["zip", "tar"])
def test_a_member_nested_past_the_limit_is_refused_before_anything_is_written(deep_tmp, fmt):
    # 600 folders: extracted once, but a second archive sharing those folders (an update,
    # VOC2007 and VOC2012) raised RecursionError halfway through its merge, one call (and
    # two descriptors) per level; the owned-folder walk recurses the same way.
    deep = "/".join(["d"] * 600) + "/f.txt"
    if fmt == "zip":
        archive = _zip(deep_tmp / "a.zip", {deep: b"one"})
    else:
        archive = str(deep_tmp / "a.tar")
        with tarfile.open(archive, "w") as t:
            info = tarfile.TarInfo(deep)
            info.size = 3
            t.addfile(info, io.BytesIO(b"one"))
    dest = deep_tmp / "dest"
    with pytest.raises(ArchiveError, match=r"lies 600 folders deep; drivestage extracts "
                                           r"members at most 256 folders deep: flatten it"):
        extract_archive(archive, dest)
    assert not dest.exists()


def test_archives_sharing_folders_as_deep_as_allowed_merge(deep_tmp):
    deep = "/".join(["d"] * 256)  # validation.DEPTH_MAX
    dest = deep_tmp / "dest"
    assert extract_archive(_zip(deep_tmp / "a.zip", {deep + "/one": b"1"}), dest) == \
        [deep + "/one"]
    assert extract_archive(_zip(deep_tmp / "b.zip", {deep + "/two": b"2"}), dest) == \
        [deep + "/two"]
    with open(os.path.join(dest, deep, "one"), "rb") as f1, \
            open(os.path.join(dest, deep, "two"), "rb") as f2:
        assert (f1.read(), f2.read()) == (b"1", b"2")


def test_a_deep_stale_temp_folder_does_not_stop_later_extractions(deep_tmp):
    # What a killed extraction of such an archive leaves: its folder, whose owner lock no
    # one holds. The next extraction's sweep removes it; it raised RecursionError, and so
    # did every extraction into DEST after it.
    dest = deep_tmp / "dest"
    stale = dest / f"{TEMP_PREFIX}1-0123abcd"
    os.makedirs(stale, mode=0o700)
    (stale / OWNER_LOCK).touch()
    fd = os.open(stale, os.O_RDONLY | os.O_DIRECTORY)
    for name in DEEP.split("/"):  # os.makedirs recurses once per folder too
        os.mkdir(name, dir_fd=fd)
        sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = sub
    with open(os.open("partial.bin", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd), "wb") as f:
        f.write(b"x" * 100)
    outside = deep_tmp / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "sub" / "keep.txt").write_bytes(b"keep")
    os.symlink(str(outside), "out", dir_fd=fd)  # a link down there is removed, not followed
    os.close(fd)
    assert extract_archive(_zip(deep_tmp / "ok.zip", {"x.txt": b"x"}), dest) == ["x.txt"]
    assert _temp_folders(dest) == []
    assert (dest / "x.txt").read_bytes() == b"x"
    assert (outside / "sub" / "keep.txt").read_bytes() == b"keep"


def test_a_zip_member_with_no_name_is_no_traceback(tmp_path):
    # zipfile's ZipInfo.is_dir() reads filename[-1]: a member named "" (as a tar's "./"
    # root, nothing to write) raised IndexError out of the member list, for pull --extract
    # a traceback. Skipped as the tar root is; the other members are extracted.
    archive = str(tmp_path / "a.zip")
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(zipfile.ZipInfo("", (2020, 1, 1, 0, 0, 0)), b"")
        z.writestr("ok.txt", b"x")
    dest = tmp_path / "dest"
    assert extract_archive(archive, dest) == ["ok.txt"]
    assert sorted(os.listdir(dest)) == [".drivestage", "ok.txt"]


def test_a_member_below_a_file_costs_no_walk_of_every_members_folders():
    # 20,000 members 255 folders deep, and at the end one member below a file member: the
    # shortcut (no member below a leaf) is off, and the plain rule joined every folder of
    # every member, 255 * 255 / 2 strings each: 10 s of CPU for a 6 MB tar (a 2,000,000-
    # member one: hours) before the refusal. It must cost about what the list without
    # that member costs, and name the same member.
    import time

    from drivestage.extract.members import Entry
    from drivestage.extract.validation import check_members

    deep = "/".join(["d"] * 255)
    entries = [Entry(f"{deep}/f{i}", "file") for i in range(20_000)]
    start = time.process_time()
    check_members(entries, "a.tar")
    plain = time.process_time() - start
    start = time.process_time()
    with pytest.raises(ArchiveError, match=r"^member 'e/x' needs 'e' to be a folder, but the "
                                           r"archive also has a file of that name"):
        check_members(entries + [Entry("e", "file"), Entry("e/x", "file")], "a.tar")
    assert time.process_time() - start < 10 * plain + 0.5
