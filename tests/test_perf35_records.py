"""``MemberRecord.from_json`` sets a record's fields at once (perf35: a frozen dataclass's
``__init__`` cost more than half of reading a stamp's 20,000 rows): what it makes is the very
record the constructor makes, and what it refuses is refused as before. A guard, not a
defect's test: the change is in CPU time only (``bench/pull_ab.py``)."""
from __future__ import annotations

import dataclasses
import pickle

import pytest

from drivestage.extract.records import MemberRecord

ROWS = [
    ["VOCdevkit/VOC2007/JPEGImages/000001.jpg", "file", 53000, 1733400000123456789, 1234567, ""],
    ["ds/link", "symlink", 5, 0, 99, "a.txt"],
    ["ds", "dir", 0, 0, 0, ""],
    ("ds/tuple.txt", "file", 1, 2, 3, ""),                  # any sequence of six
    ["ds/ö.txt", "file", "7", 8.0, True, ""],               # converted as the constructor is
]


@pytest.mark.parametrize("row", ROWS)
def test_from_json_makes_the_constructor_s_record(row):
    got = MemberRecord.from_json(row)
    want = MemberRecord(str(row[0]), str(row[1]), int(row[2]), int(row[3]), int(row[4]),
                        str(row[5]))
    assert got == want and hash(got) == hash(want) and repr(got) == repr(want)
    assert dataclasses.asdict(got) == dataclasses.asdict(want)
    assert dataclasses.replace(got, ino=1) == dataclasses.replace(want, ino=1)
    assert pickle.loads(pickle.dumps(got)) == want
    assert got.to_json() == want.to_json()
    assert [type(v) for v in got.to_json()] == [str, str, int, int, int, str]
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.size = 1  # type: ignore[misc]


@pytest.mark.parametrize("row, error", [
    (["a", "file", 1, 2, 3], ValueError),                   # five fields
    (["a", "file", 1, 2, 3, "", "x"], ValueError),          # seven
    (["a", "file", "x", 2, 3, ""], ValueError),             # a size that is no number
    (["a", "file", None, 2, 3, ""], TypeError),
    (None, TypeError),
])
def test_from_json_refuses_what_it_refused(row, error):
    with pytest.raises(error):
        MemberRecord.from_json(row)
