"""tests/_sigint_watch.py under pytest-xdist: a Ctrl-C sent during a worker's last test by a
thread an earlier test left running (seen at the worker's session end, no next test to fail)
reaches the session's report and fails the run. It went to the worker's stderr only, which
xdist shows nowhere, and the run passed: xdist takes a worker's exit status before the
other sessionfinish hooks run (a session of its own, in a child process)."""
from __future__ import annotations

import os
import subprocess
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))

CONFTEST = '''
from _sigint_watch import SigintWatch

def pytest_configure(config):
    config.pluginmanager.register(SigintWatch(), "sigint-watch")
'''

#: test_a leaves a thread that sends a Ctrl-C once test_b, the last, says so; test_b has
#: SIGINT ignored meanwhile (the send is noted, nothing is interrupted).
TESTS = '''
import os, signal, threading

GO, SENT = threading.Event(), threading.Event()

def test_a():
    def late():
        GO.wait(30)
        os.kill(os.getpid(), signal.SIGINT)
        SENT.set()
    threading.Thread(target=late, name="late-ctrl-c", daemon=True).start()

def test_b():
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        GO.set()
        assert SENT.wait(30)
    finally:
        signal.signal(signal.SIGINT, before)
'''


def test_a_ctrl_c_seen_at_a_workers_end_fails_the_run_and_is_in_its_report(tmp_path):
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_x.py").write_text(TESTS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [_HERE, os.environ.get("PYTHONPATH", "")])}
    env.pop("PYTEST_XDIST_WORKER", None)
    got = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-n", "1", "test_x.py"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    out = got.stdout + got.stderr
    assert got.returncode == 1, out
    lines = got.stdout.splitlines()
    at = lines.index(next(line for line in lines if "Ctrl-C outside its test" in line))
    assert lines[at + 1] == ("[gw0] a Ctrl-C (SIGINT) reached this worker outside the test "
                             "that sent it:"), out
    assert lines[at + 2].startswith("  os.kill("), out
    assert lines[at + 2].endswith(", SIGINT) from thread 'late-ctrl-c', started in "
                                  "test_x.py::test_a, while test_x.py::test_b ran"), out
