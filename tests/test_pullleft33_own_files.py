"""The user's own files at member paths, left items of attackclob32 (pullleft33).

- A file the user unzipped by hand (the member's very bytes) and touched while the pull ran
  (``touch``, a backup tool, an editor that saves unchanged: new mtime, same bytes) between
  the compare outside the merge lock and the check under it was refused as holding "other
  bytes" (the member's copy, to compare with, was gone by then); the rerun adopted it. It
  is adopted now, compared again with the member as written.
- A Drive folder of archives unzipped by hand, a later one over an earlier one (the old
  recipe): ``ds/s.txt`` holds the later archive's bytes. The folder pull refused it as the
  earlier archive's, "other bytes" (exit 1, until ``--force``), though it is what the pull
  ends with. The earlier archive now leaves such a path to the archives pulled after it: the
  one that has it adopts it (its very bytes), or refuses it (other bytes), named as such;
  when none has it, the pull fails naming the earlier one, whose other members were
  extracted. The rerun judges it again, and ``--force`` replaces it.
"""
from __future__ import annotations

import os
import re

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


A = {"ds/a.txt": b"a\n", "ds/s.txt": b"shared, from a\n"}
B = {"ds/b.txt": b"b\n", "ds/s.txt": b"shared, from b (longer)\n"}


def _unzipped_by_hand(root, *archives: dict[str, bytes]) -> dict[str, os.stat_result]:
    """The archives' members written into ``root`` one archive after the other, as ``unzip``
    and ``tar -x`` by hand do: the last one's bytes at a shared path."""
    for members in archives:
        for path, data in members.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(data)
    return {p: os.stat(root / p) for a in archives for p in a}


def _members(root) -> dict[str, bytes]:
    return {k: v for k, v in tree(root).items() if k.startswith("ds/")}


def _line(err: str) -> str:
    return re.sub(r"^.*(?=Error: )", "", err.strip().splitlines()[-1])


@pytest.mark.parametrize("chunk", [[], ["--chunk-size", "256KiB"]], ids=["at-once", "in-turn"])
def test_a_folder_unzipped_by_hand_later_archive_over_earlier_is_adopted(
        emulator, local_state, drive_env, fast_retries, tmp_path, chunk):
    """``in-turn``: archives larger than a chunk are staged one after the other, so the later
    one's members are not known when the earlier one merges."""
    pa, pb = ({"ds/pad_a.bin": os.urandom(300_000)}, {"ds/pad_b.bin": os.urandom(300_000)}) \
        if chunk else ({}, {})
    emulator.add_file("F/a.zip", a_fixed_zip({**A, **pa}))
    emulator.add_file("F/b.tgz", a_tgz({**B, **pb}))
    dest = tmp_path / "data"
    before = _unzipped_by_hand(dest / "F", {**A, **pa}, {**B, **pb})

    code, out, err = _cli.run("pull", "drive:F", str(dest), "-x", *chunk)

    assert code == 0, err
    assert _members(dest / "F") == {**A, **B, **pa, **pb}
    for path, st in before.items():   # none written again: each adopted as it is
        now = os.stat(dest / "F" / path)
        assert (now.st_ino, now.st_mtime_ns) == (st.st_ino, st.st_mtime_ns), path
    code, out, err = _cli.run("pull", "drive:F", str(dest), "-x", "--json", *chunk)
    assert code == 0, err
    assert out.count('"action": "cached"') == 2, out


@pytest.mark.parametrize("b", [B, {"ds/b.txt": b"b\n"}], ids=["later-has-it", "none-has-it"])
def test_a_file_left_to_later_archives_that_is_none_of_theirs_is_refused(
        emulator, local_state, drive_env, fast_retries, tmp_path, b):
    emulator.add_file("F/a.zip", a_fixed_zip(A))
    emulator.add_file("F/b.tgz", a_tgz(b))
    dest = tmp_path / "data"
    mine = dest / "F/ds/s.txt"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"my own notes\n")
    if b is B:
        want = (f"Error: b.tgz would replace 1 file in {dest / 'F'} that is not from an "
                f"extraction and holds other bytes: {mine}; nothing of it was extracted: "
                "move it away, or pull with --force to replace it")
    else:
        want = (f"Error: a.zip would replace 1 file in {dest / 'F'} that is not from an "
                f"extraction and holds other bytes: {mine}; its other members were "
                "extracted: move it away, or pull with --force to replace it")

    for _ in range(2):   # the rerun refuses alike
        code, out, err = _cli.run("pull", "drive:F", str(dest), "-x")
        assert code == 1, err
        assert _line(err) == want
        assert mine.read_bytes() == b"my own notes\n"
        assert _members(dest / "F")["ds/a.txt"] == A["ds/a.txt"]

    code, out, err = _cli.run("pull", "drive:F", str(dest), "-x", "--force")
    assert code == 0, err
    assert _members(dest / "F") == {**A, **b}   # (the later archive's bytes: test_order33_left)
