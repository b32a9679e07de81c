"""Symlinks are judged against DEST as it is after the merge: across archives, with links
already in DEST, in chains. Nothing is ever written or resolved outside DEST."""
from __future__ import annotations

import os
import tarfile

import pytest

from drivestage.errors import UnsafeArchiveError
from drivestage.extract import extract_archive
from tests.test_extract import make_tar, make_zip, snapshot, zip_symlink

LINK = tarfile.SYMTYPE


@pytest.fixture
def world(tmp_path):
    """tmp_path/dest (with a user file) and tmp_path/outside (which must never change)."""
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest/mine.txt").write_bytes(b"the user's")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside/secret.txt").write_bytes(b"secret")
    return tmp_path


def all_links_inside(dest) -> None:
    real_dest = os.path.realpath(dest)
    for dirpath, dirnames, filenames in os.walk(dest):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                real = os.path.realpath(full)
                assert real == real_dest or real.startswith(real_dest + os.sep), \
                    f"{full} -> {os.readlink(full)} resolves to {real}"


def refused(archive, dest, fragment: str, root) -> None:
    before = snapshot(root)
    with pytest.raises(UnsafeArchiveError) as err:
        extract_archive(archive, dest)
    assert fragment in str(err.value)
    assert snapshot(root) == before


def test_a_link_through_another_archives_link_is_refused(world):
    """The issue's case: A adds d/up -> .. (fine alone), B adds esc -> d/up/.. (lexically
    DEST itself): together esc would be DEST's parent."""
    dest = world / "dest"
    a = make_tar(world / "a.tar", [("d", None), ("d/up", LINK, "..")])
    b = make_tar(world / "b.tar", [("esc", LINK, "d/up/..")])
    extract_archive(a, dest)
    refused(b, dest, "symlink member 'esc' points to 'd/up/..'", world)
    all_links_inside(dest)


def test_the_same_pair_in_the_other_order(world):
    dest = world / "dest"
    a = make_tar(world / "a.tar", [("d", None), ("d/up", LINK, "..")])
    b = make_tar(world / "b.tar", [("esc", LINK, "d/up/..")])
    refused(b, dest, "symlink member 'esc' points to 'd/up/..'", world)
    extract_archive(a, dest)
    all_links_inside(dest)


def test_a_link_already_in_dest_is_judged_too(world):
    """A link an older version extracted (or the user made) that climbs after a name: the
    archive that would turn it into an escape is refused."""
    dest = world / "dest"
    os.symlink("d/up/..", dest / "esc")
    a = make_tar(world / "a.tar", [("d", None), ("d/up", LINK, "..")])
    refused(a, dest, f"{dest / 'esc'}", world)
    all_links_inside(dest)


def test_replacing_a_link_in_dest_that_another_link_climbs_through(world):
    dest = world / "dest"
    (dest / "a/b/c").mkdir(parents=True)
    (dest / "d").mkdir()
    os.symlink("../a/b/c", dest / "d/up")
    os.symlink("d/up/../../..", dest / "esc")  # a/b/c/../../.. = DEST: inside, today
    all_links_inside(dest)
    archive = make_zip(world / "dir.zip", [("d/up/x.txt", b"x", None)])  # d/up becomes a folder
    refused(archive, dest, f"{dest / 'esc'}", world)


def test_a_link_through_a_link_in_dest_that_leaves_dest(world):
    dest = world / "dest"
    os.symlink("../outside", dest / "ext")  # the user's own link, to a folder of theirs
    refused(make_tar(world / "l.tar", [("l", LINK, "ext/secret.txt")]), dest,
            "resolves outside the destination", world)
    refused(zip_symlink(world / "l.zip", [("sub/l", "../ext")]), dest,
            "resolves outside the destination", world)


def test_link_chains_inside_dest_are_kept(world):
    dest = world / "dest"
    archive = make_tar(world / "chain.tar", [("z", None), ("z/f.txt", b"F"), ("x", None),
                                             ("y", None), ("y/b", LINK, "../z"),
                                             ("x/a", LINK, "../y/b")])
    extract_archive(archive, dest)
    assert (dest / "x/a/f.txt").read_bytes() == b"F"
    # A link in DEST that stays inside may be traversed by a later archive's link.
    extract_archive(make_tar(world / "more.tar", [("w", LINK, "x/a/f.txt")]), dest)
    assert (dest / "w").read_bytes() == b"F"
    all_links_inside(dest)


@pytest.mark.parametrize("target", ["../y/b/..", "b/../../..", "./b/../c", "b/.."])
def test_a_target_that_climbs_after_a_name_is_refused(world, target):
    refused(make_tar(world / "c.tar", [("y", None), ("y/b", LINK, "."), ("y/c", LINK, target)]),
            world / "dest", f"points to {target!r}", world)


@pytest.mark.parametrize("target", ["/etc", "{dest}/mine.txt", "//x", "C:/x"])
def test_absolute_targets_are_refused_even_into_dest(world, target):
    target = target.format(dest=world / "dest")
    refused(make_tar(world / "abs.tar", [("l", LINK, target)]), world / "dest",
            f"points to {target!r}", world)


def test_members_never_written_through_a_link_in_dest(world):
    dest = world / "dest"
    (dest / "real").mkdir()
    (dest / "real/kept.txt").write_bytes(b"kept")
    os.symlink("real", dest / "VOC")
    (dest / "a").mkdir()
    os.symlink("../../outside", dest / "a/b")
    archive = make_zip(world / "v.zip", [("VOC/sub/x.txt", b"x", None), ("a/b/c.txt", b"c", None)])
    extract_archive(archive, dest)
    assert not os.path.islink(dest / "VOC") and not os.path.islink(dest / "a/b")
    assert (dest / "VOC/sub/x.txt").read_bytes() == b"x"
    assert (dest / "a/b/c.txt").read_bytes() == b"c"
    assert snapshot(dest / "real") == {"kept.txt": b"kept"}
    assert snapshot(world / "outside") == {"secret.txt": b"secret"}


def test_a_link_that_replaces_a_link_keeps_everything_inside(world):
    dest = world / "dest"
    os.symlink("mine.txt", dest / "l")
    extract_archive(make_tar(world / "l.tar", [("l", LINK, "other.txt")]), dest)
    assert os.readlink(dest / "l") == "other.txt"
    assert (dest / "mine.txt").read_bytes() == b"the user's"
