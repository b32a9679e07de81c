"""A folder pull whose archive Drive refuses ends "Or pull the rest of the folder without
it: --exclude 'b.zip'". Archives after the refused one are held back (downloaded, not
merged: stampcache36) precisely so that it is not merged after them: a file member of it
on a folder of a later one is refused at every rerun. Following the line's own advice
merges the later ones first all the same, and once the quota resets every plain rerun is
refused (`b.zip: member ds/k is a file, but …/ds/k is a folder; move that folder away`),
b.zip's other members never extracted; the same as b.zip added on Drive after c.zip was
staged. A clean pull holds c.zip's folder (the later in tree order holds a shared path)
and b.zip's other members (attackstage36). Now b.zip leaves the paths c.zip's stamp
holds (`stage_order.Turn.held`, exclude37): the rerun reaches the clean pull's tree.
Through the real stack (emulator over HTTP)."""
from __future__ import annotations

import _cli
from _envs import env  # noqa: F401  (a fixture)
from test_attackstage36_held import _tree
from test_chunkdet35_order import BIG, _zip

A = _zip({"ds/x": b"a"})
B = _zip({"ds/x": b"b", "ds/k": b"file", "ds/b": BIG})   # over 64 KiB: fetched alone
C = _zip({"ds/x": b"c", "ds/k/in": b"C"})


def _clean(tmp_path) -> dict[str, bytes]:
    code, _, err = _cli.run("pull", "-q", "drive:F", str(tmp_path / "clean"), "-x")
    assert code == 0, err
    got = _tree(tmp_path / "clean")
    assert got["F/ds/k/in"] == b"C" and got["F/ds/b"] == BIG and got["F/ds/x"] == b"c"
    return got


def test_the_exclude_the_error_names_then_the_rerun_once_drive_serves_it(emulator, env,
                                                                          tmp_path):
    ids = {n: emulator.add_file(f"F/{n}", d) for n, d in
           [("a.zip", A), ("b.zip", B), ("c.zip", C)]}
    emulator.limit_downloads(ids["b.zip"], 0)
    dest = tmp_path / "d"
    code, _, err = _cli.run("pull", "-q", "drive:F", str(dest), "-x")
    assert code == 1 and err.strip().splitlines()[-1].endswith(
        "Or pull the rest of the folder without it: --exclude 'b.zip'"), err
    code, _, err = _cli.run("pull", "-q", "drive:F", str(dest), "-x", "--exclude", "b.zip")
    assert code == 0, err
    emulator.limit_downloads(ids["b.zip"], None)
    code, _, err = _cli.run("pull", "-q", "drive:F", str(dest), "-x")
    assert code == 0, err
    assert _tree(dest) == _clean(tmp_path)


def test_an_archive_added_before_a_staged_one_whose_folder_holds_its_file(emulator, env,
                                                                          tmp_path):
    emulator.add_file("F/a.zip", A)
    emulator.add_file("F/c.zip", C)
    dest = tmp_path / "d"
    code, _, err = _cli.run("pull", "-q", "drive:F", str(dest), "-x")
    assert code == 0, err
    emulator.add_file("F/b.zip", B)
    code, _, err = _cli.run("pull", "-q", "drive:F", str(dest), "-x")
    assert code == 0, err
    assert _tree(dest) == _clean(tmp_path)
