"""``drivestage mirror`` stopped (SIGTERM, SIGHUP) while the process starts: before its
handlers exist, while the command modules load or its own imports run. The signal is sent
by the child itself at a chosen import (a meta-path finder), not after a guessed sleep."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys

import pytest

_SIGNAL_AT = """
import os, runpy, signal, sys

class Stop:  # the signal, for real, as the module {target} is looked for
    sent = False
    def find_spec(self, name, path=None, target=None):
        if name == {target!r} and not Stop.sent:
            Stop.sent = True
            os.kill(os.getpid(), {sig})
        return None

sys.meta_path.insert(0, Stop())
sys.argv = ["drivestage", *{args!r}]
runpy.run_module("drivestage", run_name="__main__", alter_sys=True)
"""


@pytest.fixture
def env(local_state, tmp_path, drive_env):
    return {**os.environ, **drive_env, "DRIVESTAGE_STATE_DIR": str(tmp_path / "state"),
            "DRIVESTAGE_RETRY_BASE": "0.01"}


def _run(env, sig: int, target: str, *args: str) -> subprocess.CompletedProcess:
    script = _SIGNAL_AT.format(sig=int(sig), target=target, args=list(args))
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=60)


def _live(emu) -> dict[str, str]:
    return {f["title"]: f["md5Checksum"] for f in emu.files()
            if not f["labels"]["trashed"] and not f["mimeType"].endswith(".folder")}


@pytest.mark.slow
@pytest.mark.parametrize("sig,target", [
    (signal.SIGTERM, "drivestage.cli"),          # the first import of the command modules
    (signal.SIGHUP, "drivestage.cli.push"),      # in the middle of them
    (signal.SIGTERM, "drivestage.mirror"),       # in mirror's own imports, before its handlers
])
def test_mirror_stopped_while_it_starts_still_pushes_once(emulator, env, tmp_path, sig,
                                                          target):
    """The documented final push, exit 0: the process died of the signal (-15, -1) with
    nothing pushed and not a word."""
    src = tmp_path / "logs"
    src.mkdir()
    (src / "results.csv").write_text("epoch\n1\n")
    res = _run(env, sig, target, "mirror", str(src), "drive:Models/logs", "--every", "3600")
    assert res.returncode == 0, (res.returncode, res.stderr)
    assert "stopping: pushing once more" in res.stderr and "final push in" in res.stderr, \
        res.stderr
    assert _live(emulator) == {"results.csv": hashlib.md5(b"epoch\n1\n").hexdigest()}


def test_other_commands_still_end_on_a_sigterm_while_they_load(emulator, env, tmp_path):
    """Only mirror holds the signal: ``push`` dies of it as before (nothing sent)."""
    src = tmp_path / "logs"
    src.mkdir()
    (src / "results.csv").write_text("epoch\n1\n")
    res = _run(env, signal.SIGTERM, "drivestage.cli.push", "push", str(src),
               "drive:Models/logs")
    assert res.returncode == -signal.SIGTERM, res.stderr
    assert _live(emulator) == {}


def test_mirror_usage_error_with_a_held_sigterm_says_the_usage_error(env, tmp_path):
    """A held signal that no mirror took (a bad option: click stops first) ends the process
    as the usage error says (exit 2 and its line), and no handler is left behind."""
    res = _run(env, signal.SIGTERM, "drivestage.cli.push", "mirror", str(tmp_path),
               "drive:x", "--every", "nope")
    assert res.returncode == 2, res.stderr
    assert "--every" in res.stderr
