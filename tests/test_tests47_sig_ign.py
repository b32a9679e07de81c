"""tests/conftest.py's ``_signal_dispositions_kept``: a test that leaves SIGHUP ignored (as
Python or only the kernel holds it), or starts a process while it has SIGHUP ignored, fails
naming it, and the next test finds the signal at its default again. An inner session of the
suite's own fixture, in a child process (its signals are not this worker's)."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))

#: The inner session's conftest: the suite's fixture (its conftest loaded under another name).
CONFTEST = """
import importlib.util, os
spec = importlib.util.spec_from_file_location("suite_conftest", os.path.join(
    os.environ["SUITE_TESTS"], "conftest.py"))
suite = importlib.util.module_from_spec(spec)
spec.loader.exec_module(suite)
_signal_dispositions_kept = suite._signal_dispositions_kept
"""

TESTS = '''
import ctypes, signal, subprocess, sys
from _sig_ign import ignored

def test_left_ignored():
    signal.signal(signal.SIGHUP, signal.SIG_IGN)

def test_left_ignored_by_c_code():
    ctypes.CDLL(None).signal(int(signal.SIGHUP), 1)   # (SIG_IGN, behind Python's back)

def test_started_a_process_meanwhile():
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    signal.signal(signal.SIGHUP, before)

def test_found_it_at_its_default():
    assert ignored() == [] and signal.getsignal(signal.SIGHUP) is signal.SIG_DFL
'''


@pytest.mark.skipif(not hasattr(signal := __import__("signal"), "SIGHUP") or
                    not os.path.exists("/proc/self/status"), reason="SIGHUP, /proc")
def test_a_test_that_leaves_a_hang_up_ignored_fails_naming_it(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "conftest.py").write_text(CONFTEST)
    (tmp_path / "tests" / "test_x.py").write_text(TESTS)
    env = {**os.environ, "SUITE_TESTS": _HERE, "PYTHONPATH": os.pathsep.join([_HERE, os.environ.get("PYTHONPATH", "")])}
    env.pop("PYTEST_XDIST_WORKER", None)
    got = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-p", "no:xdist", "-p", "no:randomly", "tests/test_x.py"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
                         start_new_session=True, stdin=subprocess.DEVNULL)
    out = got.stdout + got.stderr
    assert got.returncode == 1, out
    assert re.search(r"^4 passed, 3 errors in ", out, re.M), out
    head = ("{} left signals changed or started a process under an ignored one:")
    assert re.search(re.escape(head.format("tests/test_x.py::test_left_ignored")) +
                     r"\n  SIGHUP's handler <Handlers\.SIG_DFL: 0> -> <Handlers\.SIG_IGN: 1>"
                     r"\n  ignored by the kernel: \[\] -> \['SIGHUP'\]\n", out), out
    assert re.search(re.escape(head.format("tests/test_x.py::test_left_ignored_by_c_code")) +
                     r"\n  ignored by the kernel: \[\] -> \['SIGHUP'\]\n", out), out
    assert re.search(re.escape(head.format(
        "tests/test_x.py::test_started_a_process_meanwhile")) +
        r"\n  subprocess\.Popen .* \(in thread 'MainThread'\) with SIGHUP ignored here: the "
        r"process starts with it ignored\n", out), out
    assert "test_found_it_at_its_default" not in out.split("short test summary")[-1], out
