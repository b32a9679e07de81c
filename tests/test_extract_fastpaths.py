"""The per-member checks of a big member list take shortcuts (a folder's names judged once,
the rule on members below a file looked at only when some folder is a file, DEST walked only
below the folders it has, a stamp's paths judged by string search). Each shortcut must decide
exactly as the plain rule does, with the same message for the same member: here the plain
rules, written out member by member, are the reference, on random lists and DEST trees."""
from __future__ import annotations

import os
import posixpath
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivestage import stamps
from drivestage.errors import ArchiveError, DriveStageError
from drivestage.extract.members import Entry, ancestors
from drivestage.extract.merging import plan_merge
from drivestage.extract.validation import _judge_part, check_link_target, check_members

# Names that hit every rule: reserved in any case, long, non-ASCII (longer in bytes), plain.
PART = st.sampled_from(["a", "b", "VOCdevkit", ".drivestage", ".DriveStage-x", ".x.0123456789abcdef.partial",
                        "é" * 128, "x" * 255, "x" * 256, ".hidden", "l"])
PATH = st.lists(PART, min_size=1, max_size=4).map("/".join)
KIND = st.sampled_from(["file", "dir", "symlink", "hardlink"])
TARGET = st.sampled_from(["a", "../a", "..", "a/b", "/etc", "b/../a"])


@st.composite
def entry_lists(draw) -> list[Entry]:
    out = []
    for path, kind in draw(st.lists(st.tuples(PATH, KIND), max_size=12)):
        target = draw(TARGET) if kind == "symlink" else draw(PATH) if kind == "hardlink" else ""
        out.append(Entry(path, kind, target=target))
    return out


def plain_check_members(entries: list[Entry], archive: str) -> list[Entry]:
    """check_members as the rules read: every member's every folder, every name."""
    by_path: dict[str, Entry] = {}
    for e in entries:
        if e.path:
            by_path.pop(e.path, None)
            by_path[e.path] = e
    final = list(by_path.values())
    links = {e.path for e in final if e.kind == "symlink"}
    leaves = {e.path: e for e in final if e.kind != "dir"}
    seen: set[str] = set()
    for e in final:
        for part in e.path.split("/"):
            reserved, size = _judge_part.__wrapped__(part)
            if reserved:
                raise Refused("reserved", e.path)
            if size > 255:
                raise Refused("long", e.path)
        parts = e.path.split("/")
        for i in range(1, len(parts)):
            prefix = "/".join(parts[:i])
            if prefix in links:
                raise Refused("through", e.path)
            if prefix in leaves:
                raise Refused("below", e.path)
        if e.kind == "symlink":
            check_link_target(e.path, e.target)
        elif e.kind == "hardlink":
            if e.target not in seen or leaves.get(e.target) is None \
                    or leaves[e.target].kind != "file":
                raise Refused("hard", e.path)
        if e.kind == "file":
            seen.add(e.path)
    return final


class Refused(Exception):
    """The reference's refusal: which rule, which member."""


def _outcome(fn, *args):
    try:
        return "ok", [(e.path, e.kind) for e in fn(*args)]
    except (DriveStageError, Refused) as exc:
        return type(exc).__name__, exc.args


MESSAGES = {"reserved": "keeps for its own state", "long": "-byte name",
            "through": "through the symlink member", "below": "to be a folder",
            "hard": "hard link member"}


def _same_member_and_rule(plain: tuple, fast: tuple) -> None:
    if plain[0] != "Refused":  # accepted, or a link target refused: the very same outcome
        assert plain == fast
        return
    rule, member = plain[1]
    message = fast[1][0]
    assert MESSAGES[rule] in message, (plain, fast)
    named = member[:80] if rule == "long" else member
    assert f"member {named!r}" in message, (plain, fast)


@settings(max_examples=400, deadline=None)
@given(entry_lists())
def test_check_members_decides_as_the_plain_rules_do(entries):
    plain = _outcome(plain_check_members, entries, "a.zip")
    fast = _outcome(check_members, entries, "a.zip")
    _same_member_and_rule(plain, fast)


def test_check_members_names_the_first_member_below_a_file_not_a_later_one():
    entries = [Entry("ok/x", "file"), Entry("f", "file"), Entry("g/y", "file"),
               Entry("f/z", "file"), Entry("f/w", "file")]
    with pytest.raises(ArchiveError, match=r"member 'f/z' needs 'f' to be a folder"):
        check_members(entries, "a.zip")


def test_a_reserved_folder_name_is_refused_for_every_member_list_order():
    # The folder's names are judged once, for its first member: that member is the one named.
    entries = [Entry("d/.drivestage/a", "file"), Entry("d/.drivestage/b", "file")]
    with pytest.raises(DriveStageError, match=r"member 'd/\.drivestage/a' uses the name '\.drivestage'"):
        check_members(entries, "a.zip")
    with pytest.raises(DriveStageError, match=r"member 'd/\.drivestage/b' uses the name '\.drivestage'"):
        check_members(entries[::-1], "a.zip")


@given(st.lists(PATH, max_size=20))
def test_ancestors_are_every_folder_above_the_paths(paths):
    expected = {"/".join(p.split("/")[:i]) for p in paths for i in range(1, p.count("/") + 1)}
    assert ancestors(paths) == expected


DEST_PART = st.sampled_from(["a", "b", "c"])
DEST_PATH = st.lists(DEST_PART, min_size=1, max_size=3).map("/".join)


def _lay_out(root: str, layout: list[tuple[str, str]]) -> None:
    for path, kind in layout:
        full = os.path.join(root, path)
        if os.path.lexists(full) or not os.path.isdir(os.path.dirname(full)) or \
                os.path.islink(os.path.dirname(full)):
            continue
        if kind == "dir":
            os.mkdir(full)
        elif kind == "file":
            open(full, "w").close()
        else:
            os.symlink("a", full)


def plain_plan(dest: str, entries: list[Entry]):
    """plan_merge's walk as the rule reads: every path of the archive, parents first, each
    looked at when its parent merges into a real folder of DEST."""
    tree = {e.path: e for e in entries}
    for e in entries:
        parent = posixpath.dirname(e.path)
        while parent and parent not in tree:
            tree[parent] = Entry(parent, "dir")
            parent = posixpath.dirname(parent)
    kept, links, looked = set(), False, []
    for path in sorted(tree, key=lambda p: (p.count("/"), p)):
        parent = posixpath.dirname(path)
        if parent and parent not in kept:
            continue
        looked.append(path)
        try:
            mode = os.lstat(os.path.join(dest, path)).st_mode
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat.S_ISDIR(mode) and tree[path].kind != "dir":
            return ("refused", path)
        if stat.S_ISDIR(mode):
            kept.add(path)
        elif stat.S_ISLNK(mode):
            links = True
    return ("ok", frozenset(kept), links)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(DEST_PATH, st.sampled_from(["dir", "file", "link"])), max_size=10),
       st.lists(st.tuples(DEST_PATH, st.sampled_from(["dir", "file"])), min_size=1, max_size=10))
def test_the_merge_plan_walks_dest_as_the_plain_rule_does(tmp_path_factory, layout, members):
    dest = str(tmp_path_factory.mktemp("dest"))
    _lay_out(dest, layout)
    entries = list({p: Entry(p, k) for p, k in members}.values())
    expected = plain_plan(dest, entries)
    try:
        plan = plan_merge("a.zip", dest, entries)
        got = ("ok", plan.kept, plan.replaces_links)
    except ArchiveError as exc:
        path = str(exc).split(" member ", 1)[1].split(" is a file", 1)[0]
        got = ("refused", path)
    assert got == expected


def test_the_merge_plan_looks_at_one_path_for_a_whole_new_folder(tmp_path, monkeypatch):
    # A new VOCdevkit/ of 2,000 members: DEST lacks the folder, so nothing below is looked at.
    entries = [Entry(f"VOCdevkit/JPEGImages/{i:05d}.jpg", "file") for i in range(2000)]
    seen = []
    real = os.lstat

    def counting(path, *a, **k):
        seen.append(path)
        return real(path, *a, **k)

    monkeypatch.setattr(os, "lstat", counting)
    plan_merge("a.zip", str(tmp_path), entries)
    assert seen == [os.path.join(str(tmp_path), "VOCdevkit")]


@given(st.text(alphabet="ab./\0", max_size=8))
def test_a_stamped_path_is_looked_at_only_when_it_is_a_member_path(rel):
    parts = rel.split("/")
    plain_ok = bool(rel) and not rel.startswith("/") and "\0" not in rel and \
        not any(p in ("", ".", "..") for p in parts)
    looked = []
    real = os.lstat

    def counting(path, *a, **k):
        looked.append(path)
        return real(path, *a, **k)

    os_lstat, os.lstat = os.lstat, counting
    try:
        stamps._lstat("/nonexistent-dest", rel)
    finally:
        os.lstat = os_lstat
    assert looked == ([os.path.join("/nonexistent-dest", *parts)] if plain_ok else [])


@given(st.lists(st.binary(max_size=3000), max_size=5), st.integers(0, 2**32 - 1))
def test_the_crc_of_members_is_zlibs(pieces, start):
    # The extraction's CRC-32 (ISA-L's where installed) chained over pieces, as copy_raw
    # feeds it, is exactly zlib's.
    from zlib import crc32 as zlib_crc32

    from drivestage.extract.copying import crc32
    ours, theirs = start, start
    for piece in pieces:
        ours, theirs = crc32(piece, ours), zlib_crc32(piece, theirs)
    assert ours == theirs


def test_without_isal_the_extraction_checks_crcs_with_zlib(tmp_path):
    import subprocess
    import sys
    import zipfile

    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("d/x.txt", b"hello" * 1000)
    data = bytearray(archive.read_bytes())
    at = data.index(b"hello")
    data[at] ^= 1  # one flipped bit in the member's bytes: its CRC-32 fails
    archive.write_bytes(bytes(data))
    code = (
        "import sys, zlib; sys.modules['isal'] = None\n"  # as where it is not installed
        "from drivestage.extract import copying, extract_archive\n"
        "assert copying.crc32 is zlib.crc32\n"
        "try:\n"
        f"    extract_archive({str(archive)!r}, {str(tmp_path / 'out')!r})\n"
        "except Exception as exc:\n"
        "    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert f"member 'd/x.txt' of {archive} fails its CRC-32 check" in out
    assert not (tmp_path / "out" / "d").exists()


def plain_clean_name(raw: str) -> str:
    """clean_name as the rules read, every name split and joined."""
    if "\0" in raw:
        raise Refused("nul", raw)
    name = raw.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[0].isascii() and name[0].isalpha()
                                and name[1] == ":"):
        raise Refused("absolute", raw)
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise Refused("dotdot", raw)
    return "/".join(parts)


@settings(max_examples=2000)
@given(st.text(alphabet="ab./\\:\0C", max_size=10))
def test_member_names_are_cleaned_as_the_plain_rules_do(raw):
    from drivestage.errors import UnsafeArchiveError
    from drivestage.extract.members import clean_name
    try:
        expected = plain_clean_name(raw)
    except Refused as exc:
        with pytest.raises(UnsafeArchiveError, match={"nul": "NUL byte", "absolute": "absolute path",
                                                      "dotdot": "contains '..'"}[exc.args[0]]):
            clean_name(raw)
        return
    assert clean_name(raw) == expected
