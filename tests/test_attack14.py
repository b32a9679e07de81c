"""Attack 14 on the extraction's per-member shortcuts: what the differential runs (old
checks against the new, on random and crafted member lists, DEST trees and stamps) turned
up around them."""
from __future__ import annotations

import os
import subprocess
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
    return [n for n in os.listdir(dest) if n.startswith(TEMP_PREFIX)]


def _zip(path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> str:
    with zipfile.ZipFile(path, "w", method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return str(path)


def test_a_deep_archive_refused_while_written_leaves_no_temp_folder(deep_tmp):
    # A member 1,500 folders deep whose bytes fail their CRC: the refusal must say so, and
    # the temporary folder (1,500 folders deep) go. rmtree recursed once per folder: a
    # RecursionError instead of the message, the folder left in DEST.
    archive = _zip(deep_tmp / "deep.zip", {DEEP + "/f.txt": b"hello" * 1000},
                   zipfile.ZIP_STORED)
    raw = bytearray(open(archive, "rb").read())
    raw[raw.index(b"hello")] ^= 1
    with open(archive, "wb") as f:
        f.write(bytes(raw))
    dest = deep_tmp / "dest"
    with pytest.raises(ArchiveError, match=r"member 'd/d/.*/f\.txt' of .* fails its CRC-32"):
        extract_archive(archive, dest)
    assert _temp_folders(dest) == []
    assert extract_archive(_zip(deep_tmp / "ok.zip", {"x.txt": b"x"}), dest) == ["x.txt"]
    assert sorted(os.listdir(dest)) == [".drivestage", "x.txt"]


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
