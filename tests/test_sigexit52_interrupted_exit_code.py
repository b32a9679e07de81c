"""A Ctrl-C the command handled (``Interrupted.``) ends the process with exit code 130, never
by SIGINT (sigexit52).

hang52 saw about 13 in 1,000 real ``python -m drivestage pull`` runs Ctrl-C'd 97-198 ms in
print exactly ``Interrupted.`` and then die by SIGINT (-2 to ``subprocess``, a notebook's
``!``, a CI runner). strace: one SIGINT received, then at the very end CPython's own
``exit_sigint`` (SIGINT set to its default, ``kill(getpid(), SIGINT)``): the interpreter had
noted a KeyboardInterrupt leaving the ``-m`` run (``_Py_UnhandledKeyboardInterrupt``, 1 at
exit, read by ctypes) while the exception that left runpy was SystemExit(130) and no traceback
was printed (``sys.last_value`` unset). That note comes from a race not reproducible by event;
here the test sets it as it stood in those runs (ctypes, at the Ctrl-C), and the command must
still end 130. On main 1b33c61f each case exits -2 with ``Interrupted.`` said."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from _forkcli import PIPE

#: A module run as ``python -m sigexit52_run POINT ARGS``, which runs ``drivestage`` as
#: ``-m`` does (``python -c`` ends a SystemExit by ``Py_Exit``, which never reads the note);
#: at the first audit event EVENT whose arguments name TEXT, the interpreter's note is set and
#: SIGINT raised, once.
_MODULE = """\
import ctypes, runpy, signal, sys
event, text = sys.argv.pop(1).split()
fired = []
def hook(ev, args):
    if not fired and ev == event and text in str(args):
        fired.append(ev)
        ctypes.c_int.in_dll(ctypes.pythonapi, "_Py_UnhandledKeyboardInterrupt").value = 1
        signal.raise_signal(signal.SIGINT)
sys.addaudithook(hook)
runpy._run_module_as_main("drivestage")
"""

#: Before the command's handler (entry.interrupted says it) and inside the command (the
#: group's handler says it; click's sys.exit(130)): the pull opening its source file.
POINTS = ("import drivestage.cli.group", "open a.txt")


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="CPython 3.11's exported note")
def test_a_handled_ctrl_c_exits_130_not_by_sigint(tmp_path, local_state):
    src = tmp_path / "src" / "ds"
    src.mkdir(parents=True)
    (src / "a.txt").write_bytes(b"a" * 1000)
    (tmp_path / "sigexit52_run.py").write_text(_MODULE)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [p for p in (os.environ.get("PYTHONPATH"), str(tmp_path)) if p]))
    procs = {}
    for point in POINTS:   # (both at once: each a fresh interpreter)
        out = tmp_path / f"out-{point.split()[1]}"
        procs[point] = (out, subprocess.Popen(
            [sys.executable, "-m", "sigexit52_run", point, "pull", str(src), str(out), "-q"],
            stdout=PIPE, stderr=PIPE, stdin=subprocess.DEVNULL, text=True, env=env))
    for point, (out, proc) in procs.items():
        stdout, stderr = proc.communicate(timeout=60)
        assert (point, proc.returncode, stdout, stderr) == (point, 130, "", "Interrupted.\n")
        assert not (out / "ds" / "a.txt").exists()
