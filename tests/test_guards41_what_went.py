"""guards41: a push that fails part-way returned no PushResult, so the CLI's push and a
mirror's periods said what went only in the lines printed as it went (none, at the default
log level, for files sent): the summary was the success's alone, and the next run found those
files unchanged. The error now holds what the push had done
(:func:`drivestage.push_result.pushed_of`), and the summary line says it, before the Error
line: ``push SRC -> DEST, then failed: 2 uploaded (…), …``."""
from __future__ import annotations

import re
import signal

import pytest

from _cli import run
from _drive_state import live_md5s
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture: the fork server)
from _checkpoints import md5


@pytest.fixture(autouse=True)
def _fast(fast_retries, local_state, drive_env):
    """Backoffs of a millisecond; drivestage's state in tmp_path; the CLI on the emulator."""


def _src(tmp_path):
    src = tmp_path / "run"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a" * 1000)
    (src / "b.txt").write_bytes(b"b" * 2000)
    return src


def test_a_push_that_fails_at_its_removals_says_what_it_sent_first(emulator, tmp_path):
    src = _src(tmp_path)
    emulator.add_file("runs/exp/old.txt", b"old")
    emulator.faults.inject(path=r"/trash", reason="insufficientFilePermissions", times=None)

    code, out, err = run("push", str(src), "drive:runs/exp", "--delete")
    assert code == 1, err
    lines = err.splitlines()
    assert lines[:2] == [
        "WARNING drivestage.extra: --delete: removing 1 item from drive:runs/exp that is not "
        "in SRC (to the Drive trash)",
        f"push {src} -> drive:runs/exp, then failed: 2 uploaded (2.9 KiB), 0 unchanged"]
    assert lines[2].startswith("Error: trash drive:runs/exp/old.txt: permission denied (HTTP "
                               "403 insufficientFilePermissions"), err
    assert len(lines) == 3, err
    assert live_md5s(emulator, "runs/exp") == {"a.txt": [md5(b"a" * 1000)],
                                                "b.txt": [md5(b"b" * 2000)],
                                                "old.txt": [md5(b"old")]}


def test_a_push_that_fails_before_anything_went_says_no_such_line(emulator, tmp_path):
    src = _src(tmp_path)
    emulator.faults.inject(method="POST", path=r"^/upload/", reason="insufficientFilePermissions",
                           times=None)

    code, out, err = run("push", str(src), "drive:runs/exp")
    assert code == 1, err
    assert "then failed" not in err and err.splitlines()[-1].startswith("Error: "), err
    assert live_md5s(emulator, "runs/exp") == {}


def test_a_mirror_period_that_fails_says_what_it_sent_first(emulator, tmp_path):
    """The period's line (``HH:MM:SS pushed, then failed: …``) comes before its failure's;
    the next period finds those files unchanged and said nothing of them either."""
    from _cli import child_env
    from _forkcli import DEVNULL, PIPE, cli_server
    from tests.test_push_cli import _Lines

    src = _src(tmp_path)
    emulator.add_file("runs/exp/old.txt", b"old")
    emulator.faults.inject(path=r"/trash", reason="insufficientFilePermissions", times=None)
    proc = cli_server().popen(
        ["mirror", str(src), "drive:runs/exp", "--every", "3600", "--delete"],
        env={**child_env(emulator), "DRIVESTAGE_STATE_DIR": str(tmp_path / "state")},
        stdout=DEVNULL, stderr=PIPE, text=True)
    try:
        lines = _Lines(proc.stderr)
        lines.wait_for(proc, r"failed \(will try again\)")
        (src / "c.txt").write_bytes(b"c" * 500)   # (the final push sends it, then fails)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        err = lines.text()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    said = err.splitlines()
    period = [i for i, line in enumerate(said) if re.match(r"\d\d:\d\d:\d\d pushed", line)]
    assert len(period) == 1, err
    assert said[period[0]][9:] == "pushed, then failed: 2 uploaded (2.9 KiB), 0 unchanged", err
    assert "failed (will try again): trash drive:runs/exp/old.txt: permission denied" in \
        said[period[0] + 1], err
    # The final push: what it sent, then its Error line.
    assert re.fullmatch(r"final push in \d+\.\ds, then failed: 1 uploaded \(500 B\), 2 "
                        r"unchanged", said[-2]), err
    assert said[-1].startswith("Error: mirror of ") and "permission denied" in said[-1], err
    assert live_md5s(emulator, "runs/exp") == {"a.txt": [md5(b"a" * 1000)],
                                                "b.txt": [md5(b"b" * 2000)],
                                                "c.txt": [md5(b"c" * 500)],
                                                "old.txt": [md5(b"old")]}
