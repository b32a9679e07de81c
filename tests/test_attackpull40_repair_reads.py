"""A ``pull -x`` that puts back a member deleted by hand reads its stamp and parses its
member rows a bounded number of times, as a folder pull does (attackpull40): outside a
folder pull's stamp cache, each look read the stamp file again and parsed its rows again,
5-6 reads and 4-6 parses of every row for one member put back (a 60,000-member archive's
repair took longer than its first pull: 11 s against 7.7 on the loaded 2-core machine)."""
from __future__ import annotations

import os

import pytest

import _cli
import drivestage.stamp_files as stamp_files
from _archives import a_fixed_zip, tree
from drivestage.extract import MemberRecord

MEMBERS = {f"ds/{i:03d}.txt": f"member {i}\n".encode() for i in range(100)}


@pytest.mark.parametrize("how", ["deleted", "edited"])
def test_putting_back_one_member_parses_the_stamp_once(
        emulator, local_state, drive_env, fast_retries, tmp_path, monkeypatch, how):
    emulator.add_file("F/a.zip", a_fixed_zip(MEMBERS))
    dest = tmp_path / "data"
    _cli.ok("pull", "drive:F/a.zip", str(dest), "-x")
    if how == "deleted":
        os.unlink(dest / "ds/042.txt")
    else:
        (dest / "ds/042.txt").write_bytes(b"mine\n")
    reads, rows = [0], [0]
    parser, from_json = stamp_files._parser, MemberRecord.from_json.__func__

    def counting_parser(where):
        parse = parser(where)

        def counted(*args):
            reads[0] += 1
            return parse(*args)
        return counted

    def counting_rows(cls, row):
        rows[0] += 1
        return from_json(cls, row)

    monkeypatch.setattr(stamp_files, "_parser", counting_parser)
    monkeypatch.setattr(MemberRecord, "from_json", classmethod(counting_rows))

    err = _cli.run("pull", "drive:F/a.zip", str(dest), "-x")[2]

    assert "1 member extracted" in err, err
    assert {k: v for k, v in tree(dest).items() if k != "a.zip"} == MEMBERS
    # The stamp read as the pull starts and once after each of its two writes (another
    # file each time), its rows parsed twice in all (5-6 reads and 4 parses of each row
    # before).
    assert reads[0] <= 3 and rows[0] <= 2 * (len(MEMBERS) + 1), (reads, rows)
