"""A local archive extracted where it lies, found staged but for one member (pull29): the
repair wrote only what was not in place, and the summary said every member was extracted
(`2 members extracted`, `members_kept: 0`); the same bytes copied anew (a new identity,
verified by their md5) wrote nothing and said the same."""
from __future__ import annotations

import hashlib
import json
import os
import shutil

from _archives import a_fixed_zip as a_zip, tree
from _cli import run

DATA = {"ds/a.txt": b"alpha", "ds/b.txt": b"bravo"}


def _pull(src, dest) -> tuple[dict, str]:
    code, out, err = run("pull", str(src), str(dest), "-x", "--json")
    assert code == 0, err
    return json.loads(out), err


def test_a_repair_of_a_local_archive_says_what_it_wrote(local_state, tmp_path):
    blob = a_zip(DATA)
    (tmp_path / "in").mkdir()
    archive = tmp_path / "in/set.zip"
    archive.write_bytes(blob)
    dest = tmp_path / "d"
    _pull(archive, dest)
    kept = os.stat(dest / "ds/b.txt").st_ino
    os.unlink(dest / "ds/a.txt")

    again, _ = _pull(archive, dest)

    assert (again["action"], again["members"], again["members_kept"]) == ("extract", 2, 1)
    assert os.stat(dest / "ds/b.txt").st_ino == kept
    assert tree(dest) == DATA
    code, _, err = run("pull", str(archive), str(dest), "-x")   # the summary, as shown
    assert code == 0 and ", 2 members already staged, " in err, err
    os.unlink(dest / "ds/a.txt")
    code, _, err = run("pull", str(archive), str(dest), "-x")
    assert code == 0 and ": extracted and md5 verified (216 B, md5 " in err and \
        ", 1 member extracted, 1 already staged, " in err, err    # was "2 members extracted"

    shutil.copyfile(archive, tmp_path / "copy")       # the same bytes anew: a new identity
    os.replace(tmp_path / "copy", archive)
    code, _, err = run("pull", str(archive), str(dest), "-x")
    assert code == 0, err
    md5 = hashlib.md5(blob).hexdigest()
    assert f": md5 verified (216 B, md5 {md5}, 2 members already staged, " in err, err
    # (was "(216 B, no md5 on Drive, 2 members extracted, …)": none was, and it was hashed)
    assert os.stat(dest / "ds/b.txt").st_ino == kept
    assert tree(dest) == DATA
