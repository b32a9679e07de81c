"""attacky27: two archives of one folder pull that disagree on a path's kind.

``a.zip`` holds a file ``ds/x``, ``b.tar.gz`` (later in the pull's order) a folder there
(``ds/x/in``). The first pull ends well: b, the later one, holds the path (its folder
replaces a's file, as a later archive's file replaces an earlier one's). But every rerun
judged a.zip's file ``ds/x`` missing, extracted it again and failed, exit 1, with `a.zip:
member ds/x is a file, but …/ds/x is a folder; move that folder away or extract elsewhere`:
the folder was b's, and moving it away only started the round again. Now a path a later
archive of the pull holds as a folder (one of its members lies below it) counts as in
place for the earlier one, as a path it holds as a file already did (stamps.siblings_wrote):
the rerun says already staged.
"""
from __future__ import annotations

import os

from _cli import run
from _envs import env  # noqa: F401  (a fixture)
from test_attack15_extract import _replace_on_drive, _tar
from test_attack22_stage import _tree
from test_two_archives26 import _zip


def _ds(dest) -> dict:
    return {k: v for k, v in _tree(dest).items() if k.startswith("src/ds/")}


def test_a_later_archives_folder_over_an_earlier_ones_file_settles(emulator, env, tmp_path):
    emulator.add_file("src/a.zip", _zip({"ds/x": b"file", "ds/a": b"a"}))
    emulator.add_file("src/b.tar.gz", _tar({"ds/x/in": b"inside", "ds/b": b"b"}, gz=True))
    dest = tmp_path / "d"
    code, out, err = run("pull", "-q", "drive:src", str(dest), "-x")
    assert code == 0, err
    assert _ds(dest) == {"src/ds/a": b"a", "src/ds/b": b"b", "src/ds/x/in": b"inside"}
    inode = os.lstat(dest / "src/ds/x/in").st_ino
    for _ in range(2):
        code, out, err = run("pull", "drive:src", str(dest), "-x")
        assert code == 0, err
        assert "(2 already staged)" in err and "extracted" not in err, err
    assert os.lstat(dest / "src/ds/x/in").st_ino == inode   # not written again
    assert _ds(dest) == {"src/ds/a": b"a", "src/ds/b": b"b", "src/ds/x/in": b"inside"}


def test_a_sibling_updated_without_a_shared_path_of_the_same_size_gives_it_back(
        emulator, env, tmp_path):
    """As test_attackz26_siblings, with the two archives' ``ds/x`` of one size: b.zip updated
    on Drive to a version without ``ds/x`` left b's old ``ds/x`` there, and a.zip, judged by
    presence, kind and size, was "already staged" for good over bytes no archive on Drive
    holds. A file that is exactly what another archive's stamp recorded (not one that stands
    for the path now) is not the archive's own member: a.zip puts its ``ds/x`` back."""
    dest = tmp_path / "d"
    emulator.add_file("src/a.zip", _zip({"ds/x": b"aaaa", "ds/a": b"a"}))
    emulator.add_file("src/b.zip", _zip({"ds/x": b"bbbb", "ds/b": b"b"}))
    code, out, err = run("pull", "-q", "drive:src", str(dest), "-x")
    assert code == 0, err
    assert _ds(dest)["src/ds/x"] == b"bbbb"
    _replace_on_drive("src/b.zip", _zip({"ds/b": b"b2"}), tmp_path)
    code, out, err = run("pull", "drive:src", str(dest), "-x")
    assert code == 0, err
    assert _ds(dest) == {"src/ds/a": b"a", "src/ds/b": b"b2", "src/ds/x": b"aaaa"}, err
    code, out, err = run("pull", "drive:src", str(dest), "-x")
    assert code == 0 and "2 files (2 already staged)" in err and "extracted" not in err, err
    assert _ds(dest) == {"src/ds/a": b"a", "src/ds/b": b"b2", "src/ds/x": b"aaaa"}


def test_two_archives_of_one_size_still_settle_on_the_later_one(emulator, env, tmp_path):
    """Guard: the later archive's ``ds/x`` (same size) still stands for the earlier one."""
    dest = tmp_path / "d"
    emulator.add_file("src/a.zip", _zip({"ds/x": b"aaaa", "ds/a": b"a"}))
    emulator.add_file("src/b.zip", _zip({"ds/x": b"bbbb", "ds/b": b"b"}))
    for _ in range(3):
        code, out, err = run("pull", "drive:src", str(dest), "-x")
        assert code == 0, err
        assert _ds(dest)["src/ds/x"] == b"bbbb"
    assert "2 files (2 already staged)" in err and "extracted" not in err, err
