"""Property tests: random pairs and triples of small archives (zip and tar; files, folders,
links) merged into one DEST that already holds user files and links, one after another and
all at once. Invariants: nothing outside DEST changes and every link in DEST leads inside
it; an accepted archive's members are all there with their bytes, and nothing else changed
(the last writer wins a path two archives share); a refused archive changes nothing; the
result of concurrent extractions is that of the accepted archives in some order."""
from __future__ import annotations

import io
import itertools
import os
import shutil
import stat
import tarfile
import tempfile
import threading
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivestage.errors import ArchiveError, UnsafeArchiveError
from drivestage.extract import extract_archive
from tests.test_extract import snapshot

NAMES = ["VOCdevkit", "a", "d", "up", "ext", "in", "mine.txt"]
TARGETS = ["..", "../..", ".", "a", "d/up", "d/up/..", "up", "../a", "ext", "ext/secret.txt",
           "d/in/..", "in/up", "/etc", "../../outside", "VOCdevkit/a", "mine.txt"]
# What DEST may hold before: user files, a user link leading outside, one leading inside.
USER = {"mine.txt": b"the user's", "a": b"a file of the user's", "d/user.txt": b"user in d",
        "VOCdevkit/keep.txt": b"keep", "ext": "->../outside", "d/in": "->.."}

paths = st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map("/".join)
# Members known to matter (links that only escape together, members through the user's
# links, folders over files and files over folders), drawn as often as random ones.
CURATED = [("d/up", "link", ".."), ("esc", "link", "d/up/.."), ("x", "link", "d/in/.."),
           ("l", "link", "ext/secret.txt"), ("d/up", "dir", None), ("ext/x", "file", b"x"),
           ("d/in/f", "file", b"f"), ("a", "dir", None), ("a/b", "file", b"ab"),
           ("mine.txt", "file", b"theirs"), ("d", "file", b"d"), ("VOCdevkit/keep.txt", "dir", None),
           ("VOCdevkit/a", "link", "../a"), ("in", "link", "d"), ("in/up", "file", b"iu")]
members = st.one_of(
    st.sampled_from(CURATED),
    st.tuples(paths, st.just("file"), st.binary(max_size=40)),
    st.tuples(paths, st.just("dir"), st.none()),
    st.tuples(paths, st.just("link"), st.sampled_from(TARGETS)),
)
archives = st.tuples(st.sampled_from(["zip", "tar", "tgz"]),
                     st.lists(members, min_size=1, max_size=6))
users = st.sets(st.sampled_from(sorted(USER)), max_size=len(USER))

pytestmark = pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")


def write_archive(path: str, fmt: str, items) -> str:
    if fmt == "zip":
        with zipfile.ZipFile(path, "w") as z:
            for name, kind, data in items:
                info = zipfile.ZipInfo(name + "/" if kind == "dir" else name, (2020, 1, 1, 0, 0, 0))
                info.create_system = 3
                mode = {"file": stat.S_IFREG | 0o644, "dir": stat.S_IFDIR | 0o755,
                        "link": stat.S_IFLNK | 0o777}[kind]
                info.external_attr = mode << 16
                z.writestr(info, data.encode() if kind == "link" else (data or b""))
        return path
    with tarfile.open(path, "w:gz" if fmt == "tgz" else "w") as t:
        for name, kind, data in items:
            info = tarfile.TarInfo(name)
            info.mtime = 1_600_000_000
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                t.addfile(info)
            elif kind == "link":
                info.type, info.linkname = tarfile.SYMTYPE, data
                t.addfile(info)
            else:
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    return path


def fill_user(dest: str, chosen) -> None:
    for rel in sorted(chosen):
        full = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        value = USER[rel]
        if isinstance(value, bytes):
            with open(full, "wb") as f:
                f.write(value)
        else:
            os.symlink(value[2:], full)


def apply(tree: dict, items) -> dict:
    """The model: DEST after an accepted archive (last member of a name wins)."""
    final: dict = {}
    for name, kind, data in items:
        final.pop(name, None)
        final[name] = (kind, data)
    out = dict(tree)
    for name, (kind, data) in final.items():
        parts = name.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if out.get(parent, 0) is not None:  # missing, or a file/link the folder replaces
                out[parent] = None
        if kind == "dir":
            if out.get(name, 0) is not None:
                out[name] = None
        else:
            out[name] = "->" + data if kind == "link" else data
    return out


def outside_dest(world: str) -> dict:
    return {k: v for k, v in snapshot(world).items() if not k.startswith("dest")}


def links_inside(dest: str, user_links: dict) -> None:
    real_dest = os.path.realpath(dest)
    for dirpath, dirnames, filenames in os.walk(dest):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, dest)
            if not os.path.islink(full) or user_links.get(rel) == os.readlink(full):
                continue  # the user's own link is the user's
            real = os.path.realpath(full)
            assert real == real_dest or real.startswith(real_dest + os.sep), \
                f"{rel} -> {os.readlink(full)} resolves to {real}"


def make_world(chosen):
    world = tempfile.mkdtemp(prefix="extract-prop-")
    os.makedirs(os.path.join(world, "outside"))
    with open(os.path.join(world, "outside", "secret.txt"), "wb") as f:
        f.write(b"secret")
    dest = os.path.join(world, "dest")
    os.makedirs(dest)
    fill_user(dest, chosen)
    return world, dest


def build(world: str, group) -> list[str]:
    return [write_archive(os.path.join(world, f"ar{i}.{fmt}"), fmt, items)
            for i, (fmt, items) in enumerate(group)]


def simple(items, tree) -> bool:
    """No links and no file where DEST has a folder: such an archive must be accepted."""
    if any(kind == "link" for _, kind, _ in items):
        return False
    final = {}
    for name, kind, _ in items:
        final.pop(name, None)
        final[name] = kind
    names = set(final)
    for name, kind in final.items():
        parts = name.split("/")
        if any("/".join(parts[:i]) in names and final["/".join(parts[:i])] != "dir"
               for i in range(1, len(parts))):
            return False  # the archive itself is inconsistent
        if kind != "dir" and tree.get(name, 0) is None:
            return False
    return True


@settings(max_examples=80, deadline=None, derandomize=True)
@given(group=st.lists(archives, min_size=2, max_size=3), chosen=users)
def test_sequential_merges_keep_every_invariant(group, chosen):
    world, dest = make_world(chosen)
    try:
        user_links = {k: v[2:] for k, v in USER.items() if k in chosen and isinstance(v, str)}
        paths_ = build(world, group)
        outside = outside_dest(world)
        tree = snapshot(dest)
        for path, (fmt, items) in zip(paths_, group):
            expect_accept = simple(items, tree)
            try:
                extract_archive(path, dest)
            except (UnsafeArchiveError, ArchiveError) as exc:
                assert not expect_accept, f"refused a plain archive: {exc}"
                assert snapshot(dest) == tree, "a refused archive changed DEST"
            else:
                tree = apply(tree, items)
                assert snapshot(dest) == tree
            assert outside_dest(world) == outside
            links_inside(dest, user_links)
        assert not [n for n in os.listdir(dest) if n.startswith(".drivestage-")]
    finally:
        shutil.rmtree(world)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(group=st.lists(archives, min_size=2, max_size=3), chosen=users)
def test_concurrent_merges_equal_some_sequential_order(group, chosen):
    world, dest = make_world(chosen)
    try:
        user_links = {k: v[2:] for k, v in USER.items() if k in chosen and isinstance(v, str)}
        paths_ = build(world, group)
        outside = outside_dest(world)
        accepted: list[int] = []
        start = threading.Barrier(len(paths_))
        lock = threading.Lock()

        def one(i):
            start.wait()
            try:
                extract_archive(paths_[i], dest)
            except (UnsafeArchiveError, ArchiveError):
                return
            with lock:
                accepted.append(i)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(paths_))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        got = snapshot(dest)
        assert outside_dest(world) == outside
        links_inside(dest, user_links)
        outcomes = []
        for n, order in enumerate(itertools.permutations(accepted)):
            seq_dest = os.path.join(world, f"seq{n}")
            os.makedirs(seq_dest)
            fill_user(seq_dest, chosen)
            try:
                for i in order:
                    extract_archive(paths_[i], seq_dest)
            except (UnsafeArchiveError, ArchiveError):
                continue  # not an order these merges could have run in
            outcomes.append(snapshot(seq_dest))
        assert got in outcomes
    finally:
        shutil.rmtree(world)

