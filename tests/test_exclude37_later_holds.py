"""A folder pull -x whose archive merges after a later one in tree order (Drive refused it
at first, `--exclude` left it out, it was added on Drive since) leaves the paths the later
one's stamp holds (`stage_order.Turn.held`): a.zip, b.zip and c.zip all hold `ds/x`, b.zip
has a file `ds/k` where c.zip has the folder `ds/k/`. Checked: a repair of b.zip in a
clean tree (a member deleted by hand) is no longer refused "member ds/k is a file, but …
is a folder"; a file of the user's in c.zip's folder stays; a pull SIGKILLed at each step
of b.zip's late extraction (its download, half its merge, its stamp) leaves a tree the
rerun completes to the clean pull's, and the next rerun stages nothing. Kills come at file
events (audit hooks in a child), not after sleeps; the real stack against the emulator."""
from __future__ import annotations

import os
import signal

import pytest

import _cli
from _cli import child_env
from _forkcli import cli_server
from _envs import env  # noqa: F401  (a fixture)
from test_attack15_extract import KILLER
from test_attackstage36_held import _tree
from test_chunkdet35_order import _zip

A = _zip({"ds/x": b"a"})
B = _zip({"ds/x": b"b", "ds/k": b"file", "ds/b1": b"1", "ds/b2": b"2", "top.txt": b"t"})
C = _zip({"ds/x": b"c", "ds/k/in": b"C"})

#: What a clean pull of the three leaves (the later in tree order holds a shared path).
CLEAN = {"F/a.zip": A, "F/b.zip": B, "F/c.zip": C, "F/ds/x": b"c", "F/ds/k/in": b"C",
         "F/ds/b1": b"1", "F/ds/b2": b"2", "F/top.txt": b"t"}


def _pull(dest, *extra: str) -> tuple[int, str]:
    code, _, err = _cli.run("pull", "-q", "drive:F", str(dest), "-x", *extra)
    return code, err


def _a_and_c_then_b(emulator, dest) -> None:
    """a.zip and c.zip pulled, then b.zip added on Drive (before c.zip in tree order)."""
    emulator.add_file("F/a.zip", A)
    emulator.add_file("F/c.zip", C)
    code, err = _pull(dest)
    assert code == 0, err
    emulator.add_file("F/b.zip", B)


def test_a_clean_pull_of_the_three_then_a_repair_of_the_earlier_one(emulator, env, tmp_path):
    for name, data in [("a.zip", A), ("b.zip", B), ("c.zip", C)]:
        emulator.add_file(f"F/{name}", data)
    dest = tmp_path / "d"
    code, err = _pull(dest)
    assert code == 0, err
    assert _tree(dest) == CLEAN
    os.unlink(dest / "F" / "ds" / "b1")   # deleted by hand: b.zip is repaired
    code, err = _pull(dest)
    assert code == 0, err   # (was: "b.zip: member ds/k is a file, but …/ds/k is a folder")
    assert _tree(dest) == CLEAN
    code, _, err = _cli.run("pull", "drive:F", str(dest), "-x")
    assert code == 0 and "3 files (3 already staged)" in err, err


def test_a_users_file_in_the_later_archives_folder_stays(emulator, env, tmp_path):
    dest = tmp_path / "d"
    _a_and_c_then_b(emulator, dest)
    (dest / "F" / "ds" / "k" / "mine.txt").write_bytes(b"mine")
    code, err = _pull(dest)
    assert code == 0, err
    assert _tree(dest) == {**CLEAN, "F/ds/k/mine.txt": b"mine"}
    code, _, err = _cli.run("pull", "drive:F", str(dest), "-x")
    assert code == 0 and "3 files (3 already staged)" in err, err


def test_a_users_file_where_only_the_earlier_archive_writes_is_still_refused(emulator, env,
                                                                            tmp_path):
    dest = tmp_path / "d"
    _a_and_c_then_b(emulator, dest)
    (dest / "F" / "top.txt").write_bytes(b"the user's")
    code, err = _pull(dest)
    folder = dest / "F"
    assert code == 1 and err.strip().splitlines()[-1] == (
        f"Error: b.zip would replace 1 file in {folder} that is not from an extraction and "
        f"holds other bytes: {folder / 'top.txt'}; its other members were extracted: move "
        "it away, or pull with --force to replace it"), err
    assert _tree(dest) == {**CLEAN, "F/top.txt": b"the user's"}


#: moment -> (audit event, what its arguments hold, which one)
_KILLS = {
    "b.zip's download begun": ("open", "b.zip", 1),
    "b.zip's merge half done": ("os.rename", "('b2', 'b2'", 1),
    "b.zip merged, its stamp not": ("os.rename", "b.zip@", 2),
}


@pytest.mark.parametrize("moment", sorted(_KILLS))
def test_a_pull_killed_while_the_earlier_archive_merges_late(moment, emulator, env,
                                                             tmp_path):
    dest = tmp_path / "d"
    _a_and_c_then_b(emulator, dest)
    (dest / "F" / "ds" / "k" / "mine.txt").write_bytes(b"mine")
    event, needle, n = _KILLS[moment]
    # (forked with drivestage imported, tests/_forkcli.py, not a fresh interpreter)
    proc = cli_server().run([event, needle, str(n), str(tmp_path / "count"), "pull", "drive:F",
                             str(dest), "-x", "-q"], script=KILLER, env=child_env(emulator),
                            timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-3000:]
    got = _tree(dest)
    assert got["F/ds/x"] == b"c" and got["F/ds/k/in"] == b"C", got   # never b's
    assert got["F/ds/k/mine.txt"] == b"mine"
    code, err = _pull(dest)
    assert code == 0, err
    assert _tree(dest) == {**CLEAN, "F/ds/k/mine.txt": b"mine"}
    code, _, err = _cli.run("pull", "drive:F", str(dest), "-x")
    assert code == 0 and "3 files (3 already staged)" in err, err
