"""A stamp whose member rows are damaged (a row that is not a record, no members field: a hand
edit, a file some tool rewrote) vouched for an extraction it no longer
describes: the damaged rows were dropped and their members never looked at, so a rerun said
"already staged" over a member that was gone (attackpull40). Such a stamp is not intact: the
rerun writes what is missing from the archive in DEST, and the stamp is whole again."""
from __future__ import annotations

import json
import os

import pytest

from _archives import a_fixed_zip as a_zip, tree
from _cli import run

DATA = {"ds/a.txt": b"alpha", "ds/b.txt": b"bravo", "ds/sub/c.txt": b"gamma"}


def _pull(dest) -> str:
    code, _, err = run("pull", "drive:d/set.zip", str(dest), "-x")
    assert code == 0, err
    return err


def _damage(dest, how: str) -> None:
    (path,) = [p for p in (dest / ".drivestage").iterdir() if p.name.endswith(".json")]
    stamp = json.loads(path.read_bytes())
    rows = stamp["members"]
    (at,) = [i for i, row in enumerate(rows) if row[0] == "ds/a.txt"]
    if how == "junk row":
        rows[at] = "ds/a.txt"
    elif how == "row cut short":
        rows[at] = rows[at][:3]
    elif how == "size as a word":
        rows[at][2] = "five"
    else:
        del stamp["members"]
    path.write_text(json.dumps(stamp))


@pytest.mark.parametrize("how", ["junk row", "row cut short", "size as a word",
                                 "no members"])
def test_a_stamp_with_damaged_rows_is_not_staged_over_a_missing_member(
        emulator, local_state, drive_env, fast_retries, tmp_path, how):
    emulator.add_file("d/set.zip", a_zip(DATA))
    dest = tmp_path / "data"
    _pull(dest)
    _damage(dest, how)
    os.unlink(dest / "ds/a.txt")

    err = _pull(dest)

    assert "already staged (" not in err   # (was: "3 members already staged", one gone)
    assert {k: v for k, v in tree(dest).items() if k != "set.zip"} == DATA
    assert "already staged (" in _pull(dest)
    (stamp,) = [json.loads(p.read_bytes()) for p in (dest / ".drivestage").iterdir()
                if p.name.endswith(".json")]
    assert sorted(row[0] for row in stamp["members"] if row[1] == "file") == sorted(DATA)
