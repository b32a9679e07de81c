"""Which archive of a folder pull holds a path two of them share depends on the Drive
folder's contents alone: the one later in the pull's tree order (a folder's files by name,
then its subfolders'), never on `--chunk-size`, `--jobs` or which arrives first.

Before: the merge order was the staging order, small files (up to `--chunk-size`, 8 MiB by
default) first, so `a.zip` (big) and `b.zip` (small), both holding `ds/x`, left `b.zip`'s
bytes at `ds/x` with the default and `a.zip`'s with `--chunk-size 64KiB`; a rerun with the
other value extracted the loser again and flipped the path (chunkdet35)."""
from __future__ import annotations

import io
import os
import signal
import zipfile

import pytest

import _cli
from _cli import child_env
from _forkcli import PIPE, cli_server
from test_attack15_extract import KILLER
from test_attack22_stage import _tree
from test_pullorder27_overlap import _KILLS

BIG = os.urandom(200 << 10)   # incompressible: a.zip is over 64 KiB


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path, data in members.items():
            zf.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


A = {"ds/x": b"aaaa", "ds/big": BIG}
B = {"ds/x": b"bb", "ds/b": b"b"}


def _pull(dest, *options: str) -> dict[str, bytes]:
    code, _, err = _cli.run("pull", "drive:F", str(dest), "-x", "-q", *options)
    assert code == 0, err
    return {k: v for k, v in _tree(dest).items() if k.startswith("F/ds/")}


@pytest.fixture
def folder(emulator, local_state, monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emulator.url)
    emulator.add_file("F/a.zip", _zip(A))
    emulator.add_file("F/b.zip", _zip(B))
    return emulator


@pytest.mark.parametrize("options", [(), ("--chunk-size", "64KiB"),
                                     ("--chunk-size", "64KiB", "-j", "1"), ("-j", "1"),
                                     ("--chunk-size", "1MiB", "-j", "8"),
                                     ("--chunk-size", "64KiB", "-j", "8")])
def test_the_later_archive_by_name_holds_a_shared_path_whatever_the_options(
        folder, tmp_path, options):
    got = _pull(tmp_path / "d", *options)
    assert got["F/ds/x"] == b"bb"                 # b.zip, the later by name
    assert got["F/ds/big"] == BIG and got["F/ds/b"] == b"b"


def test_a_rerun_with_another_chunk_size_changes_nothing(folder, tmp_path):
    dest = tmp_path / "d"
    first = _pull(dest)
    inode = os.lstat(dest / "F/ds/x").st_ino
    for options in [("--chunk-size", "64KiB"), (), ("--chunk-size", "64KiB", "-j", "1")]:
        code, _, err = _cli.run("pull", "drive:F", str(dest), "-x", *options)
        assert code == 0 and "2 files (2 already staged)" in err, err
        assert _pull(dest, *options) == first
        assert os.lstat(dest / "F/ds/x").st_ino == inode   # never written again


@pytest.mark.parametrize("options", [(), ("--chunk-size", "64KiB")])
def test_in_nested_folders_the_folders_files_come_before_its_subfolders(
        emulator, local_state, monkeypatch, tmp_path, options):
    """F/z.zip holds sub/x, F/sub/a.zip holds x: tree order takes F's files first, then
    F/sub's, so a.zip's x is the one left, whichever is the bigger."""
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emulator.url)
    emulator.add_file("F/z.zip", _zip({"sub/x": b"zzz", "sub/big": BIG}))
    emulator.add_file("F/sub/a.zip", _zip({"x": b"a"}))
    dest = tmp_path / "d"
    code, _, err = _cli.run("pull", "drive:F", str(dest), "-x", "-q", *options)
    assert code == 0, err
    assert (dest / "F/sub/x").read_bytes() == b"a"


def test_an_archive_added_before_the_others_by_name_changes_nothing_at_their_path(
        folder, tmp_path):
    """A rerun after `0.zip`, holding ds/x too, is added: b.zip's bytes stay the ones
    left, and the next rerun stages nothing."""
    dest = tmp_path / "d"
    _pull(dest, "--chunk-size", "64KiB")
    folder.add_file("F/0.zip", _zip({"ds/x": b"0", "ds/0": b"0"}))
    got = _pull(dest)
    assert got["F/ds/x"] == b"bb" and got["F/ds/0"] == b"0"
    code, _, err = _cli.run("pull", "drive:F", str(dest), "-x", "--chunk-size", "64KiB")
    assert code == 0 and "3 files (3 already staged)" in err, err
    assert _pull(dest) == got


def test_no_member_is_said_changed_when_an_earlier_archive_wrote_there(folder, tmp_path):
    """The rerun after `0.zip` is added: 0.zip merges first and writes ds/x, then a.zip and
    b.zip put theirs back, in order: no "put back … that changed since drivestage extracted
    it", which no user touched."""
    dest = tmp_path / "d"
    _pull(dest)
    folder.add_file("F/0.zip", _zip({"ds/x": b"0", "ds/0": b"0"}))
    code, _, err = _cli.run("pull", "drive:F", str(dest), "-x")
    assert code == 0, err
    assert "put back" not in err and "WARNING" not in err, err
    assert (dest / "F/ds/x").read_bytes() == b"bb"


@pytest.mark.parametrize("moment", sorted(_KILLS))
def test_a_pull_killed_in_its_merges_settles_alike_whatever_the_chunk_size(
        moment, folder, tmp_path):
    """SIGKILLed at a moment of the two merges with `--chunk-size 64KiB`, the pull is run
    again without it and then with it: b.zip holds ds/x, and the third run stages nothing."""
    event, needle, n = _KILLS[moment]
    dest = tmp_path / "d"
    # (forked with drivestage imported, tests/_forkcli.py, not a fresh interpreter)
    proc = cli_server().popen([event, needle, str(n), str(tmp_path / "count"), "pull",
                               "drive:F", str(dest), "-x", "-q", "--chunk-size", "64KiB"],
                              script=KILLER, env=child_env(folder), stdout=PIPE, stderr=PIPE)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, err.decode()[-3000:])
    got = _pull(dest)
    assert got["F/ds/x"] == b"bb" and got["F/ds/big"] == BIG
    code, _, err = _cli.run("pull", "drive:F", str(dest), "-x", "--chunk-size", "64KiB")
    assert code == 0 and "2 files (2 already staged)" in err, err
    assert _pull(dest, "--chunk-size", "64KiB") == got


@pytest.mark.parametrize("options", [(), ("--chunk-size", "64KiB"), ("-j", "1"),
                                     ("--chunk-size", "64KiB", "-j", "1")])
def test_small_archives_after_a_big_one_wait_for_it_and_the_last_by_name_holds_the_path(
        emulator, local_state, monkeypatch, tmp_path, options):
    """a.zip, c.zip and d.zip small, b.zip big, all four holding ds/x: d.zip's bytes stay
    (c.zip and d.zip are fetched after b.zip, together)."""
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emulator.url)
    for name, data in [("a", b"a"), ("b", b"bb"), ("c", b"ccc"), ("d", b"dddd")]:
        extra = {"ds/big": BIG} if name == "b" else {}
        emulator.add_file(f"F/{name}.zip", _zip({"ds/x": data, f"ds/{name}": data, **extra}))
    dest = tmp_path / "d"
    got = _pull(dest, *options)
    assert got == {"F/ds/x": b"dddd", "F/ds/a": b"a", "F/ds/b": b"bb", "F/ds/c": b"ccc",
                   "F/ds/d": b"dddd", "F/ds/big": BIG}
    code, _, err = _cli.run("pull", "drive:F", str(dest), "-x")
    assert code == 0 and "4 files (4 already staged)" in err, err
