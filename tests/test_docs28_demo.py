"""`python -m trainer.demo --workdir DIR` emptied DIR first, whatever it held: `--workdir .`
deleted the folder the user stood in (found by docs28). It now empties only a folder an
earlier demo made, or an empty one."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from trainer import demo

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _folders_let_go():
    """The locks a folder made ready here holds (as a demo's run does: ux35) are let go."""
    yield
    demo.release_workdirs()


def test_a_folder_the_demo_did_not_make_is_left_as_it_is(tmp_path):
    work = tmp_path / "project"
    (work / "src").mkdir(parents=True)
    (work / "src" / "train.py").write_text("my work\n")
    res = subprocess.run([sys.executable, "-m", "trainer.demo", "--workdir", str(work)],
                         capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=REPO))
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1] == (
        f"demo: --workdir {work} already exists and was not made by the demo; nothing was "
        "deleted: give a new or empty folder")
    assert (work / "src" / "train.py").read_text() == "my work\n"
    assert sorted(os.listdir(work)) == ["src"]


def test_an_earlier_demos_folder_or_an_empty_one_is_used(tmp_path):
    earlier = demo._fresh_workdir(tmp_path / "demo_out")          # new: made and marked
    (earlier / "drive").mkdir()
    (earlier / "drive" / "old.bin").write_bytes(b"x")
    again = demo._fresh_workdir(earlier)                          # the demo's own: emptied
    assert sorted(os.listdir(again)) == [demo.MARKER]
    (tmp_path / "empty").mkdir()
    assert sorted(os.listdir(demo._fresh_workdir(tmp_path / "empty"))) == [demo.MARKER]


def test_make_demos_own_folder_is_emptied_marked_or_not(tmp_path, monkeypatch):
    """demo_out from a demo before the marker: `make demo` goes on using it."""
    old = tmp_path / "demo_out"
    (old / "drive").mkdir(parents=True)
    monkeypatch.setattr(demo, "DEFAULT_WORKDIR", old)
    assert sorted(os.listdir(demo._fresh_workdir(old))) == [demo.MARKER]
