"""Standard output whose reader has gone (``drivestage pull --json | head -c 10``,
``drivestage ls | head -1``, a ``tee`` that ended): the command's own exit code stands.

A pull that worked and staged its files exited 1 without a word (click's convention for a
broken pipe), so a script under ``set -o pipefail`` took it for a failed pull; ``ls | head``
and ``prune | head`` did the same, while ``trainer train | head`` already said 0 for a run
that had trained (attackstream40) and ``push`` (nothing on standard output) 0. The output
that no one reads is dropped, as standard error's is (drivestage.stderr_tail), and a command
that failed still exits with its code, its ``Error:`` line on standard error."""
from __future__ import annotations

import json
import os

import pytest

from _archives import tree
from _forkcli import PIPE, cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)


@pytest.fixture
def env(emulator, drive_env, local_state):
    return dict(os.environ)


def _reader_gone() -> int:
    """The writing end of a pipe whose reader has left (``| head -c 10``, head ended)."""
    r, w = os.pipe()
    os.close(r)
    return w


def _run(args: list[str], env: dict) -> tuple[int, str]:
    w = _reader_gone()
    try:
        child = cli_server().popen(args, env=env, stdout=w, stderr=PIPE, text=True)
    finally:
        os.close(w)
    _, err = child.communicate(timeout=120)
    return child.returncode, err


def _logs(tmp_path):
    src = tmp_path / "logs"
    src.mkdir()
    for e in (1, 2):
        (src / f"epoch_{e:03d}.pt").write_bytes(os.urandom(2000))
        (src / f"epoch_{e:03d}.pt.json").write_text(json.dumps({"epoch": e}))
    return src


def test_a_pull_that_worked_says_0_to_a_json_reader_that_went_away(emulator, env, tmp_path):
    emulator.add_file("d/f.bin", b"x" * 5000)
    assert _run(["pull", "drive:d/f.bin", str(tmp_path / "d"), "--json", "-q"], env) == (0, "")
    assert tree(tmp_path / "d") == {"f.bin": b"x" * 5000}


@pytest.mark.parametrize("json_out", [False, True])
def test_ls_says_0_to_a_reader_that_went_away(emulator, env, json_out):
    for i in range(300):   # (more than a pipe's buffer)
        emulator.add_file(f"data/file-{i:04d}-with-a-long-enough-name.txt", b"x")
    assert _run(["ls", "drive:data"] + (["--json"] if json_out else []), env) == (0, "")


def test_prune_and_push_say_0_to_a_reader_that_went_away(emulator, env, tmp_path):
    src = _logs(tmp_path)
    code, err = _run(["push", str(src), "drive:logs"], env)
    assert code == 0, err
    code, err = _run(["prune", "drive:logs", "--keep-last", "1"], env)   # (its plan: stdout)
    assert code == 0, err
    assert sorted(f["title"] for f in emulator.files() if not f["labels"]["trashed"]
                  and not f["mimeType"].endswith(".folder")) == ["epoch_002.pt",
                                                                 "epoch_002.pt.json"]


def test_a_pull_that_failed_keeps_its_exit_code_and_its_line(emulator, env, tmp_path):
    assert _run(["pull", "drive:none.bin", str(tmp_path / "d"), "--json", "-q"], env) == (1, (
        "Error: drive:none.bin not found (no item named 'none.bin' in drive:; names are "
        "case-sensitive)\n"))
