"""The records other archives' stamps hold for a path (stamps._Held, what a folder pull's
rerun asks for each archive) are copied in slices now (stamp_files.others), not built row by
row (500 archives sharing a path: n² rows looked at, a tenth of the rerun, rerun37).
Checked against the rule as it was written row by row, on random indexes: ranked, unranked
and mixed rows, the asking stamp's own rows anywhere (by its file or its id), within the
stamp cache's scope (the columns kept) and outside it."""
from __future__ import annotations

import bisect
import random

import pytest

from drivestage import stamp_cache
from drivestage.extract import MemberRecord
from drivestage.stamp_files import others


def _by_rows(rows, end, path, fid, rank):
    rows = rows[:end] if end is not None else rows
    return [m for r, p, f, m in rows
            if p != path and f != fid and (r is None or rank is None or r >= rank)]


@pytest.mark.parametrize("scoped", [False, True])
def test_the_slices_say_what_the_rows_said(scoped):
    rng = random.Random(37)
    with stamp_cache.scope() if scoped else _nothing():
        for _ in range(400):
            n = rng.randint(0, 12)
            ranked = rng.choice(["all", "none", "mixed"])
            rows = []
            for i in range(n):
                r = None if ranked == "none" or (ranked == "mixed" and rng.random() < .4) \
                    else rng.randint(0, 9)
                rows.append((r, rng.choice(["/s/a.json", "/s/b.json", None, f"/s/{i}"]),
                             rng.choice(["A", "B", f"id{i}"]),
                             MemberRecord(f"ds/x{i}", "file", size=i)))
            rows.sort(key=lambda r: -1 if r[0] is None else r[0], reverse=True)
            path, fid = rng.choice(["/s/a.json", None, "/s/z"]), rng.choice(["A", "B", "Z"])
            rank = rng.choice([None, rng.randint(0, 9)])
            end = None
            if rank is not None and rows and rows[-1][0] is not None:
                end = bisect.bisect_right(rows, -rank, key=lambda r: -(r[0] or 0))
            for _again in range(2):   # (the second time from the kept columns)
                assert others(rows, end, path, fid, rank) == \
                    _by_rows(rows, end, path, fid, rank), (rows, end, path, fid, rank)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
