"""The tail of a ``pull -x`` after its merge (tail39): settling its own journal compares the
stamp's rows as they are (:func:`drivestage.stamps.record_rows`), without parsing its 20,000
rows back into records first; :func:`drivestage.mtimes.not_in_place` judges a member as
before, with its lstat and its path check inline.
"""
from __future__ import annotations

import os

import pytest

import _cli
import drivestage.stage_extraction as stage_extraction
import drivestage.stamps as stamps
from _archives import a_fixed_zip, tree
from drivestage.extract import MemberRecord
from drivestage.mtimes import _lstat, not_in_place, shows

MEMBERS = {f"ds/{i:03d}.txt": f"member {i}\n".encode() for i in range(120)}


def test_a_pull_settles_its_journal_without_parsing_its_stamp_back(
        emulator, local_state, drive_env, fast_retries, tmp_path, monkeypatch):
    """A pull -x of 120 members: its journal goes, and no stamp row was made a record again
    for it (120 before)."""
    emulator.add_file("F/a.zip", a_fixed_zip(MEMBERS))
    dest = tmp_path / "data"
    parsed: list[int] = []
    settle, from_json = stage_extraction.settle_journals, MemberRecord.from_json.__func__

    def counting(cls, row):
        parsed[-1] += 1
        return from_json(cls, row)

    def settling(*args, **kw):
        parsed.append(0)
        monkeypatch.setattr(MemberRecord, "from_json", classmethod(counting))
        try:
            return settle(*args, **kw)
        finally:
            monkeypatch.setattr(MemberRecord, "from_json", classmethod(from_json))

    monkeypatch.setattr(stage_extraction, "settle_journals", settling)

    _cli.ok("pull", "drive:F/a.zip", str(dest), "-x")

    assert parsed == [0]
    assert sorted(n for n in os.listdir(dest / ".drivestage") if n.endswith(".merging")) == []
    assert {k: v for k, v in tree(dest).items() if not k.endswith(".zip")} == MEMBERS
    (stamp,) = stamps.every(str(dest))
    assert stamp["extracted"] is True and len(stamps.records(stamp)) == len(MEMBERS)


def test_record_rows_are_the_records_rows():
    """Each row as its record writes it: a well-typed row as it is, any other through the
    record (a bool, a number as text, a float) or left out (damaged), as records() does."""
    rows = [["a", "file", 3, 10, 7, ""], ["b", "file", True, 10, 7, ""],
            ["c", "file", "3", 10, 7, ""], ["d", "file", 3.0, 10.5, 7, ""],
            ["e", "file", 3, 10], ["f", "symlink", 1, 0, 9, "x"], "junk", ["g", "dir", 0, 0, 1,
                                                                           ""]]
    for key in ("members", "stale"):
        stamp = {"version": stamps.VERSION, key: rows}
        got = stamps.record_rows(stamp, key)
        assert got == [tuple(r.to_json()) for r in stamps.records(stamp, key)]
        assert len(got) == 6 and all(type(v) is int for row in got for v in row[2:5])
    assert stamps.record_rows({"version": 1, "members": rows}) == []
    assert stamps.record_rows({"version": stamps.VERSION, "members": "junk"}) == []


def _reference(dest, members, siblings=None, shown=None):
    """not_in_place as it was: _lstat and shows for each member."""
    for m in members:
        st = _lstat(dest, m.path)
        if st is None:
            return m.path
        if not shows(dest, m, st, shown) and \
                not any(shows(dest, o, st, shown) for o in (siblings or {}).get(m.path, ())):
            return m.path
    return None


@pytest.mark.parametrize("where", ["abs", "slash", "relative", "empty"])
def test_not_in_place_judges_as_before(tmp_path, monkeypatch, where):
    """Absent, another kind, size or mtime (a coarser one counts), a link elsewhere, a path
    that is not a member's, a sibling's member: the same first member as before, wherever
    DEST is named from (relative, "" for the current folder)."""
    root = tmp_path / "d"
    (root / "ds").mkdir(parents=True)
    (root / "ds" / "f").write_bytes(b"abc")
    (root / "ds" / "g").write_bytes(b"abcd")
    os.utime(root / "ds" / "g", ns=(0, 5 * 10**9))
    (root / "ds" / "sub").mkdir()
    os.symlink("f", root / "ds" / "ln")
    (tmp_path / "outside").write_bytes(b"abc")
    f = os.lstat(root / "ds" / "f")
    dest = {"abs": str(root), "slash": f"{root}/", "relative": "d", "empty": ""}[where]
    monkeypatch.chdir(root if where == "empty" else tmp_path)

    def rec(path, kind="file", size=3, mtime=f.st_mtime_ns, target=""):
        return MemberRecord(path, kind, size, mtime, 0, target)

    good = [rec("ds/f"), rec("ds/g", size=4, mtime=5 * 10**9 + 123), rec("ds/sub", "dir", 0, 0),
            rec("ds/ln", "symlink", 1, 0, "f"), rec("ds", "dir", 0, 0)]
    bad = [rec("ds/none"), rec("ds/sub"), rec("ds/f", size=4), rec("ds/f", mtime=1),
           rec("ds/f", "dir", 0, 0), rec("ds/ln", "symlink", 1, 0, "g"), rec("../outside"),
           rec("ds//f"), rec("./ds/f"), rec("ds/f/"), rec(""), rec("/ds/f"), rec("ds/\0f")]
    for shown in (None, 10**9, 1):
        assert not_in_place(dest, good, shown=shown) == _reference(dest, good, shown=shown) \
            == (None if shown != 1 else "ds/g")
        for m in bad:
            assert not_in_place(dest, [*good, m], shown=shown) == \
                _reference(dest, [*good, m], shown=shown) == \
                ("ds/g" if shown == 1 else m.path), m
    siblings = {"ds/f": [rec("ds/f", size=1), rec("ds/f")]}
    other = rec("ds/f", mtime=1)
    assert not_in_place(dest, [other], siblings) is None
    assert _reference(dest, [other], siblings) is None
    looked: dict[str, os.stat_result] = {}
    assert not_in_place(dest, good, looked=looked) is None
    assert sorted(looked) == sorted(m.path for m in good)
    assert looked["ds/f"].st_ino == f.st_ino


def test_a_pulls_check_and_merge_share_one_tree(
        emulator, local_state, drive_env, fast_retries, tmp_path, monkeypatch):
    """The tree of a pull -x's members is built once: its check and its merge under the lock
    ask for the same list's (20,000 members each time before)."""
    import drivestage.extract.job as job

    emulator.add_file("F/a.zip", a_fixed_zip(MEMBERS))
    trees: list[dict] = []
    plan_merge = job.plan_merge

    def planning(*args, **kw):
        plan = plan_merge(*args, **kw)
        trees.append(plan.tree)
        return plan

    monkeypatch.setattr(job, "plan_merge", planning)
    _cli.ok("pull", "drive:F/a.zip", str(tmp_path / "data"), "-x")
    assert len(trees) == 2 and trees[0] is trees[1]
    assert sorted(trees[0]) == ["ds", *sorted(MEMBERS)]


def test_archive_tree_of_another_or_a_longer_list_is_built_anew():
    """The same list, unchanged, gets the same tree; an equal new list or the list grown
    (a tar's, read as it arrives) gets its own."""
    from drivestage.extract.members import Entry
    from drivestage.extract.merging import archive_tree

    entries = [Entry("a/b", "file", 1), Entry("a/c", "file", 1)]
    tree = archive_tree(entries)
    assert archive_tree(entries) is tree and sorted(tree) == ["a", "a/b", "a/c"]
    again = archive_tree(list(entries))
    assert again is not tree and again == tree
    entries.append(Entry("d/e", "file", 1))
    assert sorted(archive_tree(entries)) == ["a", "a/b", "a/c", "d", "d/e"]
    assert sorted(tree) == ["a", "a/b", "a/c"]   # (the first one as it was)
