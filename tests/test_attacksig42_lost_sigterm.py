"""A pull's SIGTERM whose KeyboardInterrupt Python raised in a finalizer (importlib's callback
that forgets a module's lock, run after each module the pull imports as it loads its Drive
client) and dropped, in a background job (``drivestage pull … &``, ``nohup``: SIGINT
ignored). :mod:`drivestage.lost_interrupts` raises a lost Ctrl-C again by simulating a
SIGINT, which an ignored SIGINT makes a no-op: the SIGTERM was lost, the pull went on, and
every later SIGTERM was a repeat, only noted (:mod:`drivestage.stop_signals`): the pull
could not be stopped short of SIGKILL. (In the foreground, the simulated SIGINT raised it
again, and ``Stopped`` named the signal: that stays.)"""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

import drivestage

from _cli import child_env

#: _IN_CALLBACK of test_attackearly40_hashrate, with SIGINT ignored and ``{sig}`` sent at the
#: first such callback once the pull takes stop signals (stop_signals.as_ctrl_c).
_IN_CALLBACK = """
import signal, sys, threading
signal.signal(signal.SIGINT, signal.{sigint})   # (SIG_IGN: a background job)
import contextlib
from drivestage import checksums, stop_signals
checksums._TIMINGS = 10 ** 6
real, armed = stop_signals.as_ctrl_c, []
@contextlib.contextmanager
def as_ctrl_c(program=False):
    with real(program):
        armed.append(True)
        yield
stop_signals.as_ctrl_c = as_ctrl_c
main_ident = threading.get_ident()
def profile(frame, event, arg):
    if armed and event == "call" and frame.f_code.co_name == "cb" and \\
            frame.f_code.co_filename == "<frozen importlib._bootstrap>":
        sys.setprofile(None)
        signal.pthread_kill(main_ident, signal.{sig})
sys.setprofile(profile)
from drivestage.cli import main
sys.argv[:] = ["drivestage"] + sys.argv[1:]
main()
"""


@pytest.mark.parametrize("sigint", ["SIG_IGN", "default_int_handler"],
                         ids=["background", "foreground"])
@pytest.mark.parametrize("sig,code", [("SIGTERM", 143), ("SIGHUP", 129)])
def test_a_stop_signal_raised_in_an_imports_callback(emulator, tmp_path, sig, code, sigint):
    emulator.add_file("d/b.bin", os.urandom(5000))
    env = dict(child_env(emulator),
               PYTHONPATH=os.path.dirname(os.path.dirname(drivestage.__file__)))
    proc = subprocess.Popen([sys.executable, "-c", _IN_CALLBACK.format(sig=sig, sigint=sigint), "pull",
                             "drive:d/b.bin", str(tmp_path / "data")], env=env,
                            stderr=subprocess.PIPE)
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err
    assert err.decode().splitlines() == [f"Interrupted by {sig}."], err
    assert [p.name for p in (tmp_path / "data").glob("b.bin")] == []
