"""A merge journal's rows made once, as tuples (overlap42): the file holds the same JSON as
each record's ``to_json`` wrote, and the rows kept for :func:`journals.settle` are the
tuples a stamp's rows are compared as (:func:`drivestage.stamps.record_rows`).
"""
from __future__ import annotations

import json
import os

import drivestage.stamps as stamps
from drivestage.extract import MemberRecord, journals


def test_a_journal_holds_each_records_json_and_keeps_the_rows_a_stamp_vouches_with(tmp_path):
    dest = tmp_path / "d"
    dest.mkdir()
    records = [MemberRecord("ds/a.txt", "file", 3, 10**18 + 7, 42),
               MemberRecord("ds", "dir", 0, 5, 40),
               MemberRecord("ds/ln", "symlink", 5, 0, 43, "a.txt"),
               MemberRecord("ds/é b.txt", "file", 0, 0, 44)]
    made = [MemberRecord("ds", "dir", 0, 5, 40)]
    journals.note_merging(str(dest), str(tmp_path / "a.zip"), records, made=made)
    (name,) = [n for n in os.listdir(dest / ".drivestage") if n.endswith(journals.SUFFIX)]
    with open(dest / ".drivestage" / name, "rb") as fh:
        raw = fh.read()
    files = [r for r in records if r.kind != "dir"]
    assert raw == json.dumps({"members": [r.to_json() for r in files],
                              "made": [r.to_json() for r in made]}).encode()
    kept = journals.release(str(dest), str(tmp_path / "a.zip"))
    stamp = {"version": stamps.VERSION, "members": [r.to_json() for r in records]}
    assert kept == {name: [tuple(r.to_json()) for r in files]}
    assert set(kept[name]) <= set(stamps.record_rows(stamp))
