"""The user's own files at member paths, left items of attackclob32 (pullleft33).

- A file the user unzipped by hand (the member's very bytes) and touched while the pull ran
  (``touch``, a backup tool, an editor that saves unchanged: new mtime, same bytes) between
  the compare outside the merge lock and the check under it was refused as holding "other
  bytes" (the member's copy, to compare with, was gone by then); the rerun adopted it. It
  is adopted now, compared again with the member as written.
"""
from __future__ import annotations

import os

import pytest

import _cli
from _archives import a_fixed_zip, a_tgz, tree
from drivestage.extract.occupied import Occupied

MEMBERS = {"ds/a.txt": b"labels of a\n", "ds/b.txt": b"labels of b\n"}


@pytest.mark.parametrize("name", ["set.zip", "set.tgz"])
def test_a_hand_unzipped_file_touched_during_the_pull_is_adopted(
        emulator, local_state, drive_env, fast_retries, tmp_path, monkeypatch, name):
    emulator.add_file(f"F/{name}", a_fixed_zip(MEMBERS) if name.endswith("zip")
                      else a_tgz(MEMBERS))
    dest = tmp_path / "data"
    for path, data in MEMBERS.items():   # the old recipe's unzip by hand
        (dest / path).parent.mkdir(parents=True, exist_ok=True)
        (dest / path).write_bytes(data)
    touched = dest / "ds/a.txt"
    real = Occupied.compare

    def compare_then_touch(self, root, recheck=False):
        real(self, root, recheck)
        if recheck:   # compared outside the lock: now the user touches it, before the lock
            st = os.stat(touched)
            os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))

    monkeypatch.setattr(Occupied, "compare", compare_then_touch)
    inodes = {p: os.stat(dest / p).st_ino for p in MEMBERS}
    mtime = os.stat(touched).st_mtime_ns + 10**9

    code, out, err = _cli.run("pull", f"drive:F/{name}", str(dest), "-x")

    assert code == 0, err
    assert {p: os.stat(dest / p).st_ino for p in MEMBERS} == inodes   # not written again
    assert os.stat(touched).st_mtime_ns == mtime
    assert {k: v for k, v in tree(dest).items() if k in MEMBERS} == MEMBERS
    monkeypatch.setattr(Occupied, "compare", real)
    code, out, err = _cli.run("pull", f"drive:F/{name}", str(dest), "-x", "--json")
    assert code == 0, err
    assert '"action": "cached"' in out
