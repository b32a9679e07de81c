"""A merge's journal (``DEST/.drivestage/*.merging``: the members a ``pull -x`` merge moved in,
until its stamp records them) trusted no further than it can be checked, and cleaned up
once provably done (tidy34).

It was a list of paths that counted as "written by an extraction" for as long as it lay
there: a kill between a pull's stamp and the journal's removal left it for good (every
rerun found the archive staged), a kill between the merge and the stamp left it naming
paths whose files the user later replaced with their own, and a journal another process
of the user's put there counted just the same. A file of the user's at such a path was
then replaced without a word, where it is refused otherwise.
"""
from __future__ import annotations

import json
import os
import shutil

import _cli
import drivestage.stamps as stamps
from _archives import a_fixed_zip, a_tgz, tree

A = {"ds/a.txt": b"from a\n", "ds/b.txt": b"b\n"}
B = {"more/c.txt": b"from b\n"}
MINE = b"my precious labels, longer\n"


def _journals(dest) -> list[str]:
    return sorted(n for n in os.listdir(dest / ".drivestage") if n.endswith(".merging"))


def _refusal(dest, first: str, name: str) -> str:
    return (f"Error: {name} would replace 1 file in {dest} that is not from an extraction "
            f"and holds other bytes: {dest / first}; nothing of it was extracted: move it "
            "away, or pull with --force to replace it")


def _killed_after_the_stamp(monkeypatch):
    """A kill just after the stamp that records the members was written (its journal not
    removed yet)."""
    write = stamps.write

    def write_then_killed(dest, stamp, *args, **kwargs):
        write(dest, stamp, *args, **kwargs)
        if stamp.get("extracted"):
            raise KeyboardInterrupt

    monkeypatch.setattr(stamps, "write", write_then_killed)


def test_journals_a_kill_left_after_the_stamps_go_at_the_next_pull(
        emulator, local_state, drive_env, fast_retries, tmp_path, monkeypatch):
    """Two archives, each pull killed between its stamp and its journal's removal: the
    folder pull after them finds both staged (nothing downloaded) and leaves no journal."""
    emulator.add_file("F/a.zip", a_fixed_zip(A))
    emulator.add_file("F/b.tgz", a_tgz(B))
    dest = tmp_path / "data" / "F"   # (where the pull of the folder F into data puts it)
    with monkeypatch.context() as patched:
        _killed_after_the_stamp(patched)
        for name in ("a.zip", "b.tgz"):
            code, out, err = _cli.run("pull", f"drive:F/{name}", str(dest), "-x")
            assert code == 130, err
    assert len(_journals(dest)) == 2

    out = json.loads(_cli.ok("pull", "drive:F", str(dest.parent), "-x", "--json"))

    assert sorted(f["action"] for f in out["files"]) == ["cached", "cached"]
    assert _journals(dest) == []
    assert {k: v for k, v in tree(dest).items() if not k.endswith((".zip", ".tgz"))} == \
        {**A, **B}


def test_a_killed_merges_journal_no_longer_claims_a_file_the_user_put_there_since(
        emulator, local_state, drive_env, fast_retries, tmp_path, monkeypatch):
    """A pull killed between the merge and its stamp; the user then removed what it wrote
    and put their own labels at a member's path: the rerun refuses them (exit 1, the usual
    line), as for any file of theirs. It replaced them without a word."""
    import drivestage.extract.job as job

    merge = job.merge

    def merge_then_killed(*args, **kwargs):
        merge(*args, **kwargs)
        raise KeyboardInterrupt

    emulator.add_file("F/a.zip", a_fixed_zip(A))
    dest = tmp_path / "data"
    with monkeypatch.context() as patched:
        patched.setattr(job, "merge", merge_then_killed)
        code, out, err = _cli.run("pull", "drive:F/a.zip", str(dest), "-x")
    assert code == 130, err
    assert len(_journals(dest)) == 1
    shutil.rmtree(dest / "ds")
    (dest / "ds").mkdir()
    (dest / "ds/a.txt").write_bytes(MINE)

    code, out, err = _cli.run("pull", "drive:F/a.zip", str(dest), "-x")

    assert code == 1, err
    assert err.strip().splitlines()[-1] == _refusal(dest, "ds/a.txt", "a.zip")
    assert (dest / "ds/a.txt").read_bytes() == MINE


def test_a_planted_journal_claims_nothing_and_touches_nothing_outside_dest(
        emulator, local_state, drive_env, fast_retries, tmp_path):
    """Journals another process of the user's wrote into DEST's state folder: one of paths
    (the user's file, one outside DEST, an absolute one), one of records naming a file
    outside DEST as it is. The user's file is refused, nothing outside DEST changes; once
    the user moved their file away, the pull extracts and the journals are gone."""
    emulator.add_file("F/a.zip", a_fixed_zip(A))
    dest = tmp_path / "data"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.txt").write_bytes(b"not DEST's")
    (dest / "ds").mkdir(parents=True)
    (dest / "ds/a.txt").write_bytes(MINE)
    (dest / ".drivestage").mkdir()
    st = os.lstat(outside / "x.txt")
    planted = {
        "0123456789abcdef.planted.merging": ["ds/a.txt", "../outside/x.txt",
                                             str(outside / "x.txt"), "ds/../ds/a.txt"],
        "fedcba9876543210.planted.merging": {"members": [
            ["../outside/x.txt", "file", st.st_size, st.st_mtime_ns, st.st_ino, ""],
            [str(outside / "x.txt"), "file", st.st_size, st.st_mtime_ns, st.st_ino, ""]]},
    }
    for name, body in planted.items():
        (dest / ".drivestage" / name).write_text(json.dumps(body))

    code, out, err = _cli.run("pull", "drive:F/a.zip", str(dest), "-x")

    assert code == 1, err
    assert err.strip().splitlines()[-1] == _refusal(dest, "ds/a.txt", "a.zip")
    assert (dest / "ds/a.txt").read_bytes() == MINE
    assert tree(outside) == {"x.txt": b"not DEST's"}
    assert os.lstat(outside / "x.txt").st_ino == st.st_ino

    os.rename(dest / "ds/a.txt", tmp_path / "mine.txt")
    _cli.ok("pull", "drive:F/a.zip", str(dest), "-x")

    assert {k: v for k, v in tree(dest).items() if k != "a.zip"} == A
    assert _journals(dest) == []
    assert tree(outside) == {"x.txt": b"not DEST's"}
