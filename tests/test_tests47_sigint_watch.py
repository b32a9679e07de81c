"""tests/_sigint_watch.py: a Ctrl-C that reaches a pytest worker after the test that sent it
ended fails the next test's setup, naming what is known of its sender (a session of its
own, in a child process: its signals are not this worker's)."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))

#: The inner session's conftest: the watch, and a hook around it (registered after it: the
#: outer wrapper) that, once test_a has ended, lets test_a's thread send its Ctrl-C, or sends
#: one from another process, and waits until it arrived.
CONFTEST = '''
import os, signal, subprocess, threading
import pytest
from _sigint_watch import SigintWatch

GO, SENT = threading.Event(), threading.Event()

class Between:
    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item, nextitem):
        yield
        if item.name == "test_a":
            if os.environ["HOW"] == "another process":
                subprocess.run(["kill", "-INT", str(os.getpid())], check=True)
            else:
                GO.set()
                assert SENT.wait(30)
            signal.pthread_sigmask(signal.SIG_BLOCK, [])   # (a bytecode or two: it runs)

def pytest_configure(config):
    config.pluginmanager.register(SigintWatch(), "sigint-watch")
    config.pluginmanager.register(Between(), "between")
'''

TESTS = '''
import _thread, os, signal, threading
from conftest import GO, SENT

def test_a():
    main = threading.main_thread().ident
    how = os.environ["HOW"]
    def late():
        GO.wait(30)
        if how == "os.kill":
            os.kill(os.getpid(), signal.SIGINT)
        elif how == "pthread_kill":
            signal.pthread_kill(main, signal.SIGINT)
        elif how == "interrupt_main":
            _thread.interrupt_main()
        SENT.set()
    threading.Thread(target=late, name="late-ctrl-c", daemon=True).start()

def test_b():
    pass

def test_c():   # (the worker's own handler again, in a test)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
'''


_FROM = (r" from thread 'late-ctrl-c', started in test_x\.py::test_a, after "
         r"test_x\.py::test_a ended")


@pytest.mark.parametrize("how, sender", [
    ("os.kill", r"os\.kill\(\d+, SIGINT\)" + _FROM),
    ("pthread_kill", r"signal\.pthread_kill\(\d+, SIGINT\)" + _FROM),
    ("interrupt_main", r"_thread\.interrupt_main\(\)" + _FROM),
    ("another process", r"by no thread of this process \(another process: this one's pid "
                        r"or its process group\)"),
], ids=["os.kill", "pthread_kill", "interrupt_main", "another-process"])
def test_a_late_ctrl_c_fails_the_next_test_naming_its_sender(tmp_path, how, sender):
    """Without the watch the Ctrl-C raised KeyboardInterrupt in pytest's own code between
    the tests (its session ended: no test named)."""
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_x.py").write_text(TESTS)
    env = {**os.environ, "HOW": how, "PYTHONPATH": os.pathsep.join(
        [_HERE, os.environ.get("PYTHONPATH", "")])}
    env.pop("PYTEST_XDIST_WORKER", None)
    got = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-p", "no:xdist", "-rA", "test_x.py"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    out = got.stdout + got.stderr
    assert got.returncode == 1, out
    assert re.search(r"^2 passed, 1 error in ", out, re.M), out
    assert re.search(r"^_+ ERROR at setup of test_b _+\na Ctrl-C \(SIGINT\) reached this "
                     r"worker outside the test that sent it:$", out, re.M), out
    assert re.search(r"^  a SIGINT reached this pytest worker after test_x\.py::test_a ended, "
                     r"sent " + sender + "$", out, re.M), out
    assert "KeyboardInterrupt" not in out, out
