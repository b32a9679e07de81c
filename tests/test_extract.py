"""Safe extraction: exact trees written, hostile archives refused with DEST untouched."""
from __future__ import annotations

import io
import os
import stat
import struct
import tarfile
import time
import zipfile

import pytest

from drivestage.errors import ArchiveError, DiskSpaceError, UnsafeArchiveError
from drivestage.extract import (TEMP_PREFIX, archive_kind, extract_archive, extracted_size,
                                remove_members)

MTIME = 1_600_000_000  # a fixed, whole-second UTC time (2020-09-13)


def snapshot(root) -> dict[str, bytes | str | None]:
    """Every path under root: file bytes, symlink target, or None for folders (drivestage's
    state folders, where the merge lock lives, left out)."""
    out: dict[str, bytes | str | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".drivestage"]
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            if os.path.islink(full):
                out[rel] = "->" + os.readlink(full)
            elif os.path.isdir(full):
                out[rel] = None
            else:
                with open(full, "rb") as f:
                    out[rel] = f.read()
    return out


def make_zip(path, members, compression=zipfile.ZIP_DEFLATED):
    """members: list of (name, bytes | None for a folder, unix mode or None)."""
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for name, data, mode in members:
            info = zipfile.ZipInfo(name, time.localtime(MTIME)[:6])
            info.compress_type = compression
            if mode is not None:
                info.create_system = 3
                info.external_attr = mode << 16
            z.writestr(info, b"" if data is None else data)
    return str(path)


def zip_symlink(path, links, files=()):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files:
            z.writestr(name, data)
        for name, target in links:
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, target)
    return str(path)


def make_tar(path, members, mode="w"):
    """members: (name, bytes) files, or (name, TarInfo-type, linkname) links, or (name, None) dirs."""
    with tarfile.open(path, mode) as t:
        for m in members:
            name = m[0]
            info = tarfile.TarInfo(name)
            info.mtime = MTIME
            if len(m) == 3:
                info.type, info.linkname = m[1], m[2]
                t.addfile(info)
            elif m[1] is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                t.addfile(info)
            else:
                info.size, info.mode = len(m[1]), 0o644
                t.addfile(info, io.BytesIO(m[1]))
    return str(path)


@pytest.fixture
def dest(tmp_path):
    d = tmp_path / "dest"
    d.mkdir()
    (d / "existing.txt").write_bytes(b"keep me")
    return d


FILES = [
    ("VOCdevkit/VOC2007/JPEGImages/000001.jpg", os.urandom(70_000), 0o644),
    ("VOCdevkit/VOC2007/Annotations/000001.xml", b"<annotation/>" * 100, 0o644),
    ("VOCdevkit/empty.txt", b"", 0o644),
    ("VOCdevkit/run.sh", b"#!/bin/sh\necho hi\n", 0o755),
    ("VOCdevkit/données/été ✓.txt", "unicode ✓".encode(), None),
    ("VOCdevkit/emptydir/", None, 0o40755),
    ("top.txt", b"top level", None),
]


def expected_tree(files=FILES):
    tree = {}
    for name, data, _ in files:
        parts = name.rstrip("/").split("/")
        for i in range(1, len(parts)):
            tree["/".join(parts[:i])] = None
        tree[name.rstrip("/")] = None if data is None else data
    return tree


@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED,
                                         zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_zip_extracts_exact_tree_modes_and_mtimes(tmp_path, dest, compression):
    archive = make_zip(tmp_path / "data.zip", FILES, compression)
    written = extract_archive(archive, dest)
    assert written == [n.rstrip("/") for n, _, _ in FILES]
    assert snapshot(dest) == {**expected_tree(), "existing.txt": b"keep me"}
    assert os.stat(dest / "VOCdevkit/run.sh").st_mode & 0o777 == 0o755
    assert os.stat(dest / "VOCdevkit/empty.txt").st_mode & 0o777 == 0o644
    assert os.stat(dest / "top.txt").st_mtime == MTIME
    assert os.stat(dest / "VOCdevkit/emptydir").st_mtime == MTIME
    assert extracted_size(archive) == sum(len(d) for _, d, _ in FILES if d)


@pytest.mark.parametrize("suffix, mode", [(".tar", "w"), (".tar.gz", "w:gz"), (".tgz", "w:gz"),
                                          (".tar.bz2", "w:bz2"), (".tar.xz", "w:xz")])
def test_tar_family_extracts_exact_tree(tmp_path, dest, suffix, mode):
    members = [(n.rstrip("/"), d) for n, d, _ in FILES]
    archive = make_tar(tmp_path / ("data" + suffix), members, mode)
    assert archive_kind(archive) == "tar"
    written = extract_archive(archive, dest)
    assert written == [n for n, _ in members]
    assert snapshot(dest) == {**expected_tree(), "existing.txt": b"keep me"}
    assert os.stat(dest / "VOCdevkit/VOC2007/JPEGImages/000001.jpg").st_mtime == MTIME


def test_kind_by_content_not_name(tmp_path):
    z = make_zip(tmp_path / "really_a_zip.tar", [("a", b"x", None)])
    t = make_tar(tmp_path / "really_a_tgz.zip", [("a", b"x")], "w:gz")
    (tmp_path / "notes.zip").write_text("just text, not an archive\n" * 40)
    (tmp_path / "plain.gz").write_bytes(__import__("gzip").compress(b"not a tar" * 100))
    assert archive_kind(z) == "zip"
    assert archive_kind(t) == "tar"
    assert archive_kind(tmp_path / "notes.zip") is None
    assert archive_kind(tmp_path / "plain.gz") is None
    assert archive_kind(tmp_path / "missing.zip") is None
    with pytest.raises(ArchiveError, match="notes.zip is not a zip or tar archive"):
        extract_archive(tmp_path / "notes.zip", tmp_path / "out")


# --- hostile archives ---------------------------------------------------------------------

HOSTILE = [
    ("zip", "zip-slip", lambda p: make_zip(p, [("ok.txt", b"1", None), ("../evil.txt", b"x", None)]),
     "'../evil.txt' contains '..'"),
    ("zip", "deep slip", lambda p: make_zip(p, [("a/b/../../../evil.txt", b"x", None)]), "contains '..'"),
    ("zip", "absolute", lambda p: make_zip(p, [("/tmp/evil.txt", b"x", None)]), "'/tmp/evil.txt' has an absolute path"),
    ("zip", "backslash slip", lambda p: make_zip(p, [("..\\evil.txt", b"x", None)]), "contains '..'"),
    ("zip", "drive letter", lambda p: make_zip(p, [("C:/evil.txt", b"x", None)]), "absolute path"),
    ("zip", "symlink out", lambda p: zip_symlink(p, [("link", "/etc/passwd")]), "'link' points to '/etc/passwd'"),
    ("zip", "symlink up", lambda p: zip_symlink(p, [("d/link", "../../x")]), "'d/link' points to '../../x'"),
    ("tar", "tar slip", lambda p: make_tar(p, [("ok", b"1"), ("../evil.txt", b"x")]), "'../evil.txt' contains '..'"),
    ("tar", "tar absolute", lambda p: make_tar(p, [("/etc/evil", b"x")]), "'/etc/evil' has an absolute path"),
    ("tar", "tar symlink out", lambda p: make_tar(p, [("lnk", tarfile.SYMTYPE, "../../outside")]),
     "'lnk' points to '../../outside'"),
    ("tar", "tar symlink abs", lambda p: make_tar(p, [("lnk", tarfile.SYMTYPE, "/etc")]), "points to '/etc'"),
    ("tar", "hardlink out", lambda p: make_tar(p, [("h", tarfile.LNKTYPE, "../outside.txt")]),
     "contains '..'"),
    ("tar", "hardlink abs", lambda p: make_tar(p, [("h", tarfile.LNKTYPE, "/etc/passwd")]), "absolute path"),
    ("tar", "hardlink to non-member", lambda p: make_tar(p, [("h", tarfile.LNKTYPE, "elsewhere.txt")]),
     "'h' points to 'elsewhere.txt', which is not a file earlier in the archive"),
    ("tar", "write through symlink", lambda p: make_tar(p, [("d", tarfile.SYMTYPE, "sub"), ("sub", None),
                                                             ("d/x.txt", b"x")]),
     "'d/x.txt' would be written through the symlink member 'd'"),
    ("tar", "escape via link chain", lambda p: make_tar(p, [("b", tarfile.SYMTYPE, "."),
                                                             ("a", tarfile.SYMTYPE, "b/../outside")]),
     "'a' points to 'b/../outside', which goes back up ('..') after entering a folder"),
    ("tar", "hard link to a link", lambda p: make_tar(p, [("x", b"x"), ("l", tarfile.SYMTYPE, "x"),
                                                         ("h", tarfile.LNKTYPE, "l")]),
     "hard link member 'h' points to 'l', which is not a file earlier in the archive"),
    ("tar", "link into the state folder", lambda p: make_tar(p, [("l", tarfile.SYMTYPE, ".drivestage/a.json")]),
     "symlink member 'l' points into '.drivestage'"),
    ("tar", "device", lambda p: make_tar(p, [("dev", tarfile.CHRTYPE, "")]), "device file or FIFO"),
    # drivestage's own state: stamps, locks, temporary folders, partial downloads
    ("zip", "forged stamp", lambda p: make_zip(p, [("ok.txt", b"1", None),
                                                  (".drivestage/data.zip.json", b"{}", None)]),
     "member '.drivestage/data.zip.json' uses the name '.drivestage', which drivestage keeps for its own state"),
    ("zip", "nested state folder", lambda p: make_zip(p, [("sub/.drivestage/x.json", b"{}", None)]),
     "member 'sub/.drivestage/x.json' uses the name '.drivestage'"),
    ("zip", "state folder, other case", lambda p: make_zip(p, [(".DriveStage/", None, None)]),
     "member '.DriveStage' uses the name '.DriveStage'"),
    ("tar", "state folder as a link", lambda p: make_tar(p, [(".drivestage", tarfile.SYMTYPE, "sub")]),
     "member '.drivestage' uses the name '.drivestage'"),
    ("tar", "temp folder", lambda p: make_tar(p, [(".drivestage-extract-1-ab/x", b"x")]),
     "uses the name '.drivestage-extract-1-ab'"),
    ("tar", "replaced folder", lambda p: make_tar(p, [("a/.drivestage-replaced-9-cd", None)]),
     "uses the name '.drivestage-replaced-9-cd'"),
    ("zip", "partial download", lambda p: make_zip(p, [("d/.VOC.zip.0123456789abcdef.partial", b"x", None)]),
     "uses the name '.VOC.zip.0123456789abcdef.partial'"),
    ("zip", "partial download's record", lambda p: make_zip(
        p, [(".VOC.zip.0123456789abcdef.ranges", b"{}", None)]),
     "uses the name '.VOC.zip.0123456789abcdef.ranges'"),
    ("tar", "partial download, other case", lambda p: make_tar(
        p, [(".VOC.ZIP.0123456789ABCDEF.PARTIAL", b"x")]),
     "uses the name '.VOC.ZIP.0123456789ABCDEF.PARTIAL'"),
]


@pytest.mark.parametrize("fmt, label, build, fragment", HOSTILE, ids=[h[1] for h in HOSTILE])
def test_hostile_archive_refused_and_nothing_written(tmp_path, dest, fmt, label, build, fragment):
    archive = build(tmp_path / f"hostile.{fmt}")
    before = snapshot(tmp_path)
    with pytest.raises(UnsafeArchiveError) as err:
        extract_archive(archive, dest)
    assert fragment in str(err.value)
    assert snapshot(tmp_path) == before


def test_symlinks_inside_dest_are_kept(tmp_path, dest):
    t = make_tar(tmp_path / "links.tar", [("data", None), ("data/a.txt", b"A"),
                                          ("latest", tarfile.SYMTYPE, "data/a.txt"),
                                          ("data/up", tarfile.SYMTYPE, "../data"),
                                          ("data/hard.txt", tarfile.LNKTYPE, "data/a.txt")])
    extract_archive(t, dest)
    assert os.readlink(dest / "latest") == "data/a.txt"
    assert (dest / "latest").read_bytes() == b"A"
    assert (dest / "data/up/a.txt").read_bytes() == b"A"
    assert (dest / "data/hard.txt").read_bytes() == b"A"
    assert os.stat(dest / "data/hard.txt").st_ino == os.stat(dest / "data/a.txt").st_ino
    z = zip_symlink(tmp_path / "links.zip", [("zdir/ln", "f.txt")], files=[("zdir/f.txt", b"F")])
    extract_archive(z, dest)
    assert os.readlink(dest / "zdir/ln") == "f.txt" and (dest / "zdir/ln").read_bytes() == b"F"


# --- truncated and corrupt ----------------------------------------------------------------

def _truncate(path, keep_fraction=0.6):
    data = open(path, "rb").read()
    open(path, "wb").write(data[: int(len(data) * keep_fraction)])


@pytest.mark.parametrize("kind", ["zip", "tar.gz", "tar"])
def test_truncated_archive_is_a_clear_error(tmp_path, dest, kind):
    big = [(f"d/f{i}.bin", os.urandom(30_000)) for i in range(6)]
    if kind == "zip":
        archive = make_zip(tmp_path / "t.zip", [(n, d, None) for n, d in big])
    else:
        archive = make_tar(tmp_path / f"t.{kind}", big, "w:gz" if kind == "tar.gz" else "w")
    _truncate(archive)
    before = snapshot(dest)
    with pytest.raises(ArchiveError) as err:
        extract_archive(archive, dest)
    msg = str(err.value)
    assert "truncated" in msg and "make the archive again and upload it" in msg
    assert snapshot(dest) == before


def test_corrupt_member_fails_crc_and_leaves_dest(tmp_path, dest):
    archive = make_zip(tmp_path / "c.zip", [("ok.txt", b"fine", None), ("bad.bin", b"\0" * 5000, None)],
                       zipfile.ZIP_STORED)
    raw = bytearray(open(archive, "rb").read())
    pos = raw.index(b"\0" * 5000) + 100
    raw[pos] ^= 0xFF
    open(archive, "wb").write(raw)
    before = snapshot(dest)
    with pytest.raises(ArchiveError, match="'bad.bin' .* fails its CRC-32 check"):
        extract_archive(archive, dest)
    assert snapshot(dest) == before


def _patch_central(archive, field_offset, fmt, value):
    raw = bytearray(open(archive, "rb").read())
    cd = raw.index(b"PK\x01\x02")
    struct.pack_into(fmt, raw, cd + field_offset, value)
    open(archive, "wb").write(raw)


def test_member_larger_than_declared_is_refused(tmp_path, dest):
    archive = make_zip(tmp_path / "bomb.zip", [("bomb.bin", b"\0" * 3_000_000, None)])
    _patch_central(archive, 24, "<I", 1000)  # uncompressed size claims 1000 bytes
    with pytest.raises(ArchiveError, match="inflates past its declared 1000 bytes"):
        extract_archive(archive, dest)
    assert snapshot(dest) == {"existing.txt": b"keep me"}


def test_encrypted_zip_is_refused(tmp_path, dest):
    archive = make_zip(tmp_path / "enc.zip", [("secret.txt", b"x", None)])
    _patch_central(archive, 8, "<H", 0x1)
    with pytest.raises(ArchiveError, match="'secret.txt' .* is encrypted"):
        extract_archive(archive, dest)


# --- disk space, empty archives, replacing ------------------------------------------------

def test_disk_space_checked_before_writing(tmp_path, dest):
    archive = make_zip(tmp_path / "d.zip", [("a.bin", os.urandom(10_000), None)])
    before = snapshot(tmp_path)
    with pytest.raises(DiskSpaceError) as err:
        extract_archive(archive, dest, free_bytes=lambda path: 5000)
    assert err.value.needed == 12288 and err.value.free == 5000
    assert "needs 12.0 KiB (12288 bytes), only 4.9 KiB (5000 bytes) free" in str(err.value)
    assert snapshot(tmp_path) == before


def test_disk_space_below_the_reserve_is_said_as_none_free(tmp_path, dest):
    # pull passes free space minus what it keeps in reserve, which can be below zero
    archive = make_zip(tmp_path / "d.zip", [("a.bin", os.urandom(10_000), None)])
    with pytest.raises(DiskSpaceError) as err:
        extract_archive(archive, dest, free_bytes=lambda path: -197515794)
    assert err.value.free == 0
    assert "needs 12.0 KiB (12288 bytes), only 0 B (0 bytes) free" in str(err.value)


@pytest.mark.parametrize("kind", ["zip", "tar", "tgz"])
def test_empty_archive(tmp_path, dest, kind):
    if kind == "zip":
        archive = make_zip(tmp_path / "e.zip", [])
    else:
        archive = make_tar(tmp_path / f"e.{kind}", [], "w:gz" if kind == "tgz" else "w")
    assert extract_archive(archive, dest) == []
    assert snapshot(dest) == {"existing.txt": b"keep me"}
    assert extracted_size(archive) == 0


def test_directories_only(tmp_path, dest):
    archive = make_zip(tmp_path / "dirs.zip", [("a/", None, None), ("a/b/c/", None, None), ("d/", None, None)])
    assert extract_archive(archive, dest) == ["a", "a/b/c", "d"]
    assert snapshot(dest) == {"existing.txt": b"keep me", "a": None, "a/b": None, "a/b/c": None, "d": None}


def test_merges_folders_and_replaces_files_like_unzip(tmp_path, dest):
    (dest / "VOCdevkit").mkdir()
    (dest / "VOCdevkit/other.txt").write_bytes(b"from another archive")
    (dest / "top.txt").write_bytes(b"old top")
    archive = make_zip(tmp_path / "v.zip", [("VOCdevkit/new.txt", b"new", None), ("top.txt", b"new top", None)])
    extract_archive(archive, dest)
    assert snapshot(dest) == {"existing.txt": b"keep me", "VOCdevkit": None,
                              "VOCdevkit/other.txt": b"from another archive",
                              "VOCdevkit/new.txt": b"new", "top.txt": b"new top"}


def test_voc2007_and_voc2012_archives_share_vocdevkit(tmp_path, dest):
    """The real VOC tarballs both start with VOCdevkit/: the second must not erase the first."""
    a = make_zip(tmp_path / "2007.zip", [("VOCdevkit/VOC2007/Annotations/1.xml", b"<a/>", None),
                                         ("VOCdevkit/VOC2007/JPEGImages/1.jpg", b"jpg", None)])
    b = make_zip(tmp_path / "2012.zip", [("VOCdevkit/VOC2012/Annotations/2.xml", b"<b/>", None)])
    extract_archive(a, dest)
    extract_archive(b, dest)
    extract_archive(a, dest)  # again: the same files, replaced in place
    files = {k: v for k, v in snapshot(dest).items() if v is not None}
    assert files == {"existing.txt": b"keep me",
                     "VOCdevkit/VOC2007/Annotations/1.xml": b"<a/>",
                     "VOCdevkit/VOC2007/JPEGImages/1.jpg": b"jpg",
                     "VOCdevkit/VOC2012/Annotations/2.xml": b"<b/>"}


def test_a_folder_in_the_archive_replaces_a_file_of_that_name(tmp_path, dest):
    (dest / "data").write_bytes(b"a file")
    archive = make_zip(tmp_path / "d.zip", [("data/x.txt", b"x", None)])
    extract_archive(archive, dest)
    assert (dest / "data/x.txt").read_bytes() == b"x"


def test_a_file_in_the_archive_never_replaces_a_folder(tmp_path, dest):
    (dest / "data").mkdir()
    (dest / "data/mine.txt").write_bytes(b"the user's")
    archive = make_zip(tmp_path / "f.zip", [("new.txt", b"n", None), ("data", b"a file", None)])
    before = snapshot(dest)
    with pytest.raises(ArchiveError, match=r"member data is a file, but .*data is a folder; "
                                           r"move that folder away or extract elsewhere"):
        extract_archive(archive, dest)
    assert snapshot(dest) == before


def test_remove_members_removes_only_what_the_old_version_wrote(tmp_path, dest):
    (dest / "VOC/sub").mkdir(parents=True)
    (dest / "VOC/sub/old.txt").write_bytes(b"old")
    (dest / "VOC/kept.txt").write_bytes(b"kept")
    (dest / "VOC/mine.txt").write_bytes(b"the user's")
    old = ["VOC", "VOC/sub", "VOC/sub/old.txt", "VOC/kept.txt", "../existing.txt"]
    assert remove_members(dest, old, keep={"VOC", "VOC/kept.txt"}) == 2
    assert snapshot(dest) == {"existing.txt": b"keep me", "VOC": None,
                              "VOC/kept.txt": b"kept", "VOC/mine.txt": b"the user's"}


def test_replacing_a_symlinked_top_level_never_touches_its_target(tmp_path, dest):
    outside = tmp_path / "bigdisk"
    outside.mkdir()
    (outside / "precious.txt").write_bytes(b"precious")
    os.symlink(outside, dest / "VOCdevkit")
    archive = make_zip(tmp_path / "v.zip", [("VOCdevkit/new.txt", b"new", None)])
    extract_archive(archive, dest)
    assert not os.path.islink(dest / "VOCdevkit")
    assert (dest / "VOCdevkit/new.txt").read_bytes() == b"new"
    assert (outside / "precious.txt").read_bytes() == b"precious"


def test_stale_temp_folder_from_dead_process_is_removed(tmp_path, dest):
    stale = dest / f"{TEMP_PREFIX}4194999-deadbeef"   # above any Linux pid_max
    (stale / "half").mkdir(parents=True)
    archive = make_zip(tmp_path / "s.zip", [("x.txt", b"x", None)])
    extract_archive(archive, dest)
    assert snapshot(dest) == {"existing.txt": b"keep me", "x.txt": b"x"}


# --- details ------------------------------------------------------------------------------

def test_setuid_stripped_and_owner_can_write(tmp_path, dest):
    archive = make_zip(tmp_path / "m.zip", [("suid", b"x", 0o4755), ("ro", b"y", 0o444)])
    extract_archive(archive, dest)
    assert os.stat(dest / "suid").st_mode & 0o7777 == 0o755
    assert os.stat(dest / "ro").st_mode & 0o7777 == 0o644


def test_duplicate_members_last_wins(tmp_path, dest):
    with pytest.warns(UserWarning):
        archive = make_zip(tmp_path / "dup.zip", [("a.txt", b"first", None), ("a.txt", b"second", None)])
    assert extract_archive(archive, dest) == ["a.txt"]
    assert (dest / "a.txt").read_bytes() == b"second"


def test_backslash_separators_become_folders(tmp_path, dest):
    archive = make_zip(tmp_path / "win.zip", [("dir\\file.txt", b"w", None)])
    assert extract_archive(archive, dest) == ["dir/file.txt"]
    assert (dest / "dir/file.txt").read_bytes() == b"w"


@pytest.mark.parametrize("jobs", [1, 3])
def test_progress_and_parallel_workers_give_the_same_tree(tmp_path, jobs):
    members = [(f"set/{i:03d}.bin", os.urandom(i * 37), None) for i in range(120)]
    archive = make_zip(tmp_path / "many.zip", members)
    seen = []
    out = tmp_path / f"out{jobs}"
    extract_archive(archive, out, jobs=jobs, progress=seen.append)
    assert sum(seen) == sum(len(d) for _, d, _ in members)
    assert snapshot(out) == {"set": None, **{n: d for n, d, _ in members}}


@pytest.mark.skipif(__import__("shutil").which("tar") is None, reason="needs GNU tar")
def test_gnu_sparse_tar_member(tmp_path, dest):
    import subprocess

    src = tmp_path / "src"
    src.mkdir()
    with open(src / "sparse.bin", "wb") as f:
        f.seek(3 * 1024 * 1024)
        f.write(b"tail data")
    archive = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--sparse", "--format=gnu", "-cf", str(archive), "-C", str(src), "sparse.bin"],
                   check=True)
    with tarfile.open(archive) as t:
        assert t.getmember("sparse.bin").issparse()
    assert extract_archive(archive, dest) == ["sparse.bin"]
    assert (dest / "sparse.bin").read_bytes() == (src / "sparse.bin").read_bytes()


def test_member_list_is_not_reused_for_a_changed_archive(tmp_path, dest):
    archive = make_tar(tmp_path / "a.tgz", [("one.txt", b"1")], "w:gz")
    assert extracted_size(archive) == 1
    os.unlink(archive)
    make_tar(tmp_path / "a.tgz", [("two.txt", b"22")], "w:gz")
    assert extracted_size(archive) == 2
    assert extract_archive(archive, dest) == ["two.txt"]
    assert (dest / "two.txt").read_bytes() == b"22"


def test_a_name_longer_than_the_file_system_allows_is_refused_before_writing(tmp_path, dest):
    archive = make_zip(tmp_path / "long.zip", [("ok.txt", b"1", None), ("d/" + "é" * 128, b"x", None)])
    before = snapshot(tmp_path)
    with pytest.raises(ArchiveError, match=r"has a 256-byte name; file systems allow 255 bytes: "
                                           r"shorten it in the archive"):
        extract_archive(archive, dest)
    assert snapshot(tmp_path) == before


def test_a_member_that_is_both_a_file_and_a_folder(tmp_path, dest):
    """The last member of a name wins; a folder's children need it to stay a folder."""
    archive = make_zip(tmp_path / "a.zip", [("a", b"file", None), ("a/", None, None)])
    assert extract_archive(archive, dest) == ["a"]
    assert os.path.isdir(dest / "a")
    archive = make_tar(tmp_path / "b.tar", [("b", None), ("b/x", b"x"), ("b", b"now a file")])
    with pytest.raises(ArchiveError, match="member 'b/x' needs 'b' to be a folder"):
        extract_archive(archive, dest)
