"""attack52: ``drivestage mirror SRC DEST --include GLOB`` whose globs choose none of SRC's
files.

``push`` stops on such globs (exit 1: ``--include … leaves no file of … to push (it holds
…)``); the mirror went on without a word, each period sending nothing, and its final push
said ``0 uploaded (0 B), 0 unchanged``, exit 0: a typo in ``--include`` left a run unmirrored
all along. It cannot refuse (a mirror may start before the files its globs choose are
written), so it says so once, at the start."""
from __future__ import annotations

import signal
from subprocess import PIPE

import pytest

from _cli import child_env
from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)


@pytest.mark.parametrize("glob, warned", [("*.pt", True), ("*.csv", False)])
def test_globs_that_choose_nothing_are_said_once(emulator, local_state, tmp_path, glob, warned):
    """On main 8704ac72 the first line was ``mirroring …``, nothing said of the globs."""
    src = tmp_path / "logs"
    src.mkdir()
    (src / "results.csv").write_text("epoch,map50\n")
    proc = cli_server().popen(["mirror", str(src), "drive:runs/x", "--every", "3600",
                               "--include", glob], env=child_env(emulator), stdout=PIPE,
                              stderr=PIPE, text=True)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    line = (f"WARNING drivestage.cli.push: --include '{glob}' leaves no file of {src} to mirror "
            "(it holds results.csv); check the globs (case-sensitive, matched to the path "
            "inside the folder or to the name); the mirror goes on, and sends the files they "
            "choose once there are some\n")
    if warned:
        assert first == line
    else:
        assert first.startswith("mirroring ") and "WARNING" not in err, first + err
