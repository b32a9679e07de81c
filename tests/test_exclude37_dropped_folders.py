"""A new version of an archive without some members removes those members' files, and now
the folders the pull made that only they filled (`ds/old/`, `ds/old/sub/`, `gone/deep/`):
they stayed behind, empty (left from stampcache36, attackstage36's report). Never a folder
that holds anything else (the user's file, another archive's member) nor one the user made
(it was there before the pull merged into it). A pull SIGKILLed at each step of the update
(its download, its merge, the removal of a member, of a folder, its stamp) and a first pull
killed before its stamp leave a tree the rerun completes: the same folders and files as an
uninterrupted update. Kills come at file events (audit hooks in a child), not after
sleeps; the real stack against the emulator."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

import _cli
from _cli import child_env
from _envs import env  # noqa: F401  (a fixture)
from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (the fork server, started before the leak check)
from test_attack15_extract import KILLER, _replace_on_drive
from test_chunkdet35_order import _zip

V1 = _zip({"ds/x": b"1", "ds/old/sub/y": b"y", "ds/old/z": b"z", "gone/deep/w": b"w"})
V2 = _zip({"ds/x": b"22", "ds/new/n": b"n"})
#: What an update from V1 to V2 leaves: files with their bytes, folders ending in "/".
UPDATED = {"data.zip": V2, "ds/": None, "ds/x": b"22", "ds/new/": None, "ds/new/n": b"n"}


def _layout(root: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None, its path ending in "/") below ``root``,
    drivestage's own state left out."""
    out: dict[str, bytes | None] = {}
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".drivestage")]
        rel = os.path.relpath(dirpath, root)
        for d in dirs:
            out[os.path.normpath(os.path.join(rel, d)) + "/"] = None
        for f in files:
            out[os.path.normpath(os.path.join(rel, f))] = Path(dirpath, f).read_bytes()
    return out


def _pull(dest: Path) -> tuple[int, str]:
    code, _, err = _cli.run("pull", "-q", "drive:data.zip", str(dest), "-x")
    return code, err


def _first(emulator, dest: Path) -> None:
    emulator.add_file("data.zip", V1)
    code, err = _pull(dest)
    assert code == 0, err


def test_the_update_removes_the_folders_only_dropped_members_filled(emulator, env, tmp_path):
    dest = tmp_path / "d"
    _first(emulator, dest)
    assert _layout(dest)["ds/old/sub/y"] == b"y"
    _replace_on_drive("data.zip", V2, tmp_path)
    code, err = _pull(dest)
    assert code == 0, err
    assert _layout(dest) == UPDATED
    code, _, err = _cli.run("pull", "drive:data.zip", str(dest), "-x")
    assert code == 0 and "already staged" in err, err


def test_a_folder_the_user_made_or_put_a_file_in_stays(emulator, env, tmp_path):
    dest = tmp_path / "d"
    (dest / "gone").mkdir(parents=True)   # the user's, before the pull merged into it
    _first(emulator, dest)
    (dest / "ds" / "old" / "mine.txt").write_bytes(b"mine")
    _replace_on_drive("data.zip", V2, tmp_path)
    code, err = _pull(dest)
    assert code == 0, err
    assert _layout(dest) == {**UPDATED, "ds/old/": None, "ds/old/mine.txt": b"mine",
                             "gone/": None}


def test_a_folder_another_archive_of_the_pull_fills_stays(emulator, env, tmp_path):
    emulator.add_file("F/a.zip", V1)
    emulator.add_file("F/b.zip", _zip({"ds/old/b": b"b"}))
    dest = tmp_path / "d"
    code, _, err = _cli.run("pull", "-q", "drive:F", str(dest), "-x")
    assert code == 0, err
    _replace_on_drive("F/a.zip", V2, tmp_path)
    code, _, err = _cli.run("pull", "-q", "drive:F", str(dest), "-x")
    assert code == 0, err
    got = {k: v for k, v in _layout(dest / "F").items() if not k.endswith(".zip")}
    assert got == {**{k: v for k, v in UPDATED.items() if k != "data.zip"},
                   "ds/old/": None, "ds/old/b": b"b"}


#: moment -> (audit event, what its arguments hold, which one)
_KILLS = {
    "its download begun": ("open", "data.zip", 1),
    "its merge begun": ("os.rename", "('x', 'x'", 1),
    "a dropped member's removal": ("os.remove", "'y'", 1),
    "a folder's removal": ("os.rmdir", "'sub'", 1),
    "its stamp": ("os.rename", "data.zip@", 2),
}


@pytest.mark.parametrize("moment", sorted(_KILLS))
def test_an_update_killed_at_each_step_then_the_rerun(moment, emulator, env, tmp_path):
    dest = tmp_path / "d"
    _first(emulator, dest)
    (dest / "ds" / "old" / "mine.txt").write_bytes(b"mine")
    _replace_on_drive("data.zip", V2, tmp_path)
    event, needle, n = _KILLS[moment]
    proc = cli_server().run([event, needle, str(n), str(tmp_path / "count"), "pull",
                             "drive:data.zip", str(dest), "-x", "-q"], script=KILLER,
                            env=child_env(emulator), timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-3000:]
    code, err = _pull(dest)
    assert code == 0, err
    assert _layout(dest) == {**UPDATED, "ds/old/": None, "ds/old/mine.txt": b"mine"}
    code, _, err = _cli.run("pull", "drive:data.zip", str(dest), "-x")
    assert code == 0 and "already staged" in err, err


def test_a_first_pull_killed_before_its_stamp_then_the_update(emulator, env, tmp_path):
    """The folders the killed merge made are known from its journal: the rerun did not
    make them (they were there), and the update left them behind."""
    emulator.add_file("data.zip", V1)
    dest = tmp_path / "d"
    proc = cli_server().run(["os.rename", "data.zip@", "2", str(tmp_path / "count"), "pull",
                             "drive:data.zip", str(dest), "-x", "-q"], script=KILLER,
                            env=child_env(emulator), timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-3000:]
    assert _layout(dest)["ds/old/sub/y"] == b"y"   # (merged, not stamped)
    code, err = _pull(dest)
    assert code == 0, err
    _replace_on_drive("data.zip", V2, tmp_path)
    code, err = _pull(dest)
    assert code == 0, err
    assert _layout(dest) == UPDATED


def test_a_local_archive_extracted_where_it_lies_updated(env, tmp_path):
    """A local archive (a NAS, a Kaggle input) is extracted where it lies, its stamp made by
    :mod:`drivestage.stage_original`: the new version carries the made folders too."""
    src = tmp_path / "nas"
    src.mkdir()
    (src / "data.zip").write_bytes(V1)
    dest = tmp_path / "d"
    code, _, err = _cli.run("pull", "-q", str(src / "data.zip"), str(dest), "-x")
    assert code == 0, err
    (src / "data.zip").write_bytes(V2)
    code, _, err = _cli.run("pull", "-q", str(src / "data.zip"), str(dest), "-x")
    assert code == 0, err
    assert {k: v for k, v in _layout(dest).items() if k != "data.zip"} == \
        {k: v for k, v in UPDATED.items() if k != "data.zip"}
