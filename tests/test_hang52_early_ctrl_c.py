"""A Ctrl-C in a command's first milliseconds, before the CLI's own handler takes it: the
command never exits 0 having not done its work, and never ends in a traceback of drivestage's
(or of the tests' fork server): ``Interrupted.`` and 130, or (before the interpreter is ready
for it) killed by SIGINT without a word, as any program then.

Real ``python`` processes, each Ctrl-C'd at a chosen moment of its start by an audit hook
(an event, not a delay): the module that loads, the first C library the command opens."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from _forkcli import PIPE, cli_server

#: ``python -c`` run as ``python -m drivestage ARGS``, raising SIGINT at the audit event
#: POINT, "EVENT ARG" (``import`` of module ARG; ``ctypes.dlsym`` of symbol ARG), once.
_SCRIPT = """\
import runpy, signal, sys
point = sys.argv.pop(1).split()
fired = []
def hook(event, args):
    if not fired and event == point[0] and point[1] in args:
        fired.append(point)
        signal.raise_signal(signal.SIGINT)
sys.addaudithook(hook)
sys.argv[0] = "drivestage"
runpy.run_module("drivestage", run_name="__main__", alter_sys=True)
"""

#: Moments before the CLI's handler, each fails on main but the last (a check): the entry
#: point's module itself (runpy imports it), the helpers it loaded before its try, and the
#: command's start (cli.main's heap tuning looks up mallopt) before its group runs; the
#: command's modules loading (an ``import`` statement's event: importlib.import_module's
#: raises none).
POINTS = ("import drivestage.entry", "import drivestage.held_signals",
          "import drivestage.lost_interrupts", "ctypes.dlsym mallopt",
          "import drivestage.cli.group")


def _source(tmp_path):
    src = tmp_path / "src" / "ds"
    src.mkdir(parents=True)
    (src / "a.txt").write_bytes(b"a" * 1000)
    return src


def test_ctrl_c_at_each_moment_of_the_start(tmp_path, local_state):
    src = _source(tmp_path)
    procs = {}
    for point in POINTS:   # (all at once: each is a fresh interpreter's start)
        out = tmp_path / f"out-{point.split()[1]}"
        procs[point] = (out, subprocess.Popen(
            [sys.executable, "-c", _SCRIPT, point, "pull", str(src), str(out), "-q"],
            stdout=PIPE, stderr=PIPE, stdin=subprocess.DEVNULL, text=True))
    for point, (out, proc) in procs.items():
        stdout, stderr = proc.communicate(timeout=60)
        assert (point, proc.returncode, stdout, stderr) == (point, 130, "", "Interrupted.\n")
        assert not out.exists()


def test_a_forked_cli_child_ctrl_c_d_at_once_never_exits_0(tmp_path, local_state):
    """The tests' fork server (tests/_forkcli.py): a SIGINT sent as soon as the child's pid is
    known came while it was still in os.fork(), and was lost (exit 0, the pull done), or it
    raised in the server's setup (a traceback of _forkcli.py, exit 1). Now it is taken as a
    fresh interpreter takes one: killed by SIGINT, or ``Interrupted.`` and 130."""
    src = _source(tmp_path)
    seen = []
    for i in range(8):
        out = tmp_path / f"out{i}"
        proc = cli_server().popen(["pull", str(src), str(out), "-q"], stdout=PIPE,
                                  stderr=PIPE, text=True)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
        seen.append((proc.returncode, stderr[-300:]))
        assert proc.returncode in (-signal.SIGINT, 130), seen
        assert stdout == "", seen
        if proc.returncode == 130:
            assert stderr == "Interrupted.\n", seen
        # (killed by SIGINT: nothing said, or, in the few instructions where the interpreter
        # runs the module but drivestage's code has not begun, Python's own traceback of
        # runpy: never one through drivestage's or the server's code)
        assert f"{os.sep}drivestage{os.sep}" not in stderr, seen
        assert _only_runpy_below_the_server(stderr), seen


def _only_runpy_below_the_server(stderr: str) -> bool:
    """Whether the server's frames in a traceback on ``stderr`` are only its call of runpy
    (the child's ``python -m``), none of its setup before it."""
    lines = stderr.splitlines()
    return all("in _run_cli" in line and "runpy.run_module(" in lines[i + 1]
               for i, line in enumerate(lines[:-1]) if "_forkcli.py" in line) and \
        "_forkcli.py" not in (lines[-1] if lines else "")


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch):
    monkeypatch.delenv("DRIVESTAGE_DEBUG", raising=False)
