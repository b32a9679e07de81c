"""A file of a folder pull that Drive will not serve (over its download quota, flagged as
malware, bytes that never match its md5) no longer stops the files after it in tree
order: they were left unfetched, 500 small shards named after one big archive over its
quota until the quota reset (attackorder35, stampcache36). The rest comes; archives after a
failed one are downloaded and verified, not extracted (archives merge in tree order: merged
before it, the rerun merges the failed one after them); the pull exits 1 at its end naming
every failed file and its --exclude. The rerun once Drive serves it fetches that file
alone and extracts the rest in order. Through the real stack, faults from the emulator."""
from __future__ import annotations

import os

import pytest

import _cli
from _envs import env  # noqa: F401  (a fixture)
from test_chunkdet35_order import BIG, _zip

A = _zip({"ds/x": b"a", "ds/a": b"A"})
B = _zip({"ds/x": b"b", "ds/b": BIG})          # over 64 KiB: fetched alone, in order
C = _zip({"ds/x": b"c", "ds/c": b"C"})
D = _zip({"ds/x": b"d", "ds/d/in": b"D"})


def _media(emulator) -> list[str]:
    return sorted(r.path.rsplit("/", 1)[-1] for r in emulator.requests
                  if r.query.get("alt") == "media")


@pytest.mark.parametrize("options", [("--chunk-size", "64KiB"), ("--chunk-size", "64KiB",
                                                                 "-j", "1"), ()])
def test_an_archive_over_its_quota_stops_no_file_after_it(emulator, env, tmp_path, options):
    ids = {n: emulator.add_file(f"F/{n}", data) for n, data in
           [("a.zip", A), ("b.zip", B), ("c.zip", C), ("d.zip", D), ("e.txt", b"E" * 10)]}
    emulator.limit_downloads(ids["b.zip"], 0)          # 403 downloadQuotaExceeded
    dest = tmp_path / "d"
    code, _, err = _cli.run("pull", "-q", "drive:F", str(dest), "-x", *options)
    assert code == 1, err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("Error: "), err
    assert "drive:F/b.zip" in lines[-1] and "downloaded too often" in lines[-1], lines[-1]
    assert lines[-1].endswith(" Or pull the rest of the folder without it: --exclude "
                              "'b.zip'"), lines[-1]
    assert any(line == "WARNING drivestage.stage_failed: 2 archives after drive:F/b.zip in the pull's order were "
               "downloaded and verified, not extracted (archives merge in that order): the "
               "next pull extracts them after it, without downloading them again: "
               "drive:F/c.zip, drive:F/d.zip" for line in lines), err
    F = dest / "F"
    assert (F / "ds/x").read_bytes() == b"a" and (F / "ds/a").read_bytes() == b"A"
    assert (F / "c.zip").read_bytes() == C and (F / "d.zip").read_bytes() == D   # verified
    assert not (F / "ds/c").exists() and not (F / "ds/d").exists()   # not merged first
    assert (F / "e.txt").read_bytes() == b"E" * 10
    assert not (F / "b.zip").exists()
    # A rerun while the quota holds asks for b.zip alone, and says the same.
    emulator.clear_requests()
    code, _, again = _cli.run("pull", "-q", "drive:F", str(dest), "-x", *options)
    assert code == 1 and again.strip().splitlines()[-1] == lines[-1], again
    assert set(_media(emulator)) == {ids["b.zip"]}, _media(emulator)
    assert not (F / "ds/c").exists() and (F / "ds/x").read_bytes() == b"a"
    # The quota resets: the rerun fetches b.zip alone, then merges b, c, d in order.
    emulator.limit_downloads(ids["b.zip"], None)
    emulator.clear_requests()
    code, _, err = _cli.run("pull", "-q", "drive:F", str(dest), "-x", *options)
    assert code == 0, err
    assert set(_media(emulator)) == {ids["b.zip"]}, _media(emulator)
    assert (F / "ds/x").read_bytes() == b"d"       # the last by name holds
    assert [(F / p).read_bytes() for p in ("ds/a", "ds/b", "ds/c", "ds/d/in")] == \
        [b"A", BIG, b"C", b"D"]
    emulator.clear_requests()
    code, _, err = _cli.run("pull", "drive:F", str(dest), "-x", *options)
    assert code == 0 and "5 files (5 already staged)" in err, err
    assert _media(emulator) == []


def test_every_file_drive_refuses_is_named_with_its_exclude(emulator, env, tmp_path):
    """A flagged archive and one whose bytes never match: both named, in tree order, each
    with its --exclude; what the line says works."""
    emulator.add_file("F/a.zip", A)
    emulator.add_file("F/b.zip", B, abusive=True)   # cannotDownloadAbusiveFile
    bad = emulator.add_file("F/c.zip", C)
    emulator.faults.corrupt(bad)                     # every answer: one byte flipped
    emulator.add_file("F/d.zip", D)
    dest = tmp_path / "d"
    code, _, err = _cli.run("pull", "-q", "drive:F", str(dest), "-x", "--chunk-size", "64KiB")
    assert code == 1, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("Error: 2 files were not fetched, the rest were: "), line
    assert line.index("drive:F/b.zip") < line.index("drive:F/c.zip"), line
    assert line.endswith(". Or pull the rest of the folder without them: --exclude 'b.zip' "
                         "--exclude 'c.zip'"), line
    F = dest / "F"
    assert (F / "d.zip").read_bytes() == D and not (F / "ds/d").exists()
    assert not (F / "c.zip").exists()      # never a file of other bytes under its name
    code, _, err = _cli.run("pull", "-q", "drive:F", str(dest), "-x", "--exclude", "b.zip",
                            "--exclude", "c.zip")
    assert code == 0, err
    assert (F / "ds/x").read_bytes() == b"d" and (F / "ds/d/in").read_bytes() == b"D"
    assert not os.path.lexists(F / "ds/b") and not os.path.lexists(F / "ds/c")
