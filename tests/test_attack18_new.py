"""Attacks on what came in on 2026-12-03: a file changed on Drive while it downloads (one
metadata call, then "changed on Drive"), files whose download is off for viewers, folders
shared read-only, copies with the same bytes of a checkpoint a push deletes, and Drive's new
403 reasons.

As a hostile user (names that a shell or a glob reads), a second process (a new version of a
checkpoint pushed while it downloads) and a lying server (metadata that changes though the
bytes do not, a stat that fails) would. What is asserted: exit codes, the one error line,
requests made, files left on disk and on Drive."""
from __future__ import annotations

import hashlib
import os
import shlex

import pytest
from click.testing import CliRunner

from _proxy import Proxy, Reply
from drivestage.cli import cli

KiB = 1024
TEACHER = "teacher@school.edu"
_MEDIA = "media.download"


@pytest.fixture(autouse=True)
def _env(local_state, drive_env, fast_retries, monkeypatch):
    monkeypatch.delenv("DRIVESTAGE_DEBUG", raising=False)


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stderr


def _error(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("Error: ")]
    assert lines, stderr
    return lines[-1]


def _media(emu) -> list:
    return [r for r in emu.requests if r.kind == _MEDIA]


# --------------------------------------------------------------------------- downloads off

def _shared(emu, files: dict[str, bytes], restricted: tuple[str, ...]) -> dict[str, str]:
    """A teacher's folder "Course" shared read-only (a shortcut to it in My Drive), with
    downloads off for ``restricted``."""
    folder = emu.add_folder("Course", owner=TEACHER, shared_with_me="reader")
    emu.add_shortcut("Course", folder)
    ids = {name: emu.add_file(f"Course/{name}", data, owner=TEACHER)
           for name, data in files.items()}
    for name in restricted:
        emu.restrict_download(ids[name])
    return ids


def _hint(line: str) -> list[str]:
    """The ``--exclude PATTERN`` the error line suggests, as a shell would read it pasted."""
    at = line.index("--exclude ")
    return shlex.split(line[at:])[:2]


@pytest.mark.parametrize("name", [
    "it's v2.zip",            # a quote: the hint's own quoting must survive it
    "set [final] *.zip",      # glob characters: escaped, they must still match the name
    "sub/deep/VOC07.zip",     # in a subfolder: the path inside the pulled folder
    "sub/o'brien [1].zip",    # both, below the top
])
def test_the_exclude_the_message_suggests_works_when_pasted(emulator, tmp_path, name):
    ids = _shared(emulator, {"README.txt": b"r" * 100, name: b"z" * 100}, (name,))
    assert ids
    dest = tmp_path / "d"
    code, err = _run("pull", "-q", "drive:Course", str(dest))
    assert code == 1
    line = _error(err)
    assert "its owner has turned off downloading" in line, line
    hint = _hint(line)
    emulator.clear_requests()
    code, err = _run("pull", "-q", "drive:Course", str(dest), *hint)
    assert code == 0, (hint, err)
    assert (dest / "Course" / "README.txt").read_bytes() == b"r" * 100
    assert not [p for p in dest.rglob("*.zip*")]


def test_an_include_that_leaves_the_restricted_file_out(emulator, tmp_path):
    _shared(emulator, {"README.txt": b"r" * 100, "sub/VOC07.zip": b"z" * 100,
                       "sub/notes.txt": b"n" * 10}, ("sub/VOC07.zip",))
    dest = tmp_path / "d"
    code, err = _run("pull", "-q", "drive:Course", str(dest), "--include", "*.txt")
    assert code == 0, err
    assert sorted(p.name for p in dest.rglob("*") if p.is_file()
                  and ".drivestage" not in p.parts) == ["README.txt", "notes.txt"]


def test_a_shortcut_to_a_restricted_file(emulator, tmp_path):
    ids = _shared(emulator, {"VOC07.zip": b"z" * 100}, ("VOC07.zip",))
    emulator.add_shortcut("mine/VOC07.zip", ids["VOC07.zip"])
    emulator.add_file("mine/a.txt", b"a")
    emulator.clear_requests()
    code, err = _run("pull", "-q", "drive:mine/VOC07.zip", str(tmp_path / "one"))
    assert code == 1
    assert "its owner has turned off downloading" in _error(err), err
    code, err = _run("pull", "-q", "drive:mine", str(tmp_path / "all"))
    assert code == 1
    line = _error(err)
    assert "its owner has turned off downloading" in line and "--exclude 'VOC07.zip'" in line
    assert _media(emulator) == []
