"""A ``pull -x``'s own merge journal, once its stamp records the members, goes without being
read back (perf35): it was read, parsed and each of its rows looked at in DEST again (an
``lstat`` a member), a fifth of a second of the main thread's CPU at the end of a pull of
the 20,000-member benchmark zip. A journal whose rows its stamp does not all vouch for is
judged as before, from what DEST holds.
"""
from __future__ import annotations

import json
import os

import _cli
import drivestage.stamps as stamps
from _archives import a_fixed_zip, tree
from drivestage.extract import journals
from drivestage.stage_extraction import settle_journals

MEMBERS = {f"ds/{i:03d}.txt": f"member {i}\n".encode() for i in range(120)}


def _journals(dest) -> list[str]:
    return sorted(n for n in os.listdir(dest / ".drivestage") if n.endswith(".merging"))


def _counting_looks(monkeypatch) -> list[str]:
    """The member paths a journal's rows are looked at in DEST by (journals._live)."""
    looked: list[str] = []
    live = journals._live

    def counted(folder, rec):
        looked.append(rec.path)
        return live(folder, rec)

    monkeypatch.setattr(journals, "_live", counted)
    return looked


def test_a_pulls_own_journal_goes_without_a_look_at_each_member(
        emulator, local_state, drive_env, fast_retries, tmp_path, monkeypatch):
    """A pull -x of 120 members: its journal is written and gone, and no member was looked
    at again for it (120 lstats before)."""
    emulator.add_file("F/a.zip", a_fixed_zip(MEMBERS))
    dest = tmp_path / "data"
    noted: list[int] = []
    note = journals.note_merging

    def noting(dest_, archive, records, **kw):   # (kw: made, exclude37)
        noted.append(len(records))
        note(dest_, archive, records, **kw)

    monkeypatch.setattr("drivestage.extract.job.note_merging", noting)
    looked = _counting_looks(monkeypatch)

    _cli.ok("pull", "drive:F/a.zip", str(dest), "-x")

    assert noted == [len(MEMBERS)]          # (it was written)
    assert _journals(dest) == []
    assert looked == []
    assert {k: v for k, v in tree(dest).items() if not k.endswith(".zip")} == MEMBERS


def test_an_own_journal_its_stamp_does_not_vouch_for_is_judged_from_dest(
        emulator, local_state, drive_env, fast_retries, tmp_path, monkeypatch):
    """This process's journal whose stamp lacks a row of a member DEST still holds as moved
    in stays (read back and judged, as any journal); once that member is gone, the next
    settle removes it."""
    emulator.add_file("F/a.zip", a_fixed_zip(MEMBERS))
    dest = tmp_path / "data"
    _cli.ok("pull", "drive:F/a.zip", str(dest), "-x")
    (entry,) = [n for n in os.listdir(dest / ".drivestage") if n.startswith("a.zip@")]
    with open(dest / ".drivestage" / entry) as fh:
        stamp = json.load(fh)
    records = stamps.records(stamp)
    journals.note_merging(str(dest), str(dest / "a.zip"), records)
    lacking = dict(stamp, members=[r.to_json() for r in records if r.path != "ds/007.txt"])
    looked = _counting_looks(monkeypatch)

    settle_journals(str(dest), str(dest / "a.zip"), lacking)

    assert len(_journals(dest)) == 1
    assert "ds/007.txt" in looked                  # (read back, judged from DEST)
    os.unlink(dest / "ds" / "007.txt")
    settle_journals(str(dest), str(dest / "a.zip"), lacking)
    assert _journals(dest) == []


def test_a_rerun_on_the_staged_copy_looks_at_each_member_once(
        emulator, local_state, drive_env, fast_retries, tmp_path, monkeypatch):
    """The rerun of a pull -x that finds the archive staged looks at each member once (an
    lstat: whether it is in place and whether another archive's stamp took it; twice
    before), and says it is staged."""
    emulator.add_file("F/a.zip", a_fixed_zip(MEMBERS))
    dest = tmp_path / "data"
    _cli.ok("pull", "drive:F/a.zip", str(dest), "-x")
    looks: dict[str, int] = {}
    lstat, real_dest = os.lstat, os.path.realpath(dest)

    def counted(path, *args, **kwargs):
        fd = kwargs.get("dir_fd")   # (a member by name in its folder: mtimes._Folders)
        full = os.fspath(path) if fd is None else \
            os.path.join(os.readlink(f"/proc/self/fd/{fd}"), os.fspath(path))
        rel = os.path.relpath(full, real_dest)
        if rel.startswith("ds" + os.sep):
            looks[rel] = looks.get(rel, 0) + 1
        return lstat(path, *args, **kwargs)

    monkeypatch.setattr(os, "lstat", counted)
    out = json.loads(_cli.ok("pull", "drive:F/a.zip", str(dest), "-x", "--json"))

    assert out["action"] == "cached"
    assert len(looks) == len(MEMBERS)
    assert set(looks.values()) == {1}
